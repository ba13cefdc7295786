package rawio

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reads and writes that cannot block, for PollReader and PollWriter.
//
// A descriptor's own Read and Write (an *os.File's, a net.Conn's) make
// each read(2) and write(2) through the runtime's system-call path, which
// is there for calls that may block: it lets the runtime give the P to
// another thread meanwhile. On a descriptor the poller manages the calls
// never block, but the path has a price of its own in a request/response
// exchange. While the process waits for the answer every P is idle, and
// the runtime's monitor thread (sysmon), seeing that, goes to sleep; the
// first call through the path afterwards — the read of the answer — wakes
// it (a futex wake-up), and it then runs on its 20 µs tick until it finds
// the process idle again. That is a wake-up and a few context switches per
// message on the CPUs of the exchange, and pinned to one CPU they are on
// the CPU the message is waiting for. On a 2-CPU VM, the 64 B round trip
// of the default pipe, unix and tcp-localhost variants with the two
// processes pinned to different CPUs took 2.0–2.6 times the C floor's
// with these calls, and 0.4–1.2 times without (results/floor-nowait-*.md).
//
// So PollReader and PollWriter make them as direct system calls, as the
// runtime's own network poller does, and in a form that cannot block
// whatever the descriptor's O_NONBLOCK flag says. (The flag belongs to the
// open file description, which duplicates share — see
// transports.DescriptorConn — and which another holder may make
// blocking.) A socket is read with recvfrom(2) and written with sendmsg(2),
// both with MSG_DONTWAIT; anything else with preadv2(2) and pwritev2(2)
// with RWF_NOWAIT at the current file position. A kernel that does not
// take RWF_NOWAIT for the descriptor (EOPNOTSUPP, or ENOSYS without
// preadv2) has it read and written the earlier way from then on:
// read(2) and writev(2) through the runtime's path, so that a blocking
// description, which would make them sleep, does not hold the P meanwhile.
//
// The monitor then stays asleep while the process does nothing but wait
// for messages and answer them. It still wakes for the next timer (a
// deadline, a time.Sleep), a garbage collection, and any system call
// made through the runtime's path. Until then it does not preempt a
// goroutine that computes for long, which matters only to a process with
// one P (GOMAXPROCS=1) whose other goroutines wait for that P meanwhile.

// nowait makes the non-blocking reads, or the writes, of one descriptor:
// each PollReader and PollWriter has its own, used under its mutex.
type nowait struct {
	sock bool // the descriptor is a socket
	// old: the kernel refused RWF_NOWAIT once; calls are made the earlier
	// way from then on (see above).
	old bool
}

// newNowait returns the nowait of the descriptor behind rc.
func newNowait(rc syscall.RawConn) *nowait {
	n := &nowait{}
	rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		n.sock = err == nil
	})
	return n
}

// unsupported reports whether errno says the kernel does not take
// RWF_NOWAIT (or preadv2/pwritev2) for the descriptor.
func unsupported(errno syscall.Errno) bool {
	return errno == unix.EOPNOTSUPP || errno == unix.ENOSYS
}

// curPos is the file position argument of preadv2 and pwritev2 (low and
// high halves) that means the current position, -1.
const curPos = ^uintptr(0)

// read is one read into b that cannot block: the count read, or the
// system call's error (unix.EAGAIN when there is nothing to read).
func (n *nowait) read(fd int, b []byte) (int, error) {
	if n.sock {
		return rawRecv(fd, b, unix.MSG_DONTWAIT)
	}
	if !n.old {
		iov := unix.Iovec{Base: unsafe.SliceData(b)}
		iov.SetLen(len(b))
		r, _, errno := unix.RawSyscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, curPos, curPos, unix.RWF_NOWAIT)
		if errno == 0 {
			raceReadDone(b[:r])
			return int(r), nil
		}
		if !unsupported(errno) {
			return 0, errno
		}
		n.old = true
	}
	// Through the runtime's path: a blocking description (see above) must
	// not hold the P while it sleeps.
	k, err := unix.Read(fd, b)
	if err != nil {
		return 0, err
	}
	raceReadDone(b[:k])
	return k, nil
}

// writev is one vectored write of the first buffers of *v that cannot
// block, consuming what it wrote: the count written, or the system call's
// error (unix.EAGAIN when nothing could be written).
func (n *nowait) writev(fd int, v *net.Buffers) (int64, error) {
	var iov [maxIovecs]unix.Iovec
	k, _ := iovecs(&iov, *v, 0)
	if k == 0 {
		*v = (*v)[:0]
		return 0, nil
	}
	raceWriteStart()
	var r uintptr
	var errno syscall.Errno
	switch {
	case n.sock:
		msg := unix.Msghdr{Iov: &iov[0]}
		msg.SetIovlen(k)
		r, _, errno = unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	case !n.old:
		r, _, errno = unix.RawSyscall6(unix.SYS_PWRITEV2, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k), curPos, curPos, unix.RWF_NOWAIT)
		if !unsupported(errno) {
			break
		}
		n.old = true
		fallthrough
	default:
		// Through the runtime's path, as read's fallback.
		r, _, errno = unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
	}
	if errno != 0 {
		return 0, errno
	}
	consume(v, int64(r))
	return int64(r), nil
}
