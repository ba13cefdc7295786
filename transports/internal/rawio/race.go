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

func raceReadDone(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(unsafe.SliceData(b)), len(b))
	}
	runtime.RaceAcquire(unsafe.Pointer(&ioSync))
}

func raceWriteStart(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(unsafe.SliceData(b)), len(b))
	}
	runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync))
}
