package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// ErrRemote is wrapped by ProbeRemote's errors: the remote peer cannot be
// measured at all (nobody listens, it is not what Options.Remote says, a
// protocol version mismatch, an address that is not safe to use).
var ErrRemote = errors.New("remote peer unusable")

// remoteCase is a case's links to a remote peer (Options.Remote): the
// transport and address to dial, and for an ipcbench serve the session's
// control connection.
type remoteCase struct {
	tr   TransportSpec
	addr string
	echo bool          // a foreign echo server (Remote.Echo), not an ipcbench serve
	ctl  *peer.Control // nil for a foreign echo server
}

// dial makes connection index of the case: a transport connection to the
// address and, for an ipcbench serve, the data hello that joins it to the
// session.
func (rc *remoteCase) dial(ctx context.Context, bufferSize, index int) (net.Conn, error) {
	c, err := rc.tr.Transport.Dial(ctx, rc.endpoint(bufferSize))
	if err != nil {
		return nil, err // a transport's dial error names the address
	}
	if rc.ctl != nil {
		if err := rc.ctl.JoinData(ctx, c, index); err != nil {
			return nil, fmt.Errorf("connection %d: %w", index, err)
		}
	}
	return c, nil
}

// openControl opens the session's control connection to an ipcbench
// serve: over the transport, or for a transport dialed through a
// rendezvous on the server's control socket next to it
// (peer.ControlAddress), so that no idle connection shares the measured
// transport in either process.
func (rc *remoteCase) openControl(ctx context.Context, bufferSize int) (*peer.Control, error) {
	if path := peer.ControlAddress(rc.tr.Transport, rc.addr); path != "" {
		if err := checkSocketPath(path); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	c, err := peer.DialControl(ctx, rc.tr.Transport, rc.endpoint(bufferSize))
	if err != nil {
		return nil, err // it names the address, or the control socket's
	}
	ctl, err := peer.OpenControl(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rc.addr, err)
	}
	return ctl, nil
}

// endpoint is the endpoint of the case's connections.
func (rc *remoteCase) endpoint(bufferSize int) transports.Endpoint {
	return transports.Endpoint{Transport: rc.tr.Transport.Name(), Address: rc.addr, BufferSize: bufferSize, Options: rc.tr.Options}
}

// remoteTransport returns the one transport of a run against a remote
// peer.
func (r *Runner) remoteTransport() (TransportSpec, error) {
	if len(r.opts.Transports) != 1 {
		return TransportSpec{}, badOption("Transports", "a remote peer listens on one transport; give exactly one, not %d", len(r.opts.Transports))
	}
	return r.opts.Transports[0], nil
}

// ProbeRemote checks, before anything runs, that Options.Remote can be
// measured, and fills in hdr's Peer (and, from an ipcbench serve, its Tool
// and Machine as PeerTool and PeerMachine). An ipcbench serve must answer
// the hello in the same protocol version and send its header; an echo
// server must echo one message of the first size. Every error wraps
// ErrRemote and says in one line what is wrong. Without a remote peer it
// does nothing.
func (r *Runner) ProbeRemote(ctx context.Context, hdr *Header) error {
	rm := r.opts.Remote
	if rm == nil {
		return nil
	}
	tr, err := r.remoteTransport()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRemote, err)
	}
	if dialsPath(tr.Transport) {
		if err := checkSocketPath(rm.Address); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrRemote, rm.Address, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, peer.HelloTimeout+peer.DialTimeout)
	defer cancel()
	// silent says what a dial that nothing answered means, rather than
	// leave it at "i/o timeout".
	silent := func(err error) error {
		// A hello taken and not answered is a server that does not speak
		// the protocol: its own error says so. An interrupt marks nothing.
		if !errors.Is(err, peer.ErrHelloUnanswered) && errors.Is(markGone(ctx, err), errServerSilent) {
			return fmt.Errorf("%w: nothing answered (is the server's host up and reachable, and the server running?): %w", ErrRemote, err) // err names the address
		}
		return nil
	}
	rc := &remoteCase{tr: tr, addr: rm.Address}
	hdr.Peer = rm.Describe()
	if rm.Echo {
		c, err := rc.dial(ctx, r.opts.BufferSize, 0)
		if err != nil {
			if serr := silent(err); serr != nil {
				return serr
			}
			return fmt.Errorf("%w: nothing to measure there: %w", ErrRemote, err)
		}
		defer c.Close()
		if err := probeEcho(ctx, c, r.opts.Frame, r.opts.Sizes[0]); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrRemote, rm.Address, err)
		}
		return nil
	}
	ctl, err := rc.openControl(ctx, r.opts.BufferSize)
	if err != nil {
		if path := peer.ControlAddress(tr.Transport, rm.Address); path != "" && errors.Is(err, os.ErrNotExist) {
			// The address itself passed checkSocketPath: something is
			// there, but not a pipe or shm-* server, which has its
			// control socket beside it.
			return fmt.Errorf("%w: no control socket at %s (%w); is a unix or tcp server listening at %s? give its transport with -t",
				ErrRemote, path, syscall.ENOENT, rm.Address)
		}
		if errors.Is(err, peer.ErrNoControlSocket) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w: nothing to measure there: %w", ErrRemote, err)
		}
		if errors.Is(err, syscall.EPROTOTYPE) {
			// A unix stream dial of a rendezvous (SOCK_SEQPACKET) socket.
			// The dial's error names the path again, twice: keep its cause.
			return fmt.Errorf("%w: %s is not a %s server's socket (a pipe or shm-* server listens there? give its transport with -t): %w",
				ErrRemote, rm.Address, tr.Transport.Name(), syscall.EPROTOTYPE)
		}
		if serr := silent(err); serr != nil {
			return serr
		}
		return fmt.Errorf("%w: %w", ErrRemote, err) // the dial's error names the address
	}
	defer ctl.Close()
	client := peer.NewLinkClient(ctl)
	raw, err := client.Header(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRemote, rm.Address, err)
	}
	ph, err := serverHeader(raw, tr.Transport.Name(), rm.Address)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRemote, rm.Address, err)
	}
	hdr.PeerTool, hdr.PeerMachine = ph.Tool, ph.Machine
	if hdr.PeerTool == "" {
		hdr.PeerTool = ctl.Tool()
	}
	_ = client.Exit()
	return nil
}

// maxServerHeader bounds the environment header a run takes from an
// ipcbench serve (its own is a few KiB). The run keeps the server's tool
// and machine facts in its raw header, and JSON may write a byte as six
// ("<" as \u003c): the bound keeps that line far below MaxLineSize, so the
// raw file stays readable.
const maxServerHeader = 64 << 10

// serverHeader decodes raw, the environment header an ipcbench serve
// reached at addr sent (at most maxServerHeader bytes), and checks that
// it serves the transport named want (sameTransport).
func serverHeader(raw json.RawMessage, want, addr string) (Header, error) {
	if len(raw) > maxServerHeader {
		return Header{}, fmt.Errorf("the server's header has %d bytes, more than %d", len(raw), maxServerHeader)
	}
	var ph Header
	if err := json.Unmarshal(raw, &ph); err != nil {
		return Header{}, fmt.Errorf("the server's header: %w", err)
	}
	if err := sameTransport(ph.Options["transport"], want, addr, serverAddress(addr, ph)); err != nil {
		return Header{}, err
	}
	return ph, nil
}

// sameTransport checks that a server whose header names the transport
// spec served (an ipcbench serve's "transport" option) serves the
// transport named want; the variants may differ, as each side's options
// are its own. A header without one (an older server) passes. The error
// tells to run with the served transport, and with -connect server too
// when that is not addr, the address the client dialed (see
// serverAddress).
func sameTransport(served, want, addr, server string) error {
	if served == "" {
		return nil
	}
	sp, err := transports.ParseSpec(served)
	if err != nil {
		return fmt.Errorf("the server names its transport %q: %w", served, err)
	}
	if sp.Name != want {
		if server != addr {
			return fmt.Errorf("the server serves %s, not %s, and this is its control socket (run with -t %s -connect %s)", sp.Name, want, sp.Name, server)
		}
		return fmt.Errorf("the server serves %s, not %s (run with -t %s)", sp.Name, want, sp.Name)
	}
	return nil
}

// serverAddress is the address to give -connect for the server whose
// header is ph, reached at addr: addr, or, when addr is the control socket
// of a server that has one beside its address (a pipe or shm-* server,
// whose header names it as its "control" option), that address.
func serverAddress(addr string, ph Header) string {
	if ph.Options["control"] != "" {
		if base, ok := strings.CutSuffix(addr, peer.ControlSuffix); ok && base != "" {
			return base
		}
	}
	return addr
}

// errServerGone marks a remote case that failed because nobody listens
// at the server's address any more (it was stopped or killed): Run then
// runs no further case against it.
var errServerGone = errors.New("nobody listens at the server's address any more")

// errServerSilent marks a remote case that failed because the server did
// not answer: no route to it, a connect that timed out, a hello it took
// but did not answer within peer.HelloTimeout, or a connect still
// unanswered when the case's time ran out (a partition, a host that went
// down without closing anything, a stopped server). Run then runs no
// further case against it: each would wait alike.
var errServerSilent = errors.New("the server does not answer")

// markGone returns err wrapping errServerGone too when it says that
// nobody listens where a dial went: the transports' fs.ErrNotExist and
// syscall.ECONNREFUSED (see transports.Transport.Dial), or no control
// socket beside a rendezvous; and errServerSilent when it says that
// nothing answered (see there), ctx being the context of the connect. An
// error of an interrupt (ctx cancelled by its parent) marks nothing, and
// neither does a refusal that is only momentary (EAGAIN: a full listen
// backlog), however net.Error's Timeout reads it.
func markGone(ctx context.Context, err error) error {
	cause := context.Cause(ctx) // in count mode the case's time running out is a cancel with this cause
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, peer.ErrNoControlSocket):
		return &goneError{err, errServerGone}
	case cause != nil && !errors.Is(cause, context.DeadlineExceeded):
		return err // interrupted
	case cause != nil, // the case's time ran out while it connected
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, peer.ErrHelloUnanswered):
		return &goneError{err, errServerSilent}
	}
	return err
}

// goneError is a dial error marked with errServerGone or errServerSilent;
// its text is the dial error's.
type goneError struct{ err, mark error }

func (e *goneError) Error() string   { return e.err.Error() }
func (e *goneError) Unwrap() []error { return []error{e.err, e.mark} }

// dialsPath reports whether tr's addresses are paths on this host: a unix
// socket, or the rendezvous of a transport dialed through one
// (transports.RendezvousDialer: pipe, shm-*), rather than the host:port
// of the tcp-* transports.
func dialsPath(tr transports.Transport) bool {
	if rd, ok := tr.(transports.RendezvousDialer); ok && rd.DialsThroughRendezvous() {
		return true
	}
	return tr.Name() == unix.Name
}

// checkSocketPath refuses a socket path (a unix socket or rendezvous,
// absolute or relative to the working directory, as the dial takes it)
// that is a symbolic link or belongs to another user: its owner could see
// or fake the traffic.
func checkSocketPath(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		// The caller names the path: keep the cause, not lstat's copy of it.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("nothing listens there: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return errors.New("the path is a symbolic link; give the socket's own path")
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("the socket belongs to user %d, not to this user (%d)", st.Uid, os.Geteuid())
	}
	return nil
}

// probeEcho sends one message of size bytes and checks the echo.
func probeEcho(ctx context.Context, c net.Conn, fc frame.Config, size int) error {
	if fc.Mode == frame.Fixed {
		fc.Size = size
	}
	deadline := time.Now().Add(peer.HelloTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	out, in := make([]byte, size), make([]byte, size)
	frame.Fill(out, 0, 0)
	if err := frame.NewWriter(c, fc).WriteMsg(out); err != nil {
		return fmt.Errorf("sending a test message: %w", err)
	}
	return checkEcho(frame.NewReader(c, fc), in, size, 0, 0)
}

// readEcho reads the echo of message seq, wording a failure for a user
// who pointed the bench at the wrong server.
func readEcho(r *frame.Reader, in []byte, seq uint64) ([]byte, error) {
	msg, err := r.ReadMsg(in)
	var ne net.Error
	switch {
	case err == nil:
		return msg, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, transports.ErrPeerGone):
		return nil, fmt.Errorf("the server closed the connection before echoing message %d in full: %w", seq, err)
	case errors.As(err, &ne) && ne.Timeout():
		return nil, fmt.Errorf("no echo of message %d within %v (not an echo server, or too slow): %w", seq, peer.HelloTimeout, err)
	}
	return nil, fmt.Errorf("reading the echo of message %d: %w", seq, err)
}

// checkEcho reads one echoed message and checks it against what was sent
// (frame.Fill of size bytes, stamped conn and seq).
func checkEcho(r *frame.Reader, in []byte, size int, conn uint32, seq uint64) error {
	msg, err := readEcho(r, in, seq)
	if err != nil {
		return err
	}
	if len(msg) != size {
		return fmt.Errorf("the echo of message %d has %d bytes, not %d: not an echo server, or another framing", seq, len(msg), size)
	}
	if err := frame.Check(msg, conn, seq); err != nil {
		return fmt.Errorf("the echo of message %d differs from it: %w", seq, err)
	}
	return nil
}

// connectRemote replaces the listen, startPeer and serve phases when the
// peer is a server at an address (Options.Remote): for an ipcbench serve
// it opens a session on a control connection of its own and sends the
// serve job, whose connections the server then waits for; it pins the
// bench process to the case's CPUs; and it dials the case's connections
// (none for the connect workload, which dials per exchange). A foreign
// echo server has no control connection: the case's client stays nil and
// the peer's CPU time unknown.
func (cr *caseRun) connectRemote(ctx context.Context) error {
	rc := cr.remote
	if !rc.echo {
		var err error
		if rc.ctl, err = rc.openControl(ctx, cr.opts.BufferSize); err != nil {
			return fmt.Errorf("control connection: %w", markGone(ctx, err))
		}
		cr.client = peer.NewLinkClient(rc.ctl)
	}
	if cpus := cr.spec.Placement.Bench; len(cpus) > 0 {
		restore, err := pinSelf(cpus)
		if err != nil {
			return err
		}
		cr.unpinSelf = restore
	}
	if cr.client != nil {
		job := peer.Job{Op: peer.OpServe, Conns: cr.spec.Conns, Role: cr.w.role, Frame: peer.FrameSpecOf(cr.frame)}
		if cr.w.connect {
			job.Conns = 0 // any number, until the end job
		}
		if err := cr.client.Serve(ctx, job); err != nil {
			return err // the client's errors start with "peer: "
		}
	}
	if cr.w.connect {
		return nil
	}
	for i := range cr.spec.Conns {
		c, err := rc.dial(ctx, cr.opts.BufferSize, i)
		if err != nil {
			return markGone(ctx, err)
		}
		cr.conns = append(cr.conns, c)
	}
	for _, c := range cr.conns {
		if or, ok := c.(transports.OptionReporter); ok {
			cr.res.Options = or.EffectiveOptions()
			break
		}
	}
	return nil
}

// remoteDone waits for the server's done reply to the case's serve job,
// once the bench's connections are closed; the connect workload's job is
// told first that no more connections come.
func (cr *caseRun) remoteDone(ctx context.Context) (peer.Reply, error) {
	if cr.w.connect {
		if err := cr.client.End(); err != nil {
			return peer.Reply{}, err
		}
	}
	return cr.client.Done(ctx)
}

// close ends the session, if there is one.
func (rc *remoteCase) close(client *peer.Client) {
	if rc.ctl == nil {
		return
	}
	if client != nil {
		_ = client.Exit()
	}
	rc.ctl.Close()
}

// runConnectRemote is the connect workload against a remote peer: every
// exchange dials the address (and, for an ipcbench serve, joins the
// session with a data hello), writes one request, reads and checks its
// echo and closes.
func runConnectRemote(ctx context.Context, cr *caseRun) (measurement, error) {
	size := cr.spec.Size
	w, r := frame.NewWriter(nil, cr.frame), frame.NewReader(nil, cr.frame)
	in, out := make([]byte, size), make([]byte, size)
	frame.Fill(out, 0, 0)
	return exchanges(ctx, cr, func(seq uint64, measuring bool) (bool, error) {
		c, err := cr.remote.dial(ctx, cr.opts.BufferSize, 0)
		if err != nil {
			return false, err
		}
		defer c.Close()
		cr.setCurrent(c, nil)
		defer cr.setCurrent(nil, nil)
		w.Reset(c)
		r.Reset(c)
		frame.Stamp(out, 0, seq)
		if err := w.WriteMsg(out); err != nil {
			return false, fmt.Errorf("writing request: %w", err)
		}
		msg, err := readEcho(r, in, seq)
		if err != nil {
			return false, err
		}
		if measuring && cr.options == nil {
			if or, ok := c.(transports.OptionReporter); ok {
				cr.options = or.EffectiveOptions()
			}
		}
		return len(msg) != size || frame.Check(msg, 0, seq) != nil, nil
	})
}
