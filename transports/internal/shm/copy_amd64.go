package shm

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// repMovsb copies n bytes from src to dst with REP MOVSB. The regions must
// not overlap.
//
//go:noescape
func repMovsb(dst, src *byte, n uintptr)

// useRepMovsb: the CPU has enhanced REP MOVSB (ERMS).
var useRepMovsb = cpu.X86.HasERMS

// repMovsbMin is the size from which ringCopy uses REP MOVSB; below it the
// instruction's start-up cost outweighs what it saves.
const repMovsbMin = 2048

// ringCopy is copy(dst, src) for copies into and out of a ring, whose
// other side runs on another core. The destination lines of such a copy
// are usually cached by that core (it just read them, or wrote them), and
// Go's copy on AMD CPUs (an AVX loop there; Go prefers REP MOVS only on
// Intel CPUs with ERMS and FSRM) must read each line before writing it.
// REP MOVSB with ERMS writes whole lines without reading them first. When
// this was written, the project's reference runs came from an AMD EPYC
// (the cpu_model in the header of results/reference.jsonl up to commit
// 8031f49; today's records come from an Intel Xeon), and there it moved
// 64 KiB messages through shm-ring markedly faster (go test -run '^$'
// -bench 'RingStream/copy' ./transports/internal/shm/, before and after
// commit 96f37d2): an observation, its output was not kept, and no
// committed record isolates this change. dst and src never overlap here:
// one is the mapping, the other the caller's buffer.
func ringCopy(dst, src []byte) int {
	n := min(len(dst), len(src))
	if n < repMovsbMin || !useRepMovsb {
		return copy(dst, src)
	}
	repMovsb(unsafe.SliceData(dst), unsafe.SliceData(src), uintptr(n))
	return n
}
