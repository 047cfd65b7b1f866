//go:build race

package e2e

// raceBuild: the tests run with -race, so the rpt binary is built with it too and the
// agents' own data races surface in their logs.
const raceBuild = true
