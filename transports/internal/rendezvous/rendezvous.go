// Package rendezvous lets the transports whose channels are descriptors
// (pipe, shm-lock, shm-ring) be dialed by address: a listener listens on a
// Unix socket (SOCK_SEQPACKET) at a path, and for every dial it makes a
// fresh channel and hands the channel's descriptors to the dialer with
// SCM_RIGHTS. The bytes then flow through the pipe or the shared memory;
// the socket only carries that one message per dial.
//
// The protocol is one message per rendezvous connection, from the listener
// to the dialer: a JSON object {"endpoint": Endpoint} whose Files travel as
// SCM_RIGHTS (NumFiles says how many), or {"error": "..."} when the
// listener could not make a channel. The dialer then attaches to the
// channel as it would to an inherited one (Endpoint.Index 0), and the
// listener learns that it did through the channel itself (the transport's
// hello), so the rendezvous connection is closed as soon as the message is
// sent. A dialer that dies before attaching takes the only other copies of
// the channel's peer-side descriptors with it, which the listener sees as
// a failed hello. One that lives but does not attach within AttachTimeout
// (it took the descriptors and went quiet) has its channel dropped: the
// listener closes its ends, and the dialer's attach then fails as if the
// listener had gone. Nothing waits forever.
//
// Security is that of the unix transport, whose file-system guard lives
// here too: the socket's directory is the user's own and closed to others
// (Prepare, Private), SO_PEERCRED refuses a peer of another user on both
// sides (CheckPeer), no symbolic link is followed where a file is checked
// or removed, a socket left by a killed listener is swept by the next
// Listen on its path, and Close removes the socket file.
package rendezvous

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/ctxdeadline"
)

// maxMsg bounds the JSON part of a rendezvous message.
const maxMsg = 4096

// message is the JSON part of the one message a rendezvous connection
// carries.
type message struct {
	Endpoint *transports.Endpoint `json:"endpoint,omitempty"`
	Error    string               `json:"error,omitempty"`
}

// Offer is one fresh channel a transport made for one dial.
type Offer struct {
	// Endpoint is what the dialer receives: its Files (the channel's
	// peer-side descriptors) travel with SCM_RIGHTS, after which the
	// Server closes them, so that from then on the dialer holds the only
	// copies.
	Endpoint transports.Endpoint
	// Await waits until the dialer has attached and returns the
	// listener's end of the channel. On error it has released everything
	// the channel held.
	Await func() (net.Conn, error)
	// Abort makes a pending Await return (with an error, or with a
	// connection the Server then closes). It may be called at any time,
	// also after Await returned.
	Abort func()
}

// AttachTimeout bounds the wait for a dialer to attach to the channel it
// was sent, counted from the send: a dialer attaches right after Fetch
// returns (a pipe's one-byte hello, a shared-memory channel's mapping and
// wake-up exchange), which takes well under a millisecond, and ten
// seconds leave room for one slowed down by a loaded machine. After it
// the channel is dropped (Offer.Abort) and its listener-side descriptors
// closed, so that a dialer that took the descriptors and never attaches
// does not hold them for as long as the listener lives. A channel that
// attached goes to Conns, and from there to Accept, however long its
// Accept takes.
const AttachTimeout = 10 * time.Second

// fetchTimeout bounds Fetch's wait for the listener's channel: a listener
// hands it over as soon as it has made it, well under a millisecond after
// the connect; a stopped or hung one never does, and the kernel accepts
// the connect for it all the same. It is AttachTimeout, the time a
// listener keeps a channel for its dialer, so neither side waits longer
// for the other; tests shorten it.
var fetchTimeout = AttachTimeout

// Server listens at a path and makes one Offer per dial; the connections
// of the dials that attached come out of Conns.
type Server struct {
	ln    *net.UnixListener
	place Place
	make  func(index int) (*Offer, error)
	conns chan net.Conn
	done  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	next    int
	pending map[*Offer]struct{}
	attach  time.Duration // AttachTimeout, unless SetAttachTimeout changed it
}

// Listen prepares path (see Prepare), listens on it and serves dials: for
// each, mk(index) makes a channel, with index counting from first. Errors
// are Prepare's (wrapping transports.ErrBadEndpoint), or the system's
// when the socket cannot be made there.
func Listen(path string, first int, mk func(index int) (*Offer, error)) (*Server, error) {
	place, err := Prepare(path)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		place.Release()
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	// bind made the socket file with the umask's mode; the directory
	// already keeps others out, and the file follows the one rule.
	if err := os.Chmod(path, private.FileMode); err != nil {
		ln.Close()
		place.Release()
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := place.Bound(); err != nil {
		ln.Close()
		place.Release()
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // Release removes the socket, if it is still this one
	s := &Server{
		ln:      ln,
		place:   place,
		make:    mk,
		conns:   make(chan net.Conn),
		done:    make(chan struct{}),
		next:    first,
		pending: map[*Offer]struct{}{},
		attach:  AttachTimeout,
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path returns the socket path the Server listens on.
func (s *Server) Path() string { return s.place.Path }

// Conns delivers the listener's end of every channel a dialer attached
// to, in attach order. Nothing is delivered after Close.
func (s *Server) Conns() <-chan net.Conn { return s.conns }

// acceptLoop accepts rendezvous connections until Close and serves each in
// its own goroutine.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return
			}
			// Out of descriptors or memory, ECONNABORTED and the like: wait
			// a little, as net/http does, so that an error that persists
			// cannot spin this loop, then try again.
			select {
			case <-s.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if err := CheckPeer(c); err != nil {
			c.Close() // another user: the dialer reads EOF
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		i := s.next
		s.next++
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c, i)
	}
}

// SetAttachTimeout replaces AttachTimeout for the dials that come after
// it; tests shorten it so as not to wait ten seconds.
func (s *Server) SetAttachTimeout(d time.Duration) {
	s.mu.Lock()
	s.attach = d
	s.mu.Unlock()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// serve makes the channel for one rendezvous connection, hands it over and
// waits for the dialer to attach.
func (s *Server) serve(c *net.UnixConn, index int) {
	defer s.wg.Done()
	o, err := s.make(index)
	if err != nil {
		send(c, &message{Error: err.Error()}, nil)
		c.Close()
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		o.Abort()
		CloseFiles(o.Endpoint.Files)
		c.Close()
		if ac, err := o.Await(); err == nil {
			ac.Close()
		}
		return
	}
	s.pending[o] = struct{}{}
	timeout := s.attach
	s.mu.Unlock()

	ep := o.Endpoint
	ep.NumFiles = len(ep.Files)
	err = send(c, &message{Endpoint: &ep}, ep.Files)
	// The dialer holds its copies now (or never will): ours must go, so
	// that its death shows on the channel.
	CloseFiles(o.Endpoint.Files)
	c.Close()
	if err != nil {
		o.Abort()
	}
	// A dialer that does not attach in time loses its channel. Abort may
	// land after Await found the hello: the connection it returns then is
	// closed all the same (its reads may already fail), and only a timer
	// that had not fired when Await returned leaves it alone.
	timer := time.AfterFunc(timeout, o.Abort)
	ac, err := o.Await()
	late := !timer.Stop()
	s.mu.Lock()
	delete(s.pending, o)
	closed := s.closed
	s.mu.Unlock()
	if err != nil {
		return // the dialer went away before attaching: not Accept's business
	}
	if closed || late {
		ac.Close()
		return
	}
	select {
	case s.conns <- ac:
	case <-s.done:
		ac.Close()
	}
}

// send writes one rendezvous message with files attached.
func send(c *net.UnixConn, m *message, files []*os.File) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxMsg {
		return fmt.Errorf("rendezvous message of %d bytes, at most %d", len(b), maxMsg)
	}
	c.SetWriteDeadline(time.Now().Add(sendTimeout))
	return WithRights(files, func(oob []byte) error {
		_, _, err := c.WriteMsgUnix(b, oob, nil)
		return err
	})
}

// sendTimeout bounds the write of a rendezvous message; a fresh
// SOCK_SEQPACKET connection has room for it, so it only matters when
// something is badly wrong.
const sendTimeout = 5 * time.Second

// Close stops listening, removes the socket file (and the directory
// Prepare made, when empty), makes pending channels fail and waits for
// their goroutines. Connections already taken from Conns stay open.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.closed = true
	close(s.done)
	for o := range s.pending {
		o.Abort()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	if rerr := s.place.Release(); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// Fetch dials the rendezvous at ep.Address for a transport named
// ep.Transport and returns the endpoint of the fresh channel the listener
// made, with its Files (the caller's to close) and Index 0. Its
// BufferSize is the listener's; its Options are ep.Options when ep has any,
// otherwise the listener's.
//
// A missing address fails at once with an error wrapping
// transports.ErrBadEndpoint and fs.ErrNotExist; one nobody listens on any
// more (a stale socket) with one wrapping transports.ErrPeerGone and
// syscall.ECONNREFUSED; one whose listener closes the connection without
// a channel (it refused the dialer, or is closing) with one wrapping
// transports.ErrPeerGone; a path that is not a socket, or a socket or
// listener of another user, with one wrapping transports.ErrBadEndpoint
// (and ErrForeignPeer for the listener's credentials). When ctx ends
// first, the error wraps ctx.Err() (context.Canceled or
// context.DeadlineExceeded; the latter every time ctx's deadline has
// passed, even when the socket's deadline, set to it, fired before ctx's
// own timer) and no sentinel of package transports. Fetch waits for the
// channel at most AttachTimeout (10s), or until ctx's deadline when that
// comes sooner: a listener that accepted the connection (the kernel does,
// even for a stopped process) but hands over no channel within it fails
// the dial with an error wrapping os.ErrDeadlineExceeded that says so.
func Fetch(ctx context.Context, ep transports.Endpoint) (transports.Endpoint, error) {
	path := ep.Address
	bad := func(format string, args ...any) (transports.Endpoint, error) {
		return transports.Endpoint{}, fmt.Errorf("rendezvous %s: "+format+": %w", append(append([]any{path}, args...), transports.ErrBadEndpoint)...)
	}
	if len(path) > MaxPath {
		return bad("%d bytes, longer than the %d sun_path allows", len(path), MaxPath)
	}
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return transports.Endpoint{}, fmt.Errorf("rendezvous %s: no listener there: %w: %w", path, fs.ErrNotExist, transports.ErrBadEndpoint)
	case err != nil:
		return bad("%v", err)
	case st.Mode()&fs.ModeSocket == 0:
		return bad("not a socket (mode %v)", st.Mode())
	case ownerOf(st) != os.Geteuid():
		return bad("socket owned by uid %d, not this user (uid %d)", ownerOf(st), os.Geteuid())
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // it names the path again
		}
		switch {
		case ctxdeadline.Ended(ctx) != nil:
			return transports.Endpoint{}, fmt.Errorf("rendezvous %s: %w", path, ctxdeadline.Ended(ctx))
		case errors.Is(err, syscall.ECONNREFUSED):
			return transports.Endpoint{}, fmt.Errorf("rendezvous %s: stale, nobody listens there: %w: %w", path, syscall.ECONNREFUSED, transports.ErrPeerGone)
		case errors.Is(err, syscall.EPROTOTYPE):
			return bad("a socket of another kind is bound there, not a rendezvous (a unix listener's, or another program's): %w", err)
		}
		return bad("%w", err)
	}
	c := nc.(*net.UnixConn)
	defer c.Close()
	if err := CheckPeer(c); err != nil {
		return bad("listener: %w", err)
	}
	bound := fetchTimeout
	until := time.Now().Add(bound)
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		until = dl
	}
	c.SetReadDeadline(until)
	defer ctxdeadline.OnDone(ctx, c.SetReadDeadline)()
	buf := make([]byte, maxMsg)
	oob := make([]byte, OOBSize)
	n, oobn, flags, err := readMessage(func(buf, oob []byte) (int, int, int, error) {
		n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob) // a zero-length read is io.EOF
		return n, oobn, flags, err
	}, buf, oob)
	files, ferr := Files(oob[:oobn], "ipcbench-rendezvous")
	fail := func(err error) (transports.Endpoint, error) {
		CloseFiles(files)
		return transports.Endpoint{}, err
	}
	switch {
	case err != nil && ctxdeadline.Ended(ctx) != nil:
		// ctx's deadline was the read deadline, or ctx ended otherwise.
		return fail(fmt.Errorf("rendezvous %s: %w", path, ctxdeadline.Ended(ctx)))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fail(fmt.Errorf("rendezvous %s: the listener handed over no channel within %v (it accepted the connection but is stopped, hung or overloaded): %w", path, bound, os.ErrDeadlineExceeded))
	case errors.Is(err, io.EOF):
		// Go reports a zero-length read on a SOCK_SEQPACKET socket as
		// io.EOF: the listener closed this connection without sending.
		return fail(fmt.Errorf("rendezvous %s: the listener closed the connection without a channel (it refused this dialer, or is closing): %w", path, transports.ErrPeerGone))
	case err != nil:
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // it names the path again
		}
		// ECONNRESET: the listener's socket closed (its process died)
		// with this connection still waiting to be accepted.
		return fail(fmt.Errorf("rendezvous %s: receiving the channel: %w", path, connerr.PeerGone(err)))
	case ferr != nil:
		return fail(fmt.Errorf("rendezvous %s: %w: %w", path, ferr, transports.ErrBadEndpoint))
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		return fail(fmt.Errorf("rendezvous %s: message truncated: %w", path, transports.ErrBadEndpoint))
	}
	out, err := decodeMessage(buf[:n], ep.Transport, len(files))
	if err != nil {
		return fail(fmt.Errorf("rendezvous %s: %w", path, err))
	}
	out.Files = files
	out.Index = 0
	out.Address = path
	if len(ep.Options) > 0 {
		out.Options = ep.Options
	}
	return out, nil
}

// decodeMessage decodes the JSON part b of a rendezvous message that
// arrived with files descriptors, for a dialer of the transport named
// transport, and returns its endpoint (without Files). A message that is
// not one (bad JSON, no endpoint, another transport's, another number of
// files) gives an error wrapping transports.ErrBadEndpoint; the
// listener's refusal, an error naming its reason.
func decodeMessage(b []byte, transport string, files int) (transports.Endpoint, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return transports.Endpoint{}, fmt.Errorf("bad message: %v: %w", err, transports.ErrBadEndpoint)
	}
	if m.Error != "" {
		return transports.Endpoint{}, fmt.Errorf("the listener could not make a channel: %s", m.Error)
	}
	switch {
	case m.Endpoint == nil:
		return transports.Endpoint{}, fmt.Errorf("message without an endpoint: %w", transports.ErrBadEndpoint)
	case m.Endpoint.Transport != transport:
		return transports.Endpoint{}, fmt.Errorf("the listener is %s, not %s: %w", m.Endpoint.Transport, transport, transports.ErrBadEndpoint)
	case m.Endpoint.NumFiles != files:
		return transports.Endpoint{}, fmt.Errorf("message says %d files, %d arrived: %w", m.Endpoint.NumFiles, files, transports.ErrBadEndpoint)
	}
	return *m.Endpoint, nil
}

// readMessage reads one message from a SOCK_SEQPACKET socket with recv,
// which reports a zero-length read as io.EOF, and looks a second time when
// the first look reports the end. Linux can report a peer's close before
// the message the peer sent just before it: a non-blocking recvmsg that
// finds the queue empty then checks for the peer's shutdown, and a send
// and close that land in between make it return 0 with the message
// queued. A listener sends its one message and closes at once, so a dialer
// meets this now and then (twice in our test runs, as a gRPC example
// dialing 1,000 times failed). The message is queued before the shutdown
// is set, so the second look finds it; when there is none, it reports the
// end again at once. (An empty message with descriptors, which no listener
// sends, is returned as it is, so that they are not lost.)
func readMessage(recv func(buf, oob []byte) (n, oobn, flags int, err error), buf, oob []byte) (n, oobn, flags int, err error) {
	n, oobn, flags, err = recv(buf, oob)
	if errors.Is(err, io.EOF) && oobn == 0 {
		n, oobn, flags, err = recv(buf, oob)
	}
	return n, oobn, flags, err
}
