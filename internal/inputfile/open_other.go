//go:build !unix

package inputfile

// Windows has no FIFOs in the file system; Stat already refused devices.
const openFlags = 0
