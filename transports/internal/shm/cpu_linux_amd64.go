package shm

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Where this thread runs, for the adaptive wait (see spinStats). Linux
// keeps each CPU's number in its IA32_TSC_AUX register (low 12 bits; the
// NUMA node above), which RDPID reads in about 4 ns and RDTSCP, with a
// time stamp, in about 16 ns, on the 2-vCPU VM this was measured on, where
// the getcpu system call took 210 ns. It also puts the same number in the
// limit of a per-CPU segment of its global descriptor table, which LSL
// reads (19 ns on a 2-vCPU AMD EPYC VM whose hypervisor leaves
// IA32_TSC_AUX at 0, and where a system call costs 1.2–2 µs): that is
// how the kernel's own vDSO getcpu answers on a CPU without RDPID.
// `go test -run - -bench CurrentCPU ./transports/internal/shm/` times the
// source picked here. An instruction is used
// only if it agrees with getcpu at start-up on a CPU other than 0 (a
// hypervisor that does not set the register leaves it at 0, and LSL of a
// selector that is not valid leaves its result at 0, which an agreement on
// CPU 0 cannot tell apart), RDPID first, then RDTSCP, then LSL; otherwise
// the CPU is unknown.

// rdpid returns IA32_TSC_AUX (RDPID); the CPU must have the instruction.
func rdpid() uint32

// rdtscpAux returns IA32_TSC_AUX as RDTSCP reads it; the CPU must have the
// instruction.
func rdtscpAux() uint32

// lslCPU returns the segment limit of the kernel's per-CPU descriptor
// (selector 0x7b: entry 15 of the GDT, __CPUNODE_SEG in Linux), node << 12 |
// CPU, or 0 when the selector is not valid.
func lslCPU() uint32

// cpuid executes CPUID with EAX = leaf and ECX = sub.
func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// CPU sources, cpuInstr's values.
const (
	cpuNone   = iota // the CPU is unknown
	cpuRDPID         // RDPID
	cpuRDTSCP        // RDTSCP
	cpuLSL           // LSL of the per-CPU segment
)

// cpuAuxMask keeps the CPU number of IA32_TSC_AUX and of the per-CPU
// segment's limit.
const cpuAuxMask = 0xfff

// cpuInstr is the instruction currentCPU uses.
var cpuInstr = pickCPUInstr()

// pickCPUInstr returns the cheapest CPU source that this CPU has and that
// agrees with getcpu.
func pickCPUInstr() int {
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf >= 7 {
		if _, _, c, _ := cpuid(7, 0); c&(1<<22) != 0 && agreesWithGetcpu(rdpid) {
			return cpuRDPID
		}
	}
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt >= 0x80000001 {
		if _, _, _, d := cpuid(0x80000001, 0); d&(1<<27) != 0 && agreesWithGetcpu(rdtscpAux) {
			return cpuRDTSCP
		}
	}
	if agreesWithGetcpu(lslCPU) {
		return cpuLSL
	}
	return cpuNone
}

// agreesWithGetcpu reports whether aux names the CPU that getcpu names.
// Agreement on CPU 0 proves nothing (a register left at 0 agrees there), so
// the check runs with this thread moved to a CPU other than 0 of the
// process's affinity mask, which is then restored; with CPU 0 the only one
// allowed, an agreement there is all there is to see, and all that will
// ever be asked.
func agreesWithGetcpu(aux func() uint32) bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var mask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mask); err != nil {
		return false
	}
	other := -1
	for c := 1; c < len(mask)*64; c++ {
		if mask.IsSet(c) {
			other = c
			break
		}
	}
	if other < 0 {
		return agreesHere(aux, 0)
	}
	var one unix.CPUSet
	one.Set(other)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return false
	}
	defer unix.SchedSetaffinity(0, &mask)
	return agreesHere(aux, uint32(other))
}

// agreesHere reports whether getcpu names cpu and aux agrees with it, in
// one of a few tries (a thread that is not pinned may move between the
// two readings).
func agreesHere(aux func() uint32, cpu uint32) bool {
	for range 3 {
		var got uint32
		if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&got)), 0, 0); errno != 0 {
			return false
		}
		if got == cpu && aux()&cpuAuxMask == cpu {
			return true
		}
	}
	return false
}

// currentCPU returns the CPU this thread runs on, plus one, or 0 when it
// is unknown.
func currentCPU() uint32 {
	switch cpuInstr {
	case cpuRDPID:
		return rdpid()&cpuAuxMask + 1
	case cpuRDTSCP:
		return rdtscpAux()&cpuAuxMask + 1
	case cpuLSL:
		return lslCPU()&cpuAuxMask + 1
	}
	return 0
}
