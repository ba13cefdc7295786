package shm

import (
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futex(2) operations. These are the shared (not FUTEX_PRIVATE_FLAG)
// variants: the futex words live in a MAP_SHARED mapping used by two
// processes, and the kernel must key them by the underlying page, not by
// this process's address space.
const (
	futexWaitOp = 0 // FUTEX_WAIT
	futexWakeOp = 1 // FUTEX_WAKE
)

// Waiting parameters.
const (
	// lockSpin is how many times lock polls a held lock word before it
	// sleeps. The lock guards a handful of loads and stores, so a holder
	// running on the other core releases it within this spin; a holder that
	// was descheduled is waited for in the kernel.
	lockSpin = 100
	// lockWaitSlice bounds one futex sleep on the lock word, after which the
	// waiter re-checks Close, the deadline and the peer's liveness.
	lockWaitSlice = 10 * time.Millisecond
	// dataWaitSlice bounds one futex sleep for data or space. Wake-ups are
	// event-driven; the bound only limits the damage of a peer that
	// corrupted the waiting flags.
	dataWaitSlice = 500 * time.Millisecond
)

// futexWait sleeps while *addr == val, for at most d (d > 0). It returns on
// a wake-up, a timeout, a signal, or at once when *addr != val; callers
// re-check their condition in every case.
func futexWait(addr *atomic.Uint32, val uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	// Errors are EAGAIN (the value changed), ETIMEDOUT and EINTR, all of
	// which mean "look again"; EFAULT cannot happen on a live mapping.
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes up to n threads sleeping in futexWait on addr, in any
// process.
func futexWake(addr *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, uintptr(n), 0, 0, 0)
}

// wakeAll wakes every thread sleeping in futexWait on addr.
func wakeAll(addr *atomic.Uint32) { futexWake(addr, math.MaxInt32) }

// tryLock takes the mutex m if it is free, or after a short spin. It
// reports whether it holds m, and whether m holds a value no mutex can have
// (then the lock is corrupt and was not taken).
func tryLock(m *atomic.Uint32) (locked, corrupt bool) {
	if m.CompareAndSwap(0, 1) {
		return true, false
	}
	for range lockSpin {
		switch v := m.Load(); {
		case v > 2:
			return false, true
		case v == 0 && m.CompareAndSwap(0, 1):
			return true, false
		}
	}
	return false, false
}

// lockSlow is the sleeping part of the lock, one round: it marks the mutex
// contended (2) and takes it if it was free; otherwise it sleeps for at
// most d while the word is 2. The caller checks its abort conditions
// between rounds. In Drepper's terms this is the loop body of mutex #3.
func lockSlow(m *atomic.Uint32, d time.Duration) (locked, corrupt bool) {
	switch v := m.Swap(2); {
	case v == 0:
		return true, false
	case v > 2:
		return false, true
	}
	futexWait(m, 2, d)
	return false, false
}

// unlock releases the mutex m and wakes one sleeper if any may be waiting.
func unlock(m *atomic.Uint32) {
	if m.Add(^uint32(0)) != 0 {
		// The word was 2 (contended), or someone clobbered it: hand the
		// lock back free and let one sleeper retry.
		m.Store(0)
		futexWake(m, 1)
	}
}
