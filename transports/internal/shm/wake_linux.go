package shm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/ctxdeadline"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
)

// The wake page and the doorbell.
//
// Every process that has shm connections has one wake page, a sealed
// 4 KiB memfd holding the word "sleeping" that its poller
// (poller_linux.go) sets while it sleeps, and one doorbell, an eventfd the
// poller sleeps on by reading it through the runtime's network poller (so
// that sleeping holds no OS thread, and a busy process picks the ring up
// in its scheduler loop without a thread wake-up). When a connection is
// set up, each side hands the other both with SCM_RIGHTS over the
// connection's liveness socket (the dialer with its hello, the listener
// with its answer); each side maps the other's page and keeps its
// doorbell. A side that publishes bytes (or frees space) then looks at one
// word, the other process's "sleeping", whatever the number of connections
// between the two: while the other poller polls, it is 0 and nothing more
// happens; when it is 1, the side clears it and rings the doorbell (an
// 8-byte write), once for the whole batch of connections. See
// poller_linux.go for the lost-wake-up argument.
//
// Layout of the page (native byte order):
//
//	0x00 u64 magic     wakeMagic ("ipcbwake")
//	0x08 u32 version   wakeVersion
//	0x40 u32 sleeping  1 while the poller sleeps (or is about to); on its
//	                   own cache line

const (
	wakeMagic   uint64 = 0x656b617762637069 // "ipcbwake" little-endian
	wakeVersion uint32 = 1
	wakeSize           = 4096
	// wakeName is the memfd's name (/proc/PID/fd shows "/memfd:ipcbench-wake").
	wakeName = "ipcbench-wake"
)

// wakeHeader is the start of a wake page.
type wakeHeader struct {
	magic    atomic.Uint64
	version  atomic.Uint32
	_        [cacheLine - 12]byte
	sleeping atomic.Uint32
}

// wakePage is a mapped wake page and the doorbell that goes with it: this
// process's own, or a peer's.
type wakePage struct {
	mem []byte
	h   *wakeHeader
	// bell is the doorbell's descriptor: for a peer's page a duplicate
	// this side owns (closed by close), for the own page that of
	// ownWake.bell.
	bell int
	// deferred is set while the poller holds a ring for this page
	// (under thePoller.pmu).
	deferred bool
}

// ownWake is this process's wake page, made with the first connection or
// listener and released with the last (so that nothing stays mapped or
// open once every connection is closed).
var ownWake struct {
	mu    sync.Mutex
	refs  int
	page  *wakePage
	files []*os.File // the memfd and the doorbell, sent to peers
	bell  *os.File   // the doorbell (non-blocking, in the network poller)
}

// acquireWake returns this process's wake page and the files to send to
// peers (the memfd and the doorbell), making them if needed; every call
// must be paired with releaseWake.
func acquireWake() (*wakePage, []*os.File, error) {
	ownWake.mu.Lock()
	defer ownWake.mu.Unlock()
	if ownWake.refs == 0 {
		efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return nil, nil, unavailable("eventfd", err)
		}
		bell := os.NewFile(uintptr(efd), "ipcbench-doorbell")
		fd, err := unix.MemfdCreate(wakeName, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			bell.Close()
			return nil, nil, unavailable("memfd_create", err)
		}
		f := os.NewFile(uintptr(fd), wakeName)
		fail := func(err error) (*wakePage, []*os.File, error) {
			f.Close()
			bell.Close()
			return nil, nil, err
		}
		if err := unix.Fchmod(fd, uint32(private.FileMode)); err != nil {
			return fail(fmt.Errorf("wake page mode: %w", err))
		}
		if err := unix.Ftruncate(fd, wakeSize); err != nil {
			return fail(fmt.Errorf("sizing the wake page: %w", err))
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
			return fail(fmt.Errorf("sealing the wake page: %w", err))
		}
		mem, err := mapShared(f, wakeSize)
		if err != nil {
			return fail(err)
		}
		p := &wakePage{mem: mem, h: (*wakeHeader)(unsafe.Pointer(&mem[0])), bell: efd}
		p.h.magic.Store(wakeMagic)
		p.h.version.Store(wakeVersion)
		ownWake.page, ownWake.files, ownWake.bell = p, []*os.File{f, bell}, bell
	}
	ownWake.refs++
	return ownWake.page, ownWake.files, nil
}

// releaseWake drops one reference to this process's wake page, unmapping
// and closing it with the last.
func releaseWake() {
	ownWake.mu.Lock()
	defer ownWake.mu.Unlock()
	if ownWake.refs--; ownWake.refs > 0 {
		return
	}
	unmap(ownWake.page.mem)
	rendezvous.CloseFiles(ownWake.files)
	ownWake.page, ownWake.files, ownWake.bell = nil, nil, nil
}

// close unmaps a peer's wake page and closes its doorbell, ringing it
// first if the poller still holds a deferred ring for it.
func (p *wakePage) close() error {
	thePoller.forget(p)
	unix.Close(p.bell)
	return unmap(p.mem)
}

// ding is the 8-byte value a doorbell write adds to the eventfd.
var ding = []byte{1, 0, 0, 0, 0, 0, 0, 0}

// testBetweenSealsAndSize, when not nil, runs in mapPeerWake between its
// reads of the file's seals and of its size: a test stands there for a
// sender that changes the file in between.
var testBetweenSealsAndSize func(fd int)

// mapPeerWake maps a peer's wake page from f after checking that it is a
// sealed memfd of the right size holding a valid header, and takes a
// duplicate of its doorbell bell.
func mapPeerWake(f, bell *os.File) (*wakePage, error) {
	var st unix.Stat_t
	seals := -1
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer's wake page: %w: %w", err, transports.ErrBadEndpoint)
	}
	var cerr error
	err = rc.Control(func(fd uintptr) {
		// Seals first: they cannot be removed, so a size read after them
		// holds. Read the other way round, the sender could shrink the
		// file between the two reads and then seal it, and this process
		// would map a page past the file's end and die of SIGBUS.
		if v, err := unix.FcntlInt(fd, unix.F_GET_SEALS, 0); err == nil {
			seals = v
		}
		if testBetweenSealsAndSize != nil {
			testBetweenSealsAndSize(int(fd))
		}
		cerr = unix.Fstat(int(fd), &st)
	})
	if err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("peer's wake page: %w: %w", err, transports.ErrBadEndpoint)
	case st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != wakeSize:
		return nil, fmt.Errorf("peer's wake page is not a %d-byte file: %w", wakeSize, transports.ErrBadEndpoint)
	case seals < 0 || seals&unix.F_SEAL_SHRINK == 0:
		return nil, fmt.Errorf("peer's wake page is not sealed against shrinking: %w", transports.ErrBadEndpoint)
	}
	mem, err := mapShared(f, wakeSize)
	if err != nil {
		return nil, err
	}
	p := &wakePage{mem: mem, h: (*wakeHeader)(unsafe.Pointer(&mem[0]))}
	if p.h.magic.Load() != wakeMagic || p.h.version.Load() != wakeVersion {
		unmap(mem)
		return nil, corruptf("peer's wake page has magic %#x version %d", p.h.magic.Load(), p.h.version.Load())
	}
	brc, err := bell.SyscallConn()
	if err == nil {
		err = brc.Control(func(fd uintptr) {
			var st unix.Stat_t
			if cerr = unix.Fstat(int(fd), &st); cerr == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
				cerr = fmt.Errorf("peer's doorbell is a regular file: %w", transports.ErrBadEndpoint)
			}
			if cerr == nil {
				cerr = checkEventfd(int(fd))
			}
			if cerr == nil {
				p.bell, cerr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
			}
		})
	}
	if err == nil {
		err = cerr
	}
	if err != nil {
		unmap(mem)
		return nil, fmt.Errorf("peer's doorbell: %w", err)
	}
	return p, nil
}

// checkEventfd refuses a doorbell that is not an eventfd, by what
// /proc/self/fd says it is (when /proc is not there to ask, it is taken
// as one). ring writes it holding the poller's lock: a descriptor whose
// write can block (a pipe nobody reads, a socket) would stop every
// connection of this process that rings a doorbell, the other peers'
// too, for as long as the one that handed it over stays alive.
func checkEventfd(fd int) error {
	what, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || what == "anon_inode:[eventfd]" {
		return nil
	}
	return fmt.Errorf("peer's doorbell is %s, not an eventfd: %w", what, transports.ErrBadEndpoint)
}

// wakeUp rings the doorbell of the poller that p belongs to, if it sleeps
// (or is about to). Called after publishing bytes or space, with Go's
// sequentially consistent atomics on both sides. The doorbell is
// non-blocking; a write that fails leaves the counter high enough to wake
// the poller anyway.
func (p *wakePage) wakeUp() {
	if p.h.sleeping.Load() != 0 && !thePoller.deferRing(p) {
		p.ring()
	}
}

// ring rings p's doorbell if its poller still sleeps.
func (p *wakePage) ring() {
	if p.h.sleeping.Swap(0) != 0 {
		unix.Write(p.bell, ding)
	}
}

// Liveness-socket messages that set a connection up: the dialer's hello
// and the listener's answer, each one byte with the sender's wake page
// attached.
const (
	helloByte  = 'H'
	answerByte = 'W'
)

// sendWake writes message b on the liveness socket live with this
// process's wake page and doorbell (files) attached.
func sendWake(live *os.File, b byte, files []*os.File) error {
	rc, err := live.SyscallConn()
	if err != nil {
		return err
	}
	msg := []byte{b}
	return rendezvous.WithRights(files, func(oob []byte) error {
		var serr error
		err := rc.Write(func(fd uintptr) bool {
			serr = unix.Sendmsg(int(fd), msg, oob, nil, 0)
			return serr != unix.EAGAIN
		})
		if err != nil {
			return err
		}
		return serr
	})
}

// recvWake reads one set-up message from live, which must be want with
// two files attached (a wake page and a doorbell), and maps that page. A
// deadline on live bounds the wait.
func recvWake(live *os.File, want byte) (*wakePage, error) {
	rc, err := live.SyscallConn()
	if err != nil {
		return nil, err
	}
	var buf [1]byte
	oob := make([]byte, unix.CmsgSpace(4*2))
	var n, oobn, flags int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf[:], oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	files, ferr := rendezvous.Files(oob[:oobn], "ipcbench-peer-wake")
	defer rendezvous.CloseFiles(files)
	switch {
	case n == 0 && oobn == 0:
		return nil, errEOF
	case ferr != nil:
		return nil, corruptf("set-up message: %v", ferr)
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(files) != 2:
		return nil, corruptf("set-up message %q with %d files, want two", buf[:n], len(files))
	case buf[0] != want:
		return nil, corruptf("set-up byte %#x, want %#x", buf[0], want)
	}
	return mapPeerWake(files[0], files[1])
}

// errEOF is the liveness socket's end during set-up.
var errEOF = errors.New("liveness socket closed")

// answerTimeout bounds a dialer's wait for the listener's answer to its
// hello: a listener that handed over a channel and then stopped (SIGSTOP)
// or hung would otherwise keep a dial without a deadline waiting for ever.
// It is the time a listener gives a dialer to say hello
// (rendezvous.AttachTimeout); a variable for tests.
var answerTimeout = rendezvous.AttachTimeout

// recvWakeCtx is recvWake bounded by ctx and by answerTimeout. An error at
// or past ctx's deadline is ctx's (context.DeadlineExceeded), also when
// the socket's deadline fired before ctx's own timer; answerTimeout
// running out first is an error wrapping os.ErrDeadlineExceeded that says
// the listener did not answer.
func recvWakeCtx(ctx context.Context, live *os.File, want byte) (*wakePage, error) {
	dl := time.Now().Add(answerTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	live.SetReadDeadline(dl)
	stop := ctxdeadline.OnDone(ctx, live.SetReadDeadline)
	p, err := recvWake(live, want)
	stop() // ctx's deadline, if it fired, lands before it is cleared: it would end the connection's watch
	live.SetReadDeadline(time.Time{})
	if err != nil {
		if e := ctxdeadline.Ended(ctx); e != nil {
			err = e
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("none within %v (the listener is stopped, hung or overloaded): %w", answerTimeout, err)
		}
	}
	return p, err
}
