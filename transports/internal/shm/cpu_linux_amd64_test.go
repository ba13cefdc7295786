package shm

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestCurrentCPU: the CPU that currentCPU names is the one getcpu names
// (in one of a few tries: the thread may move between the two), or
// unknown when the CPU has no usable instruction.
func TestCurrentCPU(t *testing.T) {
	if cpuInstr == cpuNone {
		if got := currentCPU(); got != 0 {
			t.Fatalf("without a CPU source currentCPU = %d, want 0 (unknown)", got)
		}
		t.Skip("neither RDPID nor RDTSCP agrees with getcpu here")
	}
	t.Logf("source %d (1 RDPID, 2 RDTSCP)", cpuInstr)
	for range 10 {
		var cpu uint32
		if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); errno != 0 {
			t.Fatalf("getcpu: %v", errno)
		}
		if got := currentCPU(); got == cpu+1 {
			return
		}
	}
	t.Fatalf("currentCPU never agreed with getcpu in 10 tries (last %d)", currentCPU())
}
