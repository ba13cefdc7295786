// Package pipe is the "pipe" transport: each connection is a pair of OS
// pipes (os.Pipe), one per direction, handed to the peer process as
// inherited files.
//
// # Channels and files
//
// Listen prepares Config.ConnCount() channels up front, because the peer
// inherits their files when it starts. For channel i, Endpoint().Files holds
//
//	Files[2i]   the read end of the listener-to-peer pipe (the peer reads it)
//	Files[2i+1] the write end of the peer-to-listener pipe (the peer writes it)
//
// Dial(ctx, ep) uses channel ep.Index: it duplicates those two descriptors,
// checks they are pipe ends of the right direction, writes a one-byte
// hello so the listener knows the peer attached, and then closes the two
// files of ep.Files (see transports.Transport.Dial), so that the
// connection's ends are the peer's only ones: its Close is what the
// listener's reader sees as io.EOF, even when the peer process lives on.
// The other channels' files, and both files when Dial fails, stay the
// caller's. Accept returns channels in the order their hellos arrive and
// then closes the listener's copies of that channel's peer-side ends, so
// that when the peer dies its reader sees io.EOF and its writer EPIPE. Each
// channel is dialled once. Listener.Close closes every file not yet handed
// out and unblocks Accept with an error wrapping net.ErrClosed.
//
// # By address
//
// With Config.Address set, the listener also listens on a rendezvous: a
// Unix socket (SOCK_SEQPACKET) at that path, whose directory must be the
// user's own and mode 0700 (made so when missing; a group- or
// world-accessible, foreign-owned or symlinked one, a path too long for
// sun_path, or one where something other than a stale socket is, is
// refused with an error wrapping transports.ErrBadEndpoint). Any process
// of the same user
// then dials Endpoint{Transport: "pipe", Address: path} (no Files) as
// often as it likes: for each dial the listener makes a fresh channel and
// passes its two peer ends over the socket with SCM_RIGHTS, and the bytes
// flow through the pipes. SO_PEERCRED refuses other users on both sides;
// Close removes the socket; a socket left by a killed listener is removed
// by the next Listen on the path. In this mode only Config.Conns channels
// (not ConnCount: zero means none) are prepared for inheritance. A dial
// to a missing address fails at once with an error wrapping
// transports.ErrBadEndpoint and os.ErrNotExist, one to a stale address
// (nobody listens) with one wrapping transports.ErrPeerGone; see package
// transports/internal/rendezvous. A dial waits for its channel at most 10
// seconds (rendezvous.AttachTimeout), or until its context's deadline when
// that is sooner: a listener that is stopped or hung fails it with an
// error wrapping os.ErrDeadlineExceeded (context.DeadlineExceeded for the
// context's deadline). A dialer that fetched its channel but does not
// attach (send its hello) within those 10 seconds loses it: the listener
// closes its ends.
//
// # Memory per connection
//
// Two kernel pipe buffers, one per direction: 64 KiB each by default
// (16 pages), or Config.BufferSize/pipe_size rounded up to a power of two
// pages; no user-space buffer beyond the caller's. MemoryPerConn
// (transports.MemoryReporter) states it for a Config: KernelBytes, the
// capacity F_GETPIPE_SZ reads back; per end two descriptors (four with
// io=raw), no goroutine, and at most 8 KiB of Go heap (0.3-2.2 KiB
// measured). The conformance suite holds 64 connections with full pipes
// and checks every figure.
//
// # Connections
//
// Connections are net.Conns over the two pipes with working deadlines (the
// pipes are non-blocking and use Go's poller). Errors are *net.OpError with
// Net "pipe": a closed connection gives net.ErrClosed, a passed deadline
// os.ErrDeadlineExceeded, a write to a pipe whose reader has gone
// transports.ErrPeerGone (wrapping EPIPE); the reader of a pipe whose
// writer has gone reads io.EOF. Connections implement
// transports.CloseWriter (closing the outgoing pipe) and
// transports.OptionReporter ("pipe_rx_bytes", "pipe_tx_bytes": the pipe
// capacities read back with F_GETPIPE_SZ).
//
// Config.BufferSize, when positive, sets both pipes' capacity with
// F_SETPIPE_SZ (the kernel rounds it up to a power-of-two number of pages).
// Above /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE the kernel
// refuses (EPERM): Listen then fails with an error wrapping
// transports.ErrUnavailable that says so. The option pipe_size (binary
// units: "64k", "1MiB") does the same per variant and overrides
// Config.BufferSize. By default (io=netpoll) both ends wait in Go's
// poller as an *os.File's do, but each read and write is a direct system
// call that cannot block (preadv2(2) and pwritev2(2) with RWF_NOWAIT), and
// a Read that finds nothing and is the process's only wait first yields
// the CPU once to a peer that may share it (see transports/internal/rawio's
// PollReader and PollWriter). The option io=raw
// makes connections bypass Go's poller: system calls in the calling
// thread, where a read without a deadline sleeps in one blocking read(2)
// as a C program's does and a write that finds the pipe full sleeps in
// ppoll(2) (see transports/internal/rawio), reported as io=raw|netpoll.
package pipe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/rawio"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
	"github.com/ipcbench/ipcbench/transports/internal/sockconn"
	"golang.org/x/sys/unix"
)

// Name is the transport's stable name.
const Name = "pipe"

// hello is the byte Dial writes so that Accept knows the peer attached.
const hello byte = 'p'

// pipeMaxSize is where Linux publishes the largest pipe size an
// unprivileged process may set.
const pipeMaxSize = "/proc/sys/fs/pipe-max-size"

// New returns the pipe transport.
func New() transports.Transport { return transport{} }

// OptPipeSize is the option that sets both pipes' capacity (F_SETPIPE_SZ).
const OptPipeSize = "pipe_size"

type transport struct{}

var (
	_ transports.Transport        = transport{}
	_ transports.OptionChecker    = transport{}
	_ transports.MemoryReporter   = transport{}
	_ transports.RendezvousDialer = transport{}
)

// Name returns "pipe".
func (transport) Name() string { return Name }

// Description says what pipe is (transports.Describer).
func (transport) Description() string {
	return "a pair of OS pipes, one per direction, inherited by the peer or handed over through a rendezvous socket; options pipe_size, io=raw"
}

// DialsThroughRendezvous reports true: a pipe pair is dialed by address
// through a rendezvous socket (transports.RendezvousDialer).
func (transport) DialsThroughRendezvous() bool { return true }

// Addr is the net.Addr of one end of a pipe connection, or of a listener
// (Index -1).
type Addr struct {
	// Role is "listener" or "dialer".
	Role string
	// Index is the channel number, -1 for a listener.
	Index int
}

// Network returns "pipe".
func (a Addr) Network() string { return Name }

// String returns "pipe:listener", "pipe:listener/0" or "pipe:dialer/0".
func (a Addr) String() string {
	if a.Index < 0 {
		return Name + ":" + a.Role
	}
	return Name + ":" + a.Role + "/" + strconv.Itoa(a.Index)
}

// channel is one prepared connection: two pipes, four ends.
type channel struct {
	index int
	r     *os.File // listener reads (peer-to-listener pipe)
	w     *os.File // listener writes (listener-to-peer pipe)
	peerR *os.File // peer reads; Files[2i]
	peerW *os.File // peer writes; Files[2i+1]

	handed   bool  // given to Accept's caller; guarded by listener.mu
	helloErr error // set by awaitHello before it reports the channel
}

// closeAll closes the channel's four ends. The peer ends may already be
// closed: a Dial in this process closes them (Endpoint files).
func (ch *channel) closeAll() error {
	var errs []error
	for _, f := range []*os.File{ch.r, ch.w, ch.peerR, ch.peerW} {
		if f != nil {
			if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	ch.peerR, ch.peerW = nil, nil
	return errors.Join(errs...)
}

// parseOptions validates opts (pipe_size, io) and returns the pipe
// capacity to set (pipe_size, else size, 0 for the system's) and whether
// io=raw was asked for. Listen, Dial and CheckOptions parse through it.
func parseOptions(size int, opts map[string]string) (pipeSize int, raw bool, err error) {
	if err := transports.CheckOptions(Name, opts, OptPipeSize, sockconn.OptIO); err != nil {
		return 0, false, err
	}
	if err := transports.CheckBufferSize(Name, size); err != nil {
		return 0, false, err
	}
	pipeSize = max(size, 0)
	if v, ok, err := transports.SizeOption(Name, opts, OptPipeSize); err != nil {
		return 0, false, err
	} else if ok {
		pipeSize = v
	}
	if raw, err = sockconn.RawIO(Name, opts); err != nil {
		return 0, false, err
	}
	return pipeSize, raw, nil
}

// CheckOptions reports whether Listen and Dial accept opts (pipe_size, io);
// see transports.OptionChecker. A pipe_size above the system's limit is
// well formed: Listen fails on it with transports.ErrUnavailable.
func (transport) CheckOptions(opts map[string]string) error {
	_, _, err := parseOptions(0, opts)
	return err
}

// DefaultOptions returns io=netpoll, the default spelled out
// (transports.DefaultOptioner).
func (transport) DefaultOptions() []string { return sockconn.DefaultOptions(false) }

// CanonicalValue returns pipe_size in one spelling ("64KiB" for "65536"),
// other values as they are (transports.OptionSpeller).
func (transport) CanonicalValue(key, value string) string {
	if key == OptPipeSize {
		return transports.CanonicalSize(value)
	}
	return value
}

// ListenerOnlyOptions returns "pipe_size": the listener sizes the pipes it
// makes, and a dialer uses the pipes it was handed as they are
// (transports.ListenerOnly).
func (transport) ListenerOnlyOptions() []string { return []string{OptPipeSize} }

var (
	_ transports.DefaultOptioner = transport{}
	_ transports.OptionSpeller   = transport{}
	_ transports.ListenerOnly    = transport{}
)

// Listen creates Config.ConnCount() channels and starts waiting for their
// hellos.
func (transport) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	size, raw, err := parseOptions(cfg.BufferSize, cfg.Options)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: listen: %w", Name, err)
	}
	n := cfg.ConnCount()
	if cfg.Address != "" {
		n = max(cfg.Conns, 0) // by address, only the channels asked for
	}
	l := &listener{
		raw:      raw,
		size:     size,
		options:  maps.Clone(cfg.Options),
		attached: make(chan *channel, n),
		done:     make(chan struct{}),
		ep: transports.Endpoint{
			Transport:  Name,
			BufferSize: size,
			Options:    maps.Clone(cfg.Options),
		},
	}
	for i := range n {
		ch, err := newChannel(i, size)
		if err != nil {
			for _, c := range l.chans {
				c.closeAll()
			}
			return nil, err
		}
		l.chans = append(l.chans, ch)
		l.files = append(l.files, ch.peerR, ch.peerW)
	}
	l.ep.Files = l.files
	l.ep.NumFiles = len(l.files)
	l.wg.Add(n)
	for _, ch := range l.chans {
		go l.awaitHello(ch)
	}
	if cfg.Address != "" {
		rv, err := rendezvous.Listen(cfg.Address, n, l.offer)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("%s: listen: %w", Name, err)
		}
		l.rv = rv
		l.ep.Address = rv.Path()
	}
	return l, nil
}

// offer makes channel i for one dial through the rendezvous.
func (l *listener) offer(i int) (*rendezvous.Offer, error) {
	ch, err := newChannel(i, l.size)
	if err != nil {
		return nil, err
	}
	ep := transports.Endpoint{
		Transport:  Name,
		BufferSize: l.size,
		Options:    maps.Clone(l.options),
		Files:      []*os.File{ch.peerR, ch.peerW},
	}
	ch.peerR, ch.peerW = nil, nil // the rendezvous sends and closes them
	return &rendezvous.Offer{
		Endpoint: ep,
		Await: func() (net.Conn, error) {
			if err := readHello(ch.r); err != nil {
				ch.closeAll()
				return nil, err
			}
			c, err := newConn(ch.r, ch.w, Addr{"listener", i}, Addr{"dialer", i}, l.raw)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Abort: func() { _ = ch.r.SetReadDeadline(time.Unix(1, 0)) },
	}, nil
}

// newChannel makes channel i's two pipes and sizes them.
func newChannel(i, size int) (*channel, error) {
	toPeerR, toPeerW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: listen: channel %d: %w", Name, i, err)
	}
	fromPeerR, fromPeerW, err := os.Pipe()
	if err != nil {
		toPeerR.Close()
		toPeerW.Close()
		return nil, fmt.Errorf("%s: listen: channel %d: %w", Name, i, err)
	}
	ch := &channel{index: i, r: fromPeerR, w: toPeerW, peerR: toPeerR, peerW: fromPeerW}
	if size > 0 {
		for _, f := range []*os.File{ch.w, ch.r} {
			if err := setPipeSize(f, size); err != nil {
				ch.closeAll()
				return nil, fmt.Errorf("%s: listen: channel %d: %w", Name, i, err)
			}
		}
	}
	return ch, nil
}

// setPipeSize sets the capacity of the pipe f belongs to.
func setPipeSize(f *os.File, size int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("F_SETPIPE_SZ %d: %w", size, err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size)
	}); err != nil {
		return fmt.Errorf("F_SETPIPE_SZ %d: %w", size, err)
	}
	switch {
	case serr == nil:
		return nil
	case errors.Is(serr, unix.EPERM):
		limit := "unknown"
		if b, err := os.ReadFile(pipeMaxSize); err == nil {
			limit = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("F_SETPIPE_SZ %d: above %s (%s) or the user's pipe quota, and no CAP_SYS_RESOURCE: %w: %w",
			size, pipeMaxSize, limit, transports.ErrUnavailable, serr)
	default:
		return fmt.Errorf("F_SETPIPE_SZ %d: %w: %w", size, transports.ErrUnavailable, serr)
	}
}

// pipeSize reads the capacity of the pipe behind c; -1 when it cannot.
func pipeSize(c interface{ Control(func(uintptr)) error }) int {
	size := -1
	if err := c.Control(func(fd uintptr) {
		if v, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil {
			size = v
		}
	}); err != nil {
		return -1
	}
	return size
}

// listener is a pipe transports.Listener.
type listener struct {
	raw      bool               // io=raw: connections bypass the network poller
	size     int                // pipe capacity to set; 0: the system default
	options  map[string]string  // Config.Options, for the endpoints of offers
	rv       *rendezvous.Server // nil without Config.Address
	chans    []*channel
	files    []*os.File // peer ends in Endpoint order
	ep       transports.Endpoint
	attached chan *channel // channels whose hello arrived, in arrival order
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup

	mu     sync.Mutex
	closed bool
}

var _ transports.Listener = (*listener)(nil)

// awaitHello reads channel ch's hello byte and reports the channel to
// Accept. Close unblocks it with a read deadline in the past.
func (l *listener) awaitHello(ch *channel) {
	defer l.wg.Done()
	err := readHello(ch.r)
	select {
	case <-l.done:
		return // Close disposes of the channel
	default:
	}
	ch.helloErr = err
	l.attached <- ch // buffered for every channel: never blocks
}

// readHello reads the dialer's hello byte from r.
func readHello(r *os.File) error {
	var b [1]byte
	_, err := r.Read(b[:])
	switch {
	case err != nil:
		return fmt.Errorf("waiting for hello: %w", err)
	case b[0] != hello:
		return fmt.Errorf("bad hello byte %#x, want %#x", b[0], hello)
	}
	return nil
}

func (l *listener) closedErr(op string) error {
	return &net.OpError{Op: op, Net: Name, Addr: l.Addr(), Err: net.ErrClosed}
}

// Accept waits until a peer attaches to some channel and returns that
// channel's connection; it then closes the listener's copies of the peer's
// ends. After Close it returns an error wrapping net.ErrClosed; once every
// channel has been accepted it blocks until Close. A channel whose hello is
// wrong is closed and reported as an error.
func (l *listener) Accept() (net.Conn, error) {
	var ch *channel
	var rvConns <-chan net.Conn
	if l.rv != nil {
		rvConns = l.rv.Conns()
	}
	select {
	case <-l.done:
		return nil, l.closedErr("accept")
	case c := <-rvConns:
		return c, nil
	case ch = <-l.attached:
	}
	l.mu.Lock()
	if l.closed { // Close disposes of ch
		l.mu.Unlock()
		return nil, l.closedErr("accept")
	}
	ch.handed = true
	peerR, peerW := ch.peerR, ch.peerW
	ch.peerR, ch.peerW = nil, nil
	l.mu.Unlock()
	// The peer holds its own copies; ours must go so that its death shows.
	// Close errors cannot leave the descriptors open, so they are moot.
	_ = peerR.Close()
	_ = peerW.Close()
	if ch.helloErr != nil {
		_ = ch.r.Close()
		_ = ch.w.Close()
		return nil, &net.OpError{Op: "accept", Net: Name, Addr: Addr{"listener", ch.index},
			Err: fmt.Errorf("channel %d: %w", ch.index, ch.helloErr)}
	}
	c, err := newConn(ch.r, ch.w, Addr{"listener", ch.index}, Addr{"dialer", ch.index}, l.raw)
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: Name, Addr: Addr{"listener", ch.index}, Err: err}
	}
	return c, nil
}

// Close closes every file not handed out through Accept (including the
// peer ends in Endpoint().Files) and unblocks Accept. Accepted connections
// stay open. A second Close returns an error wrapping net.ErrClosed.
func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.closedErr("close")
	}
	l.closed = true
	close(l.done)
	var errs []error
	if l.rv != nil {
		if err := l.rv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	var pending []*channel
	for _, ch := range l.chans {
		if !ch.handed {
			pending = append(pending, ch)
		}
	}
	l.mu.Unlock()
	for _, ch := range pending {
		_ = ch.r.SetReadDeadline(time.Unix(1, 0)) // wakes awaitHello; fails only if closed
	}
	l.wg.Wait()
	for _, ch := range pending {
		if err := ch.closeAll(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: close listener: %w", Name, err)
	}
	return nil
}

// Addr returns Addr{"listener", -1}.
func (l *listener) Addr() net.Addr { return Addr{Role: "listener", Index: -1} }

// Endpoint returns the transport name, buffer size and the peer-side files
// (see the package doc for their order). Index is 0: set it to choose the
// channel. The files stay the listener's; those of accepted channels are
// already closed, and a Dial in this process closes those of the channel
// it dialed, as it does in a peer (see transports.Transport.Dial).
func (l *listener) Endpoint() transports.Endpoint {
	ep := l.ep
	ep.Options = maps.Clone(l.ep.Options)
	ep.Files = slices.Clone(l.files)
	return ep
}

// Dial attaches to channel ep.Index; see the package doc.
func (transport) Dial(ctx context.Context, ep transports.Endpoint) (net.Conn, error) {
	return dialEndpoint(ctx, ep, false)
}

// dialEndpoint is Dial; fetched says that ep came from rendezvous.Fetch,
// so that it is not fetched again: a listener that hands over an endpoint
// without files gets an error wrapping transports.ErrBadEndpoint, not
// another fetch for as long as it answers.
func dialEndpoint(ctx context.Context, ep transports.Endpoint, fetched bool) (net.Conn, error) {
	if ep.Transport != Name {
		return nil, fmt.Errorf("%s: dial: endpoint is for transport %q: %w", Name, ep.Transport, transports.ErrBadEndpoint)
	}
	_, raw, err := parseOptions(ep.BufferSize, ep.Options)
	if err != nil {
		return nil, err
	}
	if len(ep.Files) == 0 && ep.Address != "" && !fetched {
		got, err := rendezvous.Fetch(ctx, ep)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: Name, Source: Addr{"dialer", -1}, Addr: Addr{"listener", -1}, Err: err}
		}
		defer rendezvous.CloseFiles(got.Files) // when the dial failed; it closed them otherwise
		return dialEndpoint(ctx, got, true)
	}
	i := ep.Index
	if i < 0 || 2*i+1 >= len(ep.Files) {
		return nil, fmt.Errorf("%s: dial: channel %d but the endpoint has %d files (2 per channel): %w",
			Name, i, len(ep.Files), transports.ErrBadEndpoint)
	}
	local, remote := Addr{"dialer", i}, Addr{"listener", i}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: Name, Source: local, Addr: remote, Err: err}
	}
	r, err := dupEnd(ep.Files[2*i], unix.O_RDONLY, fmt.Sprintf("%s-%d-read", Name, i))
	if err != nil {
		return nil, fmt.Errorf("%s: dial: channel %d: Files[%d]: %w", Name, i, 2*i, err)
	}
	w, err := dupEnd(ep.Files[2*i+1], unix.O_WRONLY, fmt.Sprintf("%s-%d-write", Name, i))
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("%s: dial: channel %d: Files[%d]: %w", Name, i, 2*i+1, err)
	}
	c, err := newConn(r, w, local, remote, raw)
	if err != nil {
		return nil, fmt.Errorf("%s: dial: channel %d: %w", Name, i, err)
	}
	// A one-byte write to a fresh pipe does not block; ctx still bounds it
	// in case the channel was misused.
	stop := context.AfterFunc(ctx, func() { _ = c.SetWriteDeadline(time.Unix(1, 0)) })
	_, err = c.Write([]byte{hello})
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: dial: channel %d: send hello: %w", Name, i, err)
	}
	// The connection holds its own ends: the endpoint's go, so that its
	// Close is the end the listener sees. Close errors cannot leave the
	// descriptors open, so they are moot.
	_ = ep.Files[2*i].Close()
	_ = ep.Files[2*i+1].Close()
	return c, nil
}

// dupEnd duplicates f's descriptor (close-on-exec, non-blocking so that
// deadlines work) after checking that it is a pipe end opened with access
// mode mode, and returns it as a new *os.File. f is left as it was.
func dupEnd(f *os.File, mode int, name string) (*os.File, error) {
	if f == nil {
		return nil, fmt.Errorf("no file: %w", transports.ErrBadEndpoint)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", transports.ErrBadEndpoint, err)
	}
	nfd := -1
	var cerr error
	err = rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if err := unix.Fstat(int(fd), &st); err != nil {
			cerr = fmt.Errorf("fstat: %w", err)
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFIFO {
			cerr = fmt.Errorf("not a pipe (mode %#o): %w", st.Mode, transports.ErrBadEndpoint)
			return
		}
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			cerr = fmt.Errorf("F_GETFL: %w", err)
			return
		}
		if fl&unix.O_ACCMODE != mode {
			cerr = fmt.Errorf("pipe end has the wrong direction: %w", transports.ErrBadEndpoint)
			return
		}
		nfd, cerr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if cerr != nil {
			cerr = fmt.Errorf("dup: %w", cerr)
		}
	})
	if err != nil { // f is closed
		return nil, fmt.Errorf("%w: %w", transports.ErrBadEndpoint, err)
	}
	if cerr != nil {
		return nil, cerr
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("set non-blocking: %w", err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// end is one pipe end as a connection uses it: an *os.File (Go's poller)
// or a *rawio.FD (io=raw).
type end interface {
	io.Closer
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	Control(func(fd uintptr)) error
}

// fileEnd is an *os.File as an end.
type fileEnd struct{ *os.File }

// Control runs fn with the file's descriptor.
func (f fileEnd) Control(fn func(fd uintptr)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(fn)
}

// conn is a pipe connection: it reads r and writes w.
type conn struct {
	r, w          end
	rd            io.Reader // reads r: a *rawio.PollReader, or the *rawio.FD with io=raw
	wr            writer    // writes w: a *rawio.PollWriter, or the *rawio.FD with io=raw
	raw           bool
	local, remote Addr
	closed        atomic.Bool // Close was called
	wclosed       atomic.Bool // w was closed (Close or CloseWrite)
}

var (
	_ net.Conn                  = (*conn)(nil)
	_ transports.CloseWriter    = (*conn)(nil)
	_ transports.OptionReporter = (*conn)(nil)
	_ transports.DescriptorConn = (*conn)(nil)
)

// newConn makes the connection over r and w, which it takes over: with raw
// it moves them to rawio (direct system calls); on error it closes them.
func newConn(r, w *os.File, local, remote Addr, raw bool) (*conn, error) {
	if !raw {
		rc, err := w.SyscallConn()
		if err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		rrc, err := r.SyscallConn()
		if err != nil {
			r.Close()
			w.Close()
			return nil, err
		}
		return &conn{r: fileEnd{r}, w: fileEnd{w}, rd: rawio.NewPollReader(rrc), wr: rawio.NewPollWriter(rc), local: local, remote: remote}, nil
	}
	rr, err := rawEnd(r, rawio.NewPipeReader)
	if err != nil {
		w.Close()
		return nil, err
	}
	rw, err := rawEnd(w, rawio.New)
	if err != nil {
		rr.Close()
		return nil, err
	}
	return &conn{r: rr, w: rw, rd: rr, wr: rw, raw: true, local: local, remote: remote}, nil
}

// Descriptors returns duplicates of the read end and the write end; see
// transports.DescriptorConn.
func (c *conn) Descriptors() (rfd, wfd int, err error) {
	if rfd, err = rawio.Dup(c.r); err != nil {
		return -1, -1, c.opErr("dup", err)
	}
	if wfd, err = rawio.Dup(c.w); err != nil {
		unix.Close(rfd)
		return -1, -1, c.opErr("dup", err)
	}
	return rfd, wfd, nil
}

// rawEnd moves f's descriptor to a rawio.FD made by newFD and closes f.
func rawEnd(f *os.File, newFD func(int) (*rawio.FD, error)) (*rawio.FD, error) {
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd, err := rawio.Dup(rc)
	if err != nil {
		return nil, fmt.Errorf("io=raw: %w", err)
	}
	fd, err := newFD(nfd)
	if err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("io=raw: %w", err)
	}
	return fd, nil
}

// opErr shapes err from an os.File operation into the transport's errors
// (see the package doc). io.EOF is returned as it is, like net does.
func (c *conn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	cause := err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		cause = pe.Err
	}
	switch {
	case errors.Is(cause, os.ErrClosed):
		cause = net.ErrClosed
	case errors.Is(cause, os.ErrDeadlineExceeded):
		cause = os.ErrDeadlineExceeded
	default:
		var errno syscall.Errno
		if errors.As(cause, &errno) {
			cause = os.NewSyscallError(op, errno)
		}
	}
	return connerr.PeerGone(&net.OpError{Op: op, Net: Name, Source: c.local, Addr: c.remote, Err: cause})
}

// Read reads from the incoming pipe; io.EOF once the peer closed its end
// (or died) and everything it wrote has been read.
func (c *conn) Read(b []byte) (int, error) {
	n, err := c.rd.Read(b)
	return n, c.opErr("read", err)
}

// Write writes all of b to the outgoing pipe unless a deadline passes, the
// connection is closed, or the peer is gone (ErrPeerGone).
func (c *conn) Write(b []byte) (int, error) {
	if c.closed.Load() { // Close may not have reached w yet
		return 0, c.opErr("write", os.ErrClosed)
	}
	n, err := c.wr.Write(b)
	return n, c.opErr("write", err)
}

// Close closes both pipes, unblocking pending Read and Write calls with
// net.ErrClosed; a Write or WriteBuffers that starts once Close has begun
// fails with net.ErrClosed too, even before Close reaches the outgoing
// pipe. A second Close returns an error wrapping net.ErrClosed.
func (c *conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opErr("close", os.ErrClosed)
	}
	err := c.r.Close()
	if c.wclosed.CompareAndSwap(false, true) {
		err = errors.Join(err, c.w.Close())
	}
	return c.opErr("close", err)
}

// CloseWrite closes the outgoing pipe: the peer reads io.EOF after the last
// byte while this side can still read. Later writes fail with
// net.ErrClosed.
func (c *conn) CloseWrite() error {
	if c.closed.Load() || !c.wclosed.CompareAndSwap(false, true) {
		return c.opErr("close", os.ErrClosed)
	}
	return c.opErr("close", c.w.Close())
}

// LocalAddr returns this end's Addr.
func (c *conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the other end's Addr.
func (c *conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines, as net.Conn documents (after CloseWrite,
// only the read deadline).
func (c *conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	if c.wclosed.Load() && !c.closed.Load() {
		return nil
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline, as net.Conn documents.
func (c *conn) SetReadDeadline(t time.Time) error { return c.opErr("set", c.r.SetReadDeadline(t)) }

// SetWriteDeadline sets the write deadline, as net.Conn documents.
func (c *conn) SetWriteDeadline(t time.Time) error { return c.opErr("set", c.w.SetWriteDeadline(t)) }

// EffectiveOptions reports the capacities of the incoming and outgoing
// pipes, read back with F_GETPIPE_SZ: "pipe_rx_bytes" and "pipe_tx_bytes".
// A closed pipe is left out.
func (c *conn) EffectiveOptions() map[string]string {
	m := make(map[string]string, 3)
	if v := pipeSize(c.r); v >= 0 {
		m["pipe_rx_bytes"] = strconv.Itoa(v)
	}
	if v := pipeSize(c.w); v >= 0 {
		m["pipe_tx_bytes"] = strconv.Itoa(v)
	}
	m[sockconn.OptIO] = sockconn.IONetpoll
	if c.raw {
		m[sockconn.OptIO] = sockconn.IORaw
	}
	return m
}

// defaultPipePages is the capacity of a new pipe in pages
// (PIPE_DEF_BUFFERS); the kernel may give fewer when the user is over
// fs.pipe-user-pages-soft.
const defaultPipePages = 16

// heapPerEnd bounds the Go heap one end of a connection keeps: its conn
// and two *os.File with their poll descriptors. Measured with 64
// connections (transporttest's memory case, a mean over 128 ends that
// span-sized steps of the heap make noisy): 0.3-1.2 KiB per end, up to
// 2.2 KiB with io=raw; 8 KiB leaves room for that noise and for
// allocation classes that differ between Go releases.
const heapPerEnd = 8 << 10

// MemoryPerConn states what one connection holds
// (transports.MemoryReporter): per direction, one pipe of the capacity
// Listen sets (pipe_size, else Config.BufferSize, rounded up to a power
// of two pages as F_SETPIPE_SZ does) or, with neither, the default 16
// pages; per end, two descriptors (its read and its write end; with
// io=raw also an eventfd for each) and heapPerEnd bytes of Go heap; no
// goroutine. Options that parseOptions
// refuses count as absent (Listen refuses them).
func (transport) MemoryPerConn(cfg transports.Config) transports.Memory {
	size, raw, err := parseOptions(cfg.BufferSize, cfg.Options)
	if err != nil {
		size = max(cfg.BufferSize, 0)
	}
	fds := 2
	if raw {
		fds = 4 // and rawio's eventfd per pipe, which Close signals
	}
	page := os.Getpagesize()
	pages := defaultPipePages
	if size > 0 {
		pages = 1
		for pages*page < size {
			pages <<= 1
		}
	}
	return transports.Memory{KernelBytes: int64(pages * page), HeapBytes: heapPerEnd, Descriptors: fds}
}
