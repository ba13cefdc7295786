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
		t.Skip("neither RDPID, RDTSCP nor LSL agrees with getcpu here")
	}
	t.Logf("source %d (1 RDPID, 2 RDTSCP, 3 LSL)", cpuInstr)
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

// TestAgreesWithGetcpuRefusesZero: a CPU-number register that reads 0 on
// every CPU (a hypervisor that does not set it) is refused whenever the
// process may run on a CPU other than 0, and a source that names the CPU
// right is accepted.
func TestAgreesWithGetcpuRefusesZero(t *testing.T) {
	var mask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mask); err != nil {
		t.Fatal(err)
	}
	only0 := mask.Count() == 1 && mask.IsSet(0)
	if got := agreesWithGetcpu(func() uint32 { return 0 }); got != only0 {
		t.Fatalf("a register stuck at 0: agreesWithGetcpu = %v with mask count %d (CPU 0 only: %v)", got, mask.Count(), only0)
	}
	getcpu := func() uint32 {
		var cpu uint32
		unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0)
		return cpu
	}
	if !agreesWithGetcpu(getcpu) {
		t.Fatal("a source that reads getcpu itself does not agree with it")
	}
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != mask {
		t.Fatalf("the affinity mask was not restored: %v, was %v", after, mask)
	}
}

// BenchmarkCurrentCPU times currentCPU with the source picked at start-up
// (the cost the adaptive wait pays for each look at where it runs).
func BenchmarkCurrentCPU(b *testing.B) {
	b.Logf("source %d (0 none, 1 RDPID, 2 RDTSCP, 3 LSL)", cpuInstr)
	var sum uint32
	for b.Loop() {
		sum += currentCPU()
	}
	_ = sum
}
