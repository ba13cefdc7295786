//go:build !amd64

package shm

// ringCopy is copy(dst, src); on amd64 it uses REP MOVSB for large copies
// (see copy_amd64.go).
func ringCopy(dst, src []byte) int { return copy(dst, src) }
