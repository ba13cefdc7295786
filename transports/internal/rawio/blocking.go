package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Blocking reads on a pipe.
//
// A socket's recv(2) can sleep with a timeout (SO_RCVTIMEO), so a socket
// Read is one system call that returns within sockSleepMax whatever
// happens. A pipe has no timeout, and a read(2) asleep on a pipe is woken
// neither by closing the descriptor nor by a signal: Go installs its
// signal handlers with SA_RESTART, so the kernel restarts the read once
// the handler returns. The restarted read starts over, though, and a
// pipe's read looks at the file's O_NONBLOCK flag before it sleeps. So a
// read asleep on a pipe can be ended from another goroutine: set
// O_NONBLOCK on the descriptor, then send the sleeping thread SIGURG (the
// signal the runtime itself sends for preemption, which it handles and
// otherwise ignores); the read restarts, finds the flag and fails with
// EAGAIN, and the loop around it looks at Close and the deadline. A read
// that had not yet started when the flag was set fails the same way
// without a signal, so no wake-up is lost between a reader's decision to
// sleep and its read(2) (see readOnce).
//
// The sleeping thread is found in /proc/self/task/*/syscall, which names
// the system call each thread is blocked in and its first argument, the
// descriptor. A thread shown running is sent the signal too (it may be on
// its way into the sleep, which a pending signal ends at once), as is one
// whose entry cannot be read: a spurious SIGURG is harmless to the
// runtime. Where /proc is not mounted, NewPipeReader falls back to the
// polling reads of New.
//
// The flag belongs to the open file, which duplicates of the descriptor
// share (transports.DescriptorConn): it is set only while a read may be
// asleep, or while reads poll for a deadline, and Close leaves it as
// NewPipeReader made it.
//
// Reads sleep this way only while there is no read deadline; with one, the
// descriptor is made non-blocking again and reads poll as New's do. The
// sleeping read is made through the runtime's system-call path, not as a
// direct call: a stop-the-world must not wait for it, and the runtime's
// preemption signal would only restart it.

// NewPipeReader takes ownership of fd, the read end of a pipe, and
// returns an FD whose reads without a deadline sleep in one blocking
// read(2), as a C program's do (see above), with Close and deadlines
// keeping their contract. Where the process cannot see its own threads
// (no /proc), it returns New(fd).
func NewPipeReader(fd int) (*FD, error) {
	if _, err := os.Stat(taskDir); err != nil {
		return New(fd)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	f, err := newFD(fd, false)
	if err != nil {
		return nil, err
	}
	f.blk = true
	return f, nil
}

// yieldEvery is how many Reads of a pipe reader (NewPipeReader) pass
// between two calls of runtime.Gosched; almost all of them sleep in
// read(2) when round trips matter. A goroutine that only ever sleeps in
// system calls and returns to its P is never scheduled anew, so to the runtime's
// monitor thread (sysmon) it looks like one that has run for 10 ms
// without a break: sysmon then takes its P while it sleeps in read(2)
// (the read returns to no P and waits for another thread to run it), and
// ticks every 20 µs for a while after that, a context switch each time on
// the CPU the round trip runs on. Yielding now and then starts a new
// scheduling slice. 64 round trips take well under 10 ms on a machine
// where round trips matter (a few µs on one CPU, tens of µs across two).
const yieldEvery = 64

// taskDir lists the threads of this process.
const taskDir = "/proc/self/task"

// readBlocking is Read on an FD made by NewPipeReader. It counts itself
// in FD.sleep for its whole length instead of holding ops: one atomic add
// each way, where ops and a separate count of sleeping reads took two. A
// read so counted may sleep in read(2) at any point, and Close waits for
// the count to fall to zero (wakeUntilAwake) before it closes the
// descriptor.
func (f *FD) readBlocking(b []byte) (int, error) {
	if f.closed.Load() {
		// Not counted: reads that keep coming after Close must not keep
		// the count from reaching zero (wakeUntilAwake samples it).
		return 0, net.ErrClosed
	}
	v := f.sleep.Add(sleepOne)
	defer f.sleep.Add(awake)
	if (v>>32)%yieldEvery == 0 {
		runtime.Gosched() // see yieldEvery
	}
	for {
		if err := f.check(&f.rdl); err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, nil
		}
		n, err := f.readOnce(b)
		switch {
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			// Nothing to read while polling, or a sleeping read woken by
			// Close or a deadline (then the wait returns at once). Were
			// the flag set behind this FD's back (through a duplicate),
			// the wait keeps the loop from spinning.
			f.wait(unix.POLLIN, &f.rdl)
		case errors.Is(err, net.ErrClosed):
			return 0, err
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// readOnce makes one read(2): a blocking one when there is no read
// deadline, a non-blocking one when there is. It sets the descriptor's
// O_NONBLOCK flag for the read it makes.
//
// While the flag is clear it takes no lock to sleep: the read is counted
// in FD.sleep (readBlocking) before it looks at the deadline and Close. A
// waker stores the deadline (or closed) first, then loads the count under
// nbmu and, when a read is counted, sets the flag and signals it. In the
// one order of these sequentially consistent operations, either the read
// sees the deadline or Close (and polls, or returns), or the waker sees
// the read counted (and wakes it, after the flag is set). A non-blocking
// read is made under nbmu, so no other reader clears the flag under it: a
// direct read(2) must never sleep, as the runtime does not know about it.
func (f *FD) readOnce(b []byte) (int, error) {
	if !f.nbSet.Load() && f.rdl.Load() == 0 && !f.closed.Load() {
		return blockingRead(f.fd, b)
	}
	f.nbmu.Lock()
	sleep, err := f.setFlagLocked()
	if err != nil || sleep {
		f.nbmu.Unlock()
		if err != nil {
			return 0, err
		}
		return blockingRead(f.fd, b)
	}
	defer f.nbmu.Unlock()
	return rawRead(f.fd, b)
}

// setFlagLocked, called under nbmu, makes the descriptor's O_NONBLOCK flag
// what the next read needs: clear for a read that sleeps (no deadline;
// sleep is true), set for one that polls. It returns net.ErrClosed after
// Close.
func (f *FD) setFlagLocked() (sleep bool, err error) {
	if f.closed.Load() {
		return false, net.ErrClosed
	}
	sleep = f.rdl.Load() == 0
	if f.nbSet.Load() == sleep {
		if err := unix.SetNonblock(f.fd, !sleep); err != nil {
			return false, os.NewSyscallError("fcntl", err)
		}
		f.nbSet.Store(!sleep)
	}
	return sleep, nil
}

// Steps of FD.sleep: sleepOne counts a read in, as one that may be asleep
// and as one more read so far; awake, added, counts it out again.
const (
	sleepOne = 1<<32 | 1
	awake    = ^uint64(0) // -1: the low half only, as it is never 0 then
)

// sleeping returns how many reads are counted in (see readBlocking): they
// may be asleep in read(2).
func (f *FD) sleeping() uint32 { return uint32(f.sleep.Load()) }

// wakeSleepers makes a read asleep in read(2) return, to look at a
// deadline set after it fell asleep. A later read sleeps again when the
// deadline is gone.
func (f *FD) wakeSleepers() {
	f.ops.RLock()
	defer f.ops.RUnlock()
	if f.closed.Load() {
		return // Close has woken them
	}
	if f.setNonblock() > 0 {
		kickReaders(f.fd)
	}
}

// wakeUntilAwake is wakeSleepers for Close: the FD is closed (no read
// sleeps again, and a read that starts now returns before it uses the
// descriptor), and it signals until every read under way has returned, so
// that Close can then take ops and close the descriptor. Only Close calls
// it, before it takes ops, while the descriptor is still open.
func (f *FD) wakeUntilAwake() {
	// A read that polls (it has a deadline) or has not yet gone to sleep
	// returns on its own, woken by the Close eventfd or finding closed:
	// give it a few chances before scanning the threads and sleeping.
	for i := 0; i < 3 && f.sleeping() > 0; i++ {
		runtime.Gosched()
	}
	pause := 50 * time.Microsecond
	for f.setNonblock() > 0 {
		kickReaders(f.fd)
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// setNonblock sets O_NONBLOCK on the descriptor when a read may be asleep
// in read(2), so that it does not sleep again once woken, and returns how
// many may be. With none it leaves the flag alone: it belongs to the open
// file, which duplicates (Descriptors) share, and a Close must not change
// it for them. It sets the flag even when nbSet says it is set, as a
// duplicate's holder may have cleared it.
func (f *FD) setNonblock() uint32 {
	f.nbmu.Lock()
	defer f.nbmu.Unlock()
	n := f.sleeping()
	if n > 0 && unix.SetNonblock(f.fd, true) == nil {
		f.nbSet.Store(true)
	}
	return n
}

// restoreBlocking clears O_NONBLOCK if this FD set it, so that the open
// file is left blocking, as NewPipeReader made it, for the holders of
// duplicates. Close calls it holding ops, before it closes the descriptor.
func (f *FD) restoreBlocking() {
	if f.nbSet.Load() {
		unix.SetNonblock(f.fd, false)
		f.nbSet.Store(false)
	}
}

// kickReaders sends SIGURG to every thread of the process that is asleep
// in read(2) on fd, that is running (it may be on its way into that
// sleep: a signal pending when it gets there ends the sleep at once), or
// whose state cannot be read.
func kickReaders(fd int) {
	d, err := os.Open(taskDir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	want := []byte(strconv.Itoa(unix.SYS_READ) + " 0x" + strconv.FormatUint(uint64(fd), 16) + " ")
	pid := unix.Getpid()
	for _, name := range names {
		tid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if sc, err := os.ReadFile(taskDir + "/" + name + "/syscall"); err == nil && !bytes.HasPrefix(sc, want) && !bytes.HasPrefix(sc, running) {
			continue
		}
		unix.Tgkill(pid, tid, unix.SIGURG)
	}
}

// running is what /proc/PID/task/TID/syscall says of a thread that is
// not asleep.
var running = []byte("running")

// blockingRead is read(2) through the runtime's system-call path, for a
// read that may sleep.
func blockingRead(fd int, b []byte) (int, error) {
	n, _, errno := unix.Syscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	raceReadDone(b[:n])
	return int(n), nil
}
