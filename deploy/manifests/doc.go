// Package manifests holds deploy/'s manifest tests that need the Kubernetes libraries:
// every overlay built in memory with sigs.k8s.io/kustomize/api and every object decoded
// strictly into its k8s.io/api type. It is its own module (deploy/manifests/go.mod) so
// those libraries stay out of rpt's go.mod; .ci/run runs `go test ./...` in it.
package manifests
