//go:build linux && !amd64

package shm

// currentCPU returns the CPU this thread runs on, plus one, or 0 when it
// is unknown. Here it is always unknown: the only source is the getcpu
// system call, too slow for every wait, so the adaptive wait relies on its
// time limit alone (see spinStats).
func currentCPU() uint32 { return 0 }
