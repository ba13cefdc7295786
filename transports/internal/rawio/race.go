//go:build race

package rawio

import (
	"runtime"
	"unsafe"
)

// ioSync orders, for the race detector, every write before the reads that
// may return its bytes, as package syscall does for its own read and
// write: the kernel's copies are invisible to the detector.
var ioSync int64

// raceReadDone tells the detector that a read filled b.
func raceReadDone(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(unsafe.SliceData(b)), len(b))
	}
	runtime.RaceAcquire(unsafe.Pointer(&ioSync))
}

// raceWriteStart is called before a write.
func raceWriteStart() { runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync)) }

// raceWritten tells the detector that a write sent b (only what was
// written, so that retries of a large buffer do not check it again).
func raceWritten(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(unsafe.SliceData(b)), len(b))
	}
}
