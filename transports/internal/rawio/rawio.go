// Package rawio does I/O on a descriptor with direct system calls instead
// of Go's network poller: read(2) and write(2) on a non-blocking
// descriptor, and, when it is not ready, ppoll(2) in the calling thread.
// It is the "io=raw" variant of the socket and pipe transports, which
// measures what the poller costs: with the poller, a Read that finds no
// data parks the goroutine, and an epoll wake-up and the scheduler must
// run it again; with rawio the thread itself sleeps in the kernel and
// returns straight into the read.
//
// The runtime is not told about these calls (they are raw system calls,
// as runtime-internal code makes them): read and write never block on a
// non-blocking descriptor, and a wait first sleeps in ppoll for at most
// directSlice with the goroutine keeping its P, as a spinning wait would
// but without burning the CPU. Only a wait longer than that goes through
// the runtime's system-call path, which lets it hand the P to another
// thread. Announcing every short sleep instead costs a round trip twice:
// the runtime's entry and exit bookkeeping, and its monitor thread, which
// on seeing a P in a system call across two of its ticks (20 µs apart)
// takes the P, wakes another thread to run it, and keeps ticking every
// 20 µs from then on; pinned to one CPU, each of those wake-ups is a
// context switch on the CPU the measurement runs on. A goroutine sleeping
// in a direct wait still answers preemption: the runtime's signal ends the
// ppoll (EINTR) and the loop around it reaches a preemption point, so a
// stop-the-world is not held up. Only a goroutine that is the process's
// sole waiter sleeps directly: with many connections waiting at once
// (fanin), a direct sleep would keep the P from the goroutines that other
// connections' data could wake, so every wait then takes the runtime's path.
//
// On a socket (NewSocket) neither a read nor a write needs a poll: the
// descriptor is left blocking with a receive and a send timeout of
// directSlice (SO_RCVTIMEO, SO_SNDTIMEO), so a Read is one recv(2) that
// sleeps until data arrives, as a C program's read does, and a Write that
// finds the socket's buffer full (a send with MSG_DONTWAIT that fails with
// EAGAIN or sends only part) sends the rest with a send(2) that sleeps
// until there is space, as a C program's blocking write does. Under a
// stream of large writes this is what keeps the writer from a failed send,
// a poll and a second send for every message the reader falls behind on.
// These sleeps follow the sole-waiter rule above (otherwise the call
// passes MSG_DONTWAIT), and once one times out (a recv that got nothing, a
// send that could not send all it was given) the call polls the runtime's
// way from then on. The kernel counts socket timeouts in clock ticks,
// rounded up, so such a sleep lasts up to sockSleepMax rather than
// directSlice (up to 8 ms on a 250 Hz kernel), and a deadline nearer than
// that is kept by polling from the start. A Close waits for a recv or send
// already asleep to return: a recv within sockSleepMax; a send, for which
// a Unix socket starts the timeout again for each part of the buffer it
// finds space for, within sockSleepMax per part of the directSendMax bytes
// it is given at most.
//
// A pipe's read end (NewPipeReader) needs no poll either while it has no
// read deadline: it is blocking, and a Read is one read(2) that sleeps
// until data arrives. A pipe has no receive timeout, so Close and a
// deadline set meanwhile end that sleep another way: see blocking.go.
//
// PollWriter and PollReader work the other way, on a descriptor Go's
// poller manages (the default, io=netpoll, connections): they wait in the
// poller, but make their reads and writes as direct system calls that
// cannot block (see nowait.go); PollWriter adds the vectored write an
// *os.File lacks, and PollReader yields the CPU once before it parks (see
// pollreader.go).
//
// Deadlines, Close and concurrent use keep net.Conn's contract: a Close
// wakes every blocked call at once (an eventfd in each poll set becomes
// readable, and a pipe read asleep in read(2) gets a signal), but for a
// recv or send asleep on a socket, which it waits for (above); deadlines
// are checked before every call and bound every poll, and a deadline
// changed while a call sleeps takes effect within pollSlice (at once for a
// pipe read asleep in read(2)).
package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pollSlice bounds one ppoll sleep; a deadline changed while a call sleeps
// is seen within it.
const pollSlice = 20 * time.Millisecond

// directSendMax is the most bytes a send that may sleep (on a socket found
// full) is given: the kernel may restart the send's timeout for every part
// of them it waits for space for (a Unix stream socket does), and a Close
// waits for the send to return (see the package doc). It holds a 64 KiB
// message's rest after a first send that filled the socket.
const directSendMax = 64 << 10

// sockSleepMax bounds a recv or send that sleeps with a socket's timeout
// of directSlice: the kernel counts that timeout in clock ticks, rounded
// up, and the sleep ends at a tick, so it may last two ticks: 20 ms on a
// 100 Hz kernel, 8 ms on a 250 Hz one.
const sockSleepMax = 20 * time.Millisecond

// directSlice bounds the first sleep of a wait, made without telling the
// runtime (see the package doc): long enough to cover a round trip between
// two CPUs on a loaded machine, short enough that the other goroutines of
// a P-starved process are not held up for long. (A socket's timeout of
// directSlice sleeps longer: sockSleepMax.)
const directSlice = time.Millisecond

// waiters counts the goroutines of this process now waiting on any FD. A
// direct sleep keeps its P (see the package doc), which is harmless when it
// is the process's only waiter — one connection doing request/response —
// but with many connections waiting at once (fanin) each direct sleep would
// hold up the goroutines the others could wake, for up to directSlice (on
// a socket sockSleepMax), and with GOMAXPROCS 1 (a pinned process) stall
// the process. So only a sole waiter sleeps directly; the others sleep
// where the runtime sees them.
var waiters atomic.Int32

// soleWaiter registers a wait that may sleep directly and reports whether
// it may: true when no other goroutine of the process is waiting. When it
// returns true the caller calls endWait after its sleep.
func soleWaiter() bool {
	if waiters.Load() != 0 {
		return false // the common case under load: no write to the shared counter
	}
	if waiters.Add(1) == 1 {
		return true
	}
	waiters.Add(-1)
	return false
}

// endWait ends a wait registered by soleWaiter or slowWait.
func endWait() { waiters.Add(-1) }

// FD is a descriptor used with direct system calls. It is safe for
// concurrent use by one reader and one writer (and any number of Close and
// deadline calls); reads are not serialised with each other, nor writes.
type FD struct {
	fd   int
	wake int // eventfd, made readable by Close

	closed atomic.Bool
	rdl    atomic.Int64 // read deadline, Unix ns; 0: none
	wdl    atomic.Int64 // write deadline, Unix ns; 0: none

	// readWaited: the last Read waited for data and then got less than
	// it asked for, so the next one polls before it reads. In a
	// request/response exchange the reply is rarely there the moment a
	// Read starts, and the read(2) that would find so (EAGAIN) is a
	// system call on every round trip; while data keeps arriving ahead of
	// the reader (reads fill their buffers), Read reads at once.
	readWaited atomic.Bool

	// sock: fd is a blocking socket with receive and send timeouts of
	// directSlice (NewSocket); a sole waiter's reads sleep in recv, and
	// its sends after one that found the socket full sleep in send; every
	// other call passes MSG_DONTWAIT.
	sock bool

	// blk: fd is a pipe's read end whose reads sleep in a blocking read(2)
	// (NewPipeReader; see blocking.go). nbmu serialises the changes of the
	// descriptor's O_NONBLOCK flag (nbSet: set now; changed under nbmu);
	// sleep counts, in its low 32 bits, the reads under way (each may be
	// asleep in read(2)), and in its high 32 bits the reads so far, for
	// yieldEvery: one atomic add per read does both, and stands in for
	// ops, which these reads do not take (see readBlocking).
	blk   bool
	nbmu  sync.Mutex
	nbSet atomic.Bool
	sleep atomic.Uint64

	// ops is held (read-locked) by every call using fd but a pipe
	// reader's Read (counted in sleep instead); Close waits for those
	// reads, then takes ops exclusively before it closes fd, so no call
	// uses a closed (or reused) descriptor.
	ops sync.RWMutex
}

// New takes ownership of fd, sets it non-blocking and returns an FD.
func New(fd int) (*FD, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	return newFD(fd, false)
}

// newFD returns an FD on fd with its Close eventfd.
func newFD(fd int, sock bool) (*FD, error) {
	w, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	return &FD{fd: fd, wake: w, sock: sock}, nil
}

// NewSocket takes ownership of fd, a stream socket, and returns an FD
// whose reads sleep in recv(2) and writes in send(2) (see the package
// doc): it sets fd blocking, with receive and send timeouts of
// directSlice.
func NewSocket(fd int) (*FD, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	tv := unix.NsecToTimeval(int64(directSlice))
	for _, opt := range [...]int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	return newFD(fd, true)
}

// Read reads into b with read(2), sleeping in ppoll(2) while there is
// nothing to read (and first, when the last Read had to; see readWaited);
// on a socket (NewSocket) it sleeps in recv(2), and on a pipe reader
// without a read deadline (NewPipeReader) in read(2) itself.
// It returns io.EOF at the end of the stream,
// net.ErrClosed after Close, os.ErrDeadlineExceeded when the read deadline
// passes, and other errors as *os.SyscallError.
func (f *FD) Read(b []byte) (int, error) {
	if f.blk {
		return f.readBlocking(b) // counted in sleep, not in ops
	}
	f.ops.RLock()
	defer f.ops.RUnlock()
	if f.sock {
		return f.recv(b)
	}
	pollFirst := f.readWaited.Load()
	waited := pollFirst
	for {
		if err := f.check(&f.rdl); err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, nil
		}
		if pollFirst {
			pollFirst = false
			f.wait(unix.POLLIN, &f.rdl)
			continue // re-check Close and the deadline, then read
		}
		n, err := rawRead(f.fd, b)
		switch {
		case err == nil && n == 0:
			f.readWaited.Store(false)
			return 0, io.EOF
		case err == nil:
			f.readWaited.Store(waited && n < len(b))
			return n, nil
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			waited = true
			f.wait(unix.POLLIN, &f.rdl)
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// recv is Read on a socket: recv(2) sleeping up to the socket's timeout
// (sockSleepMax), then, if nothing came, non-blocking recv calls between
// polls. A deadline closer than sockSleepMax is kept by polling from the
// start.
func (f *FD) recv(b []byte) (int, error) {
	flags := 0
	for {
		if err := f.check(&f.rdl); err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, nil
		}
		direct := flags == 0 && f.mayBlock(&f.rdl)
		if !direct {
			flags = unix.MSG_DONTWAIT
		}
		n, err := rawRecv(f.fd, b, flags)
		if direct {
			endWait()
		}
		switch {
		case err == nil && n == 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			flags = unix.MSG_DONTWAIT
			f.slowWait(unix.POLLIN, &f.rdl, pollSlice)
		default:
			return 0, os.NewSyscallError("read", err)
		}
	}
}

// mayBlock reports whether a call on a socket may sleep in the kernel
// (with the socket's timeout: up to sockSleepMax) with the deadline in dl:
// when the deadline is not closer than that, and this is the process's
// sole waiter (soleWaiter; the caller then calls endWait after the call).
// Otherwise the call passes MSG_DONTWAIT: a closer deadline is kept by
// polling, and with another goroutine waiting, a sleep must not hold the P.
func (f *FD) mayBlock(dl *atomic.Int64) bool {
	if t := dl.Load(); t != 0 && time.Duration(t-time.Now().UnixNano()) < sockSleepMax {
		return false
	}
	return soleWaiter()
}

// Write writes all of b with write(2), sleeping in ppoll(2) while the
// descriptor is full; on a socket with send(2), which once the socket is
// full a sole waiter lets sleep in the kernel first (see the package doc).
// Errors are as for Read (EPIPE when the reader is gone), with the count
// of bytes written before them.
func (f *FD) Write(b []byte) (int, error) {
	f.ops.RLock()
	defer f.ops.RUnlock()
	total := 0
	var st sendState
	for {
		if err := f.check(&f.wdl); err != nil {
			return total, err
		}
		if total == len(b) {
			return total, nil
		}
		direct := st.mayBlock(f)
		part := b[total:]
		if direct && len(part) > directSendMax {
			part = part[:directSendMax]
		}
		n, err := f.write(part, direct)
		if direct {
			endWait()
		}
		switch {
		case err == nil:
			total += n
			st.sent(f, direct, n < len(part))
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			f.waitWritable(&st, direct)
		default:
			return total, os.NewSyscallError("write", err)
		}
	}
}

// WriteBuffers writes all of *v with writev(2), consuming it as
// net.Buffers.WriteTo does, and sleeping in ppoll(2) while the descriptor
// is full; on a socket with sendmsg(2), which once the socket is full a
// sole waiter lets sleep in the kernel first, as Write does. Errors are as
// for Write, with the count of bytes written before them.
func (f *FD) WriteBuffers(v *net.Buffers) (int64, error) {
	f.ops.RLock()
	defer f.ops.RUnlock()
	var total int64
	var st sendState
	for {
		if err := f.check(&f.wdl); err != nil {
			return total, err
		}
		direct := st.mayBlock(f)
		n, want, err := f.writev(v, direct)
		if direct {
			endWait()
		}
		total += n
		switch {
		case err == nil && len(*v) == 0:
			return total, nil
		case err == nil:
			st.sent(f, direct, n < want)
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			f.waitWritable(&st, direct)
		default:
			return total, os.NewSyscallError("writev", err)
		}
	}
}

// sendState is where a Write or WriteBuffers on a socket stands: full,
// the socket was found full (the last send failed with EAGAIN or sent only
// part), so the next send may sleep in the kernel; slept, a send that
// could sleep timed out (or a signal cut it short), so the call polls the
// runtime's way from then on (waitWritable).
type sendState struct{ full, slept bool }

// sent updates st after a send that sent something: short, not all it was
// given; direct, it could sleep (then being short means it timed out or
// was interrupted).
func (st *sendState) sent(f *FD, direct, short bool) {
	st.full = f.sock && short
	if direct && short {
		st.slept = true
	}
}

// mayBlock reports whether the next send may sleep in the kernel; when it
// returns true the caller calls endWait after the send (FD.mayBlock).
func (st *sendState) mayBlock(f *FD) bool {
	return f.sock && st.full && !st.slept && f.mayBlock(&f.wdl)
}

// waitWritable is what a write does after EAGAIN: after a send that could
// sleep (direct), or once one of the call's did and timed out, a poll the
// runtime knows about; on a socket not yet seen full since its last send
// of all it was given, nothing but note that it is full (the next send
// sleeps in the kernel if it may; not while another goroutine of the
// process waits); otherwise, and on anything but a socket, wait.
func (f *FD) waitWritable(st *sendState, direct bool) {
	switch {
	case direct || st.slept:
		st.slept = true
		f.slowWait(unix.POLLOUT, &f.wdl, pollSlice)
	case f.sock && !st.full && waiters.Load() == 0:
		st.full = true
	default:
		f.wait(unix.POLLOUT, &f.wdl)
	}
}

// sendFlags returns the flags of a send(2) on a socket: MSG_NOSIGNAL, and
// MSG_DONTWAIT unless the call may sleep (direct).
func sendFlags(direct bool) uintptr {
	if direct {
		return unix.MSG_NOSIGNAL
	}
	return unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
}

// write is one write of b: send(2) on a socket, which sleeps up to the
// socket's timeout when direct and never blocks otherwise; write(2),
// which never blocks, on anything else.
func (f *FD) write(b []byte, direct bool) (int, error) {
	if !f.sock {
		return rawWrite(f.fd, b)
	}
	raceWriteStart()
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(f.fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
		sendFlags(direct), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	raceWritten(b[:n])
	return int(n), nil
}

// writev is one vectored write of *v, consuming what it wrote, and
// returns the bytes written and, on a socket, the bytes it asked to write
// (0 otherwise): sendmsg(2) on a socket (sleeping as write's send does
// when direct, and then given at most directSendMax bytes), writev(2),
// which never blocks, otherwise.
func (f *FD) writev(v *net.Buffers, direct bool) (n, want int64, err error) {
	if !f.sock {
		n, err := Writev(f.fd, v)
		return n, 0, err
	}
	var iov [maxIovecs]unix.Iovec
	limit := 0
	if direct {
		limit = directSendMax
	}
	k, want := iovecs(&iov, *v, limit)
	if k == 0 {
		*v = (*v)[:0]
		return 0, 0, nil
	}
	msg := unix.Msghdr{Iov: &iov[0]}
	msg.SetIovlen(k)
	raceWriteStart()
	r, _, errno := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(f.fd), uintptr(unsafe.Pointer(&msg)), sendFlags(direct))
	if errno != 0 {
		return 0, want, errno
	}
	consume(v, int64(r))
	return int64(r), want, nil
}

// iovecs fills iov with the non-empty buffers of v, as many as fit and, if
// limit > 0, no more than limit bytes of them (the last one cut short),
// and returns how many it filled and their bytes.
func iovecs(iov *[maxIovecs]unix.Iovec, v net.Buffers, limit int) (k int, bytes int64) {
	for _, b := range v {
		if k == len(iov) || limit > 0 && bytes == int64(limit) {
			break
		}
		if len(b) == 0 {
			continue
		}
		if limit > 0 && int64(len(b)) > int64(limit)-bytes {
			b = b[:int64(limit)-bytes]
		}
		iov[k].Base = unsafe.SliceData(b)
		iov[k].SetLen(len(b))
		k++
		bytes += int64(len(b))
	}
	return k, bytes
}

// maxIovecs is how many buffers one Writev call passes to the kernel.
const maxIovecs = 16

// Writev makes one writev(2) of the first buffers of *v on fd, as a direct
// system call (fd must be non-blocking, so it does not block), and
// consumes the bytes written from *v. It returns the count and the call's
// error, unix.EAGAIN when nothing could be written.
func Writev(fd int, v *net.Buffers) (int64, error) {
	var iov [maxIovecs]unix.Iovec
	k, _ := iovecs(&iov, *v, 0)
	if k == 0 {
		*v = (*v)[:0]
		return 0, nil
	}
	raceWriteStart()
	r, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	if errno != 0 {
		return 0, errno
	}
	n := int64(r)
	consume(v, n)
	return n, nil
}

// consume drops the first n bytes of *v, and the buffers emptied.
func consume(v *net.Buffers, n int64) {
	for len(*v) > 0 {
		b := (*v)[0]
		if int64(len(b)) > n {
			raceWritten(b[:n])
			(*v)[0] = b[n:]
			return
		}
		raceWritten(b)
		n -= int64(len(b))
		(*v)[0] = nil
		*v = (*v)[1:]
	}
}

// wait sleeps until fd is ready for events, Close is called, the deadline
// passes, or pollSlice elapses; the caller then looks again. It first
// sleeps for up to directSlice in a direct system call, then, if nothing
// happened, in one the runtime knows about.
func (f *FD) wait(events int16, dl *atomic.Int64) {
	d := pollSlice
	if t := dl.Load(); t != 0 {
		d = min(d, time.Duration(t-time.Now().UnixNano()))
	}
	if d <= 0 {
		return
	}
	fds := [2]unix.PollFd{{Fd: int32(f.fd), Events: events}, {Fd: int32(f.wake), Events: unix.POLLIN}}
	if !soleWaiter() {
		f.slowWait(events, dl, d)
		return
	}
	first := min(d, directSlice)
	ts := unix.NsecToTimespec(int64(first))
	n, errno := rawPpoll(&fds, &ts)
	endWait()
	if n != 0 || errno != 0 || d == first {
		return // ready, interrupted (EINTR: maybe a preemption) or done
	}
	f.slowWait(events, dl, d-first)
}

// slowWait is wait without the direct first sleep: one ppoll the runtime
// knows about, for at most d and never past the deadline.
func (f *FD) slowWait(events int16, dl *atomic.Int64, d time.Duration) {
	if t := dl.Load(); t != 0 {
		d = min(d, time.Duration(t-time.Now().UnixNano()))
	}
	if d <= 0 {
		return
	}
	fds := [2]unix.PollFd{{Fd: int32(f.fd), Events: events}, {Fd: int32(f.wake), Events: unix.POLLIN}}
	ts := unix.NsecToTimespec(int64(d))
	waiters.Add(1)
	unix.Ppoll(fds[:], &ts, nil) // EINTR, a timeout or readiness: the caller re-checks
	endWait()
}

// rawPpoll is ppoll(2) on fds with timeout ts and no signal mask, as a
// direct system call.
func rawPpoll(fds *[2]unix.PollFd, ts *unix.Timespec) (int, unix.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(fds)), uintptr(len(fds)),
		uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	return int(n), errno
}

// rawRead is read(2) as a direct system call; fd must be non-blocking.
func rawRead(fd int, b []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	raceReadDone(b[:n])
	return int(n), nil
}

// rawRecv is recv(2) with flags as a direct system call.
func rawRecv(fd int, b []byte, flags int) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)),
		uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	raceReadDone(b[:n])
	return int(n), nil
}

// rawWrite is write(2) as a direct system call; fd must be non-blocking.
func rawWrite(fd int, b []byte) (int, error) {
	raceWriteStart()
	n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	raceWritten(b[:n])
	return int(n), nil
}

// check returns the error a call must stop with before its next system
// call: net.ErrClosed after Close, os.ErrDeadlineExceeded once the
// deadline in dl has passed.
func (f *FD) check(dl *atomic.Int64) error {
	if f.closed.Load() {
		return net.ErrClosed
	}
	return expired(dl)
}

// expired returns os.ErrDeadlineExceeded when the deadline in dl passed.
func expired(dl *atomic.Int64) error {
	if t := dl.Load(); t != 0 && time.Now().UnixNano() >= t {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// SetReadDeadline sets the deadline of current and future reads; the zero
// time removes it.
func (f *FD) SetReadDeadline(t time.Time) error {
	if err := f.set(&f.rdl, t); err != nil {
		return err
	}
	if f.blk && !t.IsZero() {
		f.wakeSleepers() // a read asleep in read(2) takes up the deadline
	}
	return nil
}

// SetWriteDeadline sets the deadline of current and future writes.
func (f *FD) SetWriteDeadline(t time.Time) error { return f.set(&f.wdl, t) }

func (f *FD) set(dl *atomic.Int64, t time.Time) error {
	if f.closed.Load() {
		return net.ErrClosed
	}
	switch {
	case t.IsZero():
		dl.Store(0)
	case t.UnixNano() <= 0:
		dl.Store(1) // long past
	default:
		dl.Store(t.UnixNano())
	}
	return nil
}

// Shutdown calls shutdown(2) on a socket descriptor (how is unix.SHUT_WR
// and the like).
func (f *FD) Shutdown(how int) error {
	f.ops.RLock()
	defer f.ops.RUnlock()
	if f.closed.Load() {
		return net.ErrClosed
	}
	return os.NewSyscallError("shutdown", unix.Shutdown(f.fd, how))
}

// Control calls fn with the descriptor while no Close can close it (the
// shape of syscall.RawConn's Control).
func (f *FD) Control(fn func(fd uintptr)) error {
	f.ops.RLock()
	defer f.ops.RUnlock()
	if f.closed.Load() {
		return net.ErrClosed
	}
	fn(uintptr(f.fd))
	return nil
}

// Close wakes every blocked call (they return net.ErrClosed), waits for
// them to leave, and closes the descriptor. A second Close returns
// net.ErrClosed.
func (f *FD) Close() error {
	if f.closed.Swap(true) {
		return net.ErrClosed
	}
	var one = [8]byte{1}
	unix.Write(f.wake, one[:])
	if f.blk {
		f.wakeUntilAwake()
	}
	f.ops.Lock()
	defer f.ops.Unlock()
	if f.blk {
		f.restoreBlocking()
	}
	err := unix.Close(f.fd)
	unix.Close(f.wake)
	if err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// Dup returns a close-on-exec duplicate of the descriptor behind rc, for a
// caller that wants to use it with FD and close the original.
func Dup(rc interface {
	Control(func(fd uintptr)) error
}) (int, error) {
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	return nfd, nil
}
