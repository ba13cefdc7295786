package peer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
)

// OpHeader asks a stand-alone peer for its environment header
// (Reply.Header).
const OpHeader = "header"

// OpEnd tells a stand-alone peer that no more connections will come for
// the session's connect job: it answers done once the open ones ended.
const OpEnd = "end"

// ServeOptions configures Serve.
type ServeOptions struct {
	// Echo is the framing of plain echo clients: connections whose first
	// bytes are not a hello (HelloPrefix) are served as an echo server with
	// it. The zero value is length-prefixed framing. (A plain client whose
	// first message is a strict prefix of HelloPrefix, such as "ipc" in
	// fixed 3-byte framing, and who waits for its echo before sending more,
	// is taken for a hello that did not finish within HelloTimeout.)
	Echo frame.Config
	// Tool is the server's "ipcbench <version>", sent in every answer.
	Tool string
	// Header is the server's environment header, sent as JSON in the reply
	// to a header job (Reply.Header); nil sends null.
	Header any
	// Log receives one line per refused connection, failed session or
	// failed data connection (one the client reset is no failure: the
	// client went away); nil discards them.
	Log *log.Logger
	// Control, when not nil, is the listener of the server's control
	// connections (ListenControl: for a transport dialed through a
	// rendezvous, a unix socket next to it): it takes control hellos only,
	// and the transport's own listener then refuses them with the reason,
	// so that no idle control connection shares the measured transport.
	// Serve closes it, before the transport's listener. With Control nil,
	// control connections come over the transport's listener.
	Control net.Listener
	// MaxConns is the most connections served at once, over the
	// transport's listener and Control together: what it protects is the
	// process's one table of file descriptors, which both draw on, and a
	// session needs a connection of each kind. A connection that comes
	// while MaxConns are open is accepted and refused at once, without
	// reading from it: it gets an error line (ErrorPrefix) saying so and
	// is closed (the write given up after refuseWriteTimeout, so that a
	// client that never reads cannot hold it), it does not count against
	// MaxConns, and it counts in Summary.Errors; such refusals are logged
	// as Accept's failures are, at most one line per listener per
	// acceptLogEvery with the count of those not logged. 0 means
	// DefaultMaxConns(MaxDescriptorsPerConn); a negative value is an
	// error. A cap above what the descriptor limit allows leaves Accept
	// to fail for want of descriptors, as it does without one.
	MaxConns int
}

// Summary counts what a Serve carried until it stopped.
type Summary struct {
	// Sessions counts the control connections (ipcbench run clients)
	// that asked for a serve job: a run's cases, one each.
	Sessions int64 `json:"sessions"`
	// Probes counts the control connections that asked for none: a run's
	// check of the server before its first case (its header only), or a
	// client that went before a job.
	Probes int64 `json:"probes"`
	// EchoClients counts plain echo clients.
	EchoClients int64 `json:"echo_clients"`
	// Messages and Bytes count messages and payload bytes read on every
	// data and echo connection.
	Messages int64 `json:"messages"`
	Bytes    int64 `json:"bytes"`
	// Errors counts connections that ended with an error, payloads that
	// failed their check, and refused hellos.
	Errors int64 `json:"errors"`
}

// String is the summary as one line of key=value fields.
func (s Summary) String() string {
	return fmt.Sprintf("sessions=%d probes=%d echo_clients=%d messages=%d bytes=%d errors=%d", s.Sessions, s.Probes, s.EchoClients, s.Messages, s.Bytes, s.Errors)
}

// Serve is the peer as a stand-alone server (`ipcbench serve`): it accepts
// connections on ln (and o.Control) until ctx ends, then closes the
// listeners and every connection, waits for their goroutines and returns
// what they carried. Each connection is one of:
//
//   - a control connection (hello kind control): one session, a bench
//     client, speaking the Job/Reply protocol (serve, cpu, header, end,
//     exit) over the connection; a serve job does not dial, it waits for
//     its data connections. With o.Control, only there;
//   - a data connection (hello kind data) of a session's serve job, served
//     with the job's role (echo, sink; connect: any number of connections,
//     each echoed, until an end job);
//   - anything else: a plain echo client, served with o.Echo framing
//     (never on o.Control, which refuses it).
//
// Sessions and echo clients are served at once, each on its own
// goroutines, at most o.MaxConns connections at a time: one more is
// refused at once (see ServeOptions.MaxConns). A hello, once its first
// byte came, must be complete within HelloTimeout, or the connection is
// refused. A connection on ln that sends nothing is kept until it sends,
// closes, or the server stops, as it may be a plain echo client that
// waits before its first message; on o.Control, which no echo client
// dials, the hello is due within HelloTimeout of the accept, and a
// connection that sends none is refused and closed. Connections that the
// server closes on its stop, in their hello or later, are no errors and
// are not logged. While it serves, a
// socket file that ln or o.Control is reached by and that is removed or
// replaced (which leaves the server unreachable there) is logged once.
// The error is nil when ctx ended; otherwise the first Accept error that
// was not about one connection only.
func Serve(ctx context.Context, ln net.Listener, o ServeOptions) (Summary, error) {
	closeAll := func() {
		if o.Control != nil {
			o.Control.Close() // first: its socket is in the rendezvous's directory
		}
		ln.Close()
	}
	if o.Log == nil {
		o.Log = log.New(io.Discard, "", 0)
	}
	switch {
	case o.MaxConns < 0:
		closeAll()
		return Summary{}, fmt.Errorf("max conns %d: want 0 (the default) or more", o.MaxConns)
	case o.MaxConns == 0:
		o.MaxConns = DefaultMaxConns(MaxDescriptorsPerConn)
	}
	echo, err := o.Echo.Normalize()
	if err != nil {
		closeAll()
		return Summary{}, fmt.Errorf("echo framing: %w", err)
	}
	o.Echo = echo
	header, err := json.Marshal(o.Header)
	if err != nil {
		closeAll()
		return Summary{}, fmt.Errorf("encoding the header: %w", err)
	}
	sv := &standalone{o: o, header: header, sessions: map[string]*session{}, conns: map[net.Conn]struct{}{}}
	var sockets []socketFile
	for _, l := range []net.Listener{ln, o.Control} {
		if sf, ok := boundSocket(l); ok {
			sf.control = l == o.Control
			sockets = append(sockets, sf)
		}
	}
	// The watch ends before the listeners close, which removes their
	// socket files.
	watchCtx, endWatch := context.WithCancel(ctx)
	var once sync.Once
	stopAll := func() { once.Do(func() { endWatch(); closeAll() }) }
	stop := context.AfterFunc(ctx, stopAll)
	defer stop()
	var (
		acceptErr error
		errOnce   sync.Once
		loops     sync.WaitGroup
	)
	loops.Go(func() { watchSockets(watchCtx, sockets, o.Log) })
	accept := func(l net.Listener, side listenerSide) {
		defer loops.Done()
		if err := sv.acceptLoop(ctx, l, side); err != nil {
			errOnce.Do(func() { acceptErr = err })
		}
		stopAll() // one listener failing stops the server
	}
	loops.Add(1)
	if o.Control != nil {
		loops.Add(1)
		go accept(o.Control, sideControl)
	}
	side := sideTransport
	if o.Control != nil {
		side = sideData
	}
	accept(ln, side) // ends with stopAll, which ends the watch
	loops.Wait()
	sv.closeAll()
	sv.wg.Wait()
	return sv.summary(), acceptErr
}

// listenerSide says which connections a listener of Serve takes.
type listenerSide int

const (
	// sideTransport takes every kind: control, data and echo clients.
	sideTransport listenerSide = iota
	// sideData is the transport's listener of a server with a control
	// socket: data connections and echo clients.
	sideData
	// sideControl is the control socket: control connections only.
	sideControl
)

// acceptLoop accepts on l until it is closed, serving each connection on
// a goroutine of its own. It returns nil when l was closed or ctx ended,
// else the Accept error that ended it. Accept errors about one connection
// only (out of descriptors, a refused foreign peer) are each counted and
// retried after acceptBackoff, but logged at most once per acceptLogEvery
// (failureLog): the first one, then one line with how many came since,
// or, once Accept works again, one saying so with that count. A
// connection that comes while o.MaxConns are open is refused on a
// goroutine of its own (sendRefusal), counted, and logged the same way.
func (sv *standalone) acceptLoop(ctx context.Context, l net.Listener, side listenerSide) error {
	var fails, busy failureLog
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || sv.isClosed() {
				return nil
			}
			if isTemporary(err) {
				sv.errors.Add(1)
				fails.report(sv.o.Log, time.Now(), "failures", fmt.Sprintf("accept: %v", err))
				time.Sleep(acceptBackoff) // a listener that fails every Accept must not spin
				continue
			}
			return err
		}
		if fails.unsaid > 0 {
			if ok, more := fails.recovered(time.Now()); ok {
				sv.o.Log.Printf("accept: works again, after %d more failures, not logged", more)
			}
		}
		switch a, open := sv.track(c); a {
		case closing:
			c.Close()
			return nil
		case overCap:
			sv.errors.Add(1)
			reason := capReason(sv.o.MaxConns, open)
			busy.report(sv.o.Log, time.Now(), "refusals at the cap", fmt.Sprintf("%s: refused: %s", c.RemoteAddr(), reason))
			sv.wg.Add(1)
			go func() {
				defer sv.wg.Done()
				defer sv.untrack(c, overCap)
				sendRefusal(c, reason, refuseWriteTimeout)
			}()
			continue
		}
		if busy.unsaid > 0 {
			if ok, more := busy.recovered(time.Now()); ok {
				sv.o.Log.Printf("serving again below the cap of %d connections, after %d more refusals at it, not logged", sv.o.MaxConns, more)
			}
		}
		sv.wg.Add(1)
		go func() {
			defer sv.wg.Done()
			defer sv.untrack(c, served)
			sv.handle(c, side)
		}()
	}
}

// capReason is the refusal of a connection that comes while open
// connections are served and max is the cap.
func capReason(max, open int) string {
	conns, are := "connections", "are"
	if max == 1 {
		conns = "connection"
	}
	if open == 1 {
		are = "is"
	}
	return fmt.Sprintf("this server serves at most %d %s at once (ipcbench serve -max-conns) and %d %s open; try again once one has ended", max, conns, open, are)
}

// refuseWriteTimeout bounds the write of the refusal of a connection over
// MaxConns: a fresh connection takes the short line into its buffer at
// once, so the deadline only keeps a connection that cannot take it from
// holding its descriptor.
const refuseWriteTimeout = time.Second

// acceptBackoff is the pause after an Accept that failed for one
// connection only.
const acceptBackoff = 10 * time.Millisecond

// acceptLogEvery is the least time between two log lines about failed
// Accepts on one listener: out of descriptors, Accept fails every
// acceptBackoff, and a line each time would flood the log. Refusals of
// connections over MaxConns, which a flood of clients brings as fast as
// it connects, are logged at the same rate.
const acceptLogEvery = 5 * time.Second

// failureLog decides which failures, and recoveries after them, are
// logged: at most one line per acceptLogEvery, each with the count of the
// failures since the last line that were not logged. A listener that
// fails and works by turns (out of descriptors, each closed connection
// lets one more in) is rate-limited the same. acceptLoop keeps one for
// failed Accepts and one for refusals over MaxConns.
type failureLog struct {
	last   time.Time // when the last line was logged; zero: never
	unsaid int       // failures since then, not logged
}

// quiet reports whether a line at now would follow the last too soon.
func (f *failureLog) quiet(now time.Time) bool {
	return !f.last.IsZero() && now.Sub(f.last) < acceptLogEvery
}

// note records a failure at now; ok says whether to log it, and more how
// many failures before it were not logged.
func (f *failureLog) note(now time.Time) (ok bool, more int) {
	if f.quiet(now) {
		f.unsaid++
		return false, 0
	}
	more, f.unsaid, f.last = f.unsaid, 0, now
	return true, more
}

// report records a failure at now and logs line for it if note lets it,
// saying how many failures (what they are) came since the last line and
// were not logged, or, for the first, that more are logged at most once
// per acceptLogEvery.
func (f *failureLog) report(l *log.Logger, now time.Time, what, line string) {
	if ok, more := f.note(now); ok && more > 0 {
		l.Printf("%s (%d more %s since the last such line, not logged)", line, more, what)
	} else if ok {
		l.Printf("%s (more %s are logged at most once per %v)", line, what, acceptLogEvery)
	}
}

// recovered records a success at now; ok says whether to log that it
// works again, after more failures that were not logged.
func (f *failureLog) recovered(now time.Time) (ok bool, more int) {
	if f.unsaid == 0 || f.quiet(now) {
		return false, 0
	}
	more, f.unsaid, f.last = f.unsaid, 0, now
	return true, more
}

// isTemporary reports whether an Accept error concerns one connection only
// (a refused foreign peer, a connection reset before it was accepted), so
// the server goes on.
func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	if errors.As(err, &ne) && ne.Temporary() {
		return true
	}
	// Transports refuse single connections (another user's, one that
	// failed its setup) with their own errors; the listener still works.
	var op *net.OpError
	return !errors.As(err, &op)
}

// standalone is the state of one Serve.
type standalone struct {
	o      ServeOptions
	header json.RawMessage
	wg     sync.WaitGroup

	sessionCount, probeCount, echoCount atomic.Int64
	messages, bytes, errors             atomic.Int64
	mu                                  sync.Mutex
	closed                              bool
	sessions                            map[string]*session
	// conns holds every open connection: those served, which count
	// against MaxConns (open counts them), and those being refused over
	// it.
	conns map[net.Conn]struct{}
	open  int
}

func (sv *standalone) summary() Summary {
	return Summary{Sessions: sv.sessionCount.Load(), Probes: sv.probeCount.Load(), EchoClients: sv.echoCount.Load(),
		Messages: sv.messages.Load(), Bytes: sv.bytes.Load(), Errors: sv.errors.Load()}
}

// admission is what track decided for a new connection.
type admission int

const (
	// served: the connection is served and counts against MaxConns.
	served admission = iota
	// overCap: MaxConns are open; the connection is to be refused.
	overCap
	// closing: the server is closing; the connection is not recorded.
	closing
)

// track records an open connection and decides whether it is served;
// open is how many served ones were open before it.
func (sv *standalone) track(c net.Conn) (a admission, open int) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	open = sv.open
	switch {
	case sv.closed:
		return closing, open
	case sv.open >= sv.o.MaxConns:
		a = overCap
	default:
		a = served
		sv.open++
	}
	sv.conns[c] = struct{}{}
	return a, open
}

// untrack closes a connection that track recorded and forgets it; a is
// what track decided for it.
func (sv *standalone) untrack(c net.Conn, a admission) {
	c.Close()
	sv.mu.Lock()
	if a == served {
		sv.open--
	}
	delete(sv.conns, c)
	sv.mu.Unlock()
}

// closeAll closes every open connection, which ends their goroutines.
func (sv *standalone) closeAll() {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.closed = true
	for c := range sv.conns {
		c.Close()
	}
}

// count adds a finished connection's statistics to the summary.
func (sv *standalone) count(st *ConnStats) {
	sv.messages.Add(st.Messages)
	sv.bytes.Add(st.Bytes)
	sv.errors.Add(st.Errors)
	if st.Error != "" {
		sv.errors.Add(1)
	}
}

// handle tells a connection's kind by its first bytes and serves it, if
// side takes it. On the control socket the hello is due within
// HelloTimeout of the accept, as no plain echo client comes there; on the
// transport's listener, within HelloTimeout of its first byte, as a plain
// echo client may wait as long as it likes before its first message.
func (sv *standalone) handle(c net.Conn, side listenerSide) {
	buf := make([]byte, MaxHelloLen)
	n := 0
	if side == sideControl {
		c.SetReadDeadline(time.Now().Add(HelloTimeout))
	}
	for n < len(HelloPrefix) {
		k, err := c.Read(buf[n:])
		if k > 0 && n == 0 && side != sideControl {
			// A hello, once begun, must be complete in time.
			c.SetReadDeadline(time.Now().Add(HelloTimeout))
		}
		n += k
		if m := min(n, len(HelloPrefix)); !bytes.Equal(buf[:m], []byte(HelloPrefix[:m])) {
			c.SetReadDeadline(time.Time{})
			if side == sideControl {
				sv.refuse(c, "this is the control socket of an ipcbench serve: it takes ipcbench run's control connections only; echo clients dial the transport's address")
				return
			}
			sv.echo(&prefixConn{Conn: c, r: io.MultiReader(bytes.NewReader(buf[:n]), c)})
			return
		}
		if err != nil {
			switch {
			case sv.isClosed():
				// The server is stopping and closed the connection itself.
			case errors.Is(err, os.ErrDeadlineExceeded) && n == 0:
				sv.refuse(c, fmt.Sprintf("no hello within %v: this is the control socket of an ipcbench serve, which takes ipcbench run's control connections only", HelloTimeout))
			case errors.Is(err, os.ErrDeadlineExceeded):
				sv.refuse(c, fmt.Sprintf("the hello did not finish within %v", HelloTimeout))
			case n > 0 || err != io.EOF:
				sv.errors.Add(1)
				sv.o.Log.Printf("%s: connection ended during its hello: %v", c.RemoteAddr(), err)
			}
			return
		}
	}
	line, err := finishLine(c, buf, n, notHellof)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		switch {
		case sv.isClosed():
			// The server is stopping and closed the connection itself.
		case errors.Is(err, os.ErrDeadlineExceeded):
			sv.refuse(c, fmt.Sprintf("the hello did not finish within %v", HelloTimeout))
		default:
			sv.refuse(c, fmt.Sprintf("reading the hello: %v", err))
		}
		return
	}
	h, err := ParseHello(line)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, ErrVersion) {
			msg += fmt.Sprintf(" (server %s); run the same ipcbench version on both sides", sv.o.Tool)
		}
		sv.refuse(c, msg)
		return
	}
	switch {
	case h.Kind == KindControl && side == sideData:
		sv.refuse(c, fmt.Sprintf("control connections go to the control socket %s, not over the measured transport (a client of an older ipcbench sends them here; run the same version on both sides)", sv.o.Control.Addr()))
	case h.Kind == KindControl:
		background(c)
		sv.control(c)
	case h.Kind == KindData && side == sideControl:
		sv.refuse(c, "data connections go through the transport's address, not the control socket")
	case h.Kind == KindData:
		sv.data(c, h)
	}
}

// refuse answers a bad hello with an error line, and counts and logs it.
func (sv *standalone) refuse(c net.Conn, reason string) {
	sv.errors.Add(1)
	sv.o.Log.Printf("%s: refused: %s", c.RemoteAddr(), reason)
	sendRefusal(c, reason, HelloTimeout)
}

// sendRefusal writes the refusing answer, ErrorPrefix and reason on one
// line, giving up after timeout.
func sendRefusal(c net.Conn, reason string, timeout time.Duration) {
	c.SetWriteDeadline(time.Now().Add(timeout))
	io.WriteString(c, ErrorPrefix+strings.ReplaceAll(reason, "\n", " ")+"\n")
}

// welcome sends the accepting answer.
func (sv *standalone) welcome(c net.Conn, id string) error {
	c.SetWriteDeadline(time.Now().Add(HelloTimeout))
	defer c.SetWriteDeadline(time.Time{})
	_, err := c.Write(appendOK(nil, Welcome{Session: id, Tool: sv.o.Tool}))
	return err
}

// echo serves a plain echo client.
func (sv *standalone) echo(c net.Conn) {
	sv.echoCount.Add(1)
	var st ConnStats
	if err := echoLoop(c, sv.o.Echo, 0, &st); err != nil && !sv.isClosed() {
		st.Error = err.Error()
		sv.o.Log.Printf("%s: echo client: %v", c.RemoteAddr(), err)
	}
	sv.count(&st)
}

func (sv *standalone) isClosed() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.closed
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// session is one control connection and its serve jobs.
type session struct {
	sv  *standalone
	id  string
	out net.Conn

	outMu  sync.Mutex
	broken atomic.Bool // a reply could not be written: the session is over

	mu  sync.Mutex
	job *sessionJob // the serve job in progress, or nil
}

// sessionJob is a session's serve job: it waits for its data connections.
type sessionJob struct {
	id      uint64
	role    string
	cfg     frame.Config
	loop    roleLoop
	n       int    // connections expected; 0 for connect (any number, until end)
	taken   []bool // which indexes arrived
	ending  bool   // connect: an end job came
	late    bool   // not every connection arrived in time
	arrived int
	open    int
	stats   []ConnStats
	conns   map[net.Conn]struct{}
	timer   *time.Timer
	errs    []string
	done    bool
	aborted bool // the session ended (its client went away) and closed the connections
}

func newSessionID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// control serves one session until its connection ends or an exit job.
func (sv *standalone) control(c net.Conn) {
	id, err := newSessionID()
	if err != nil {
		sv.refuse(c, fmt.Sprintf("making a session id: %v", err))
		return
	}
	s := &session{sv: sv, id: id, out: c}
	sv.mu.Lock()
	sv.sessions[id] = s
	sv.mu.Unlock()
	defer func() {
		sv.mu.Lock()
		delete(sv.sessions, id)
		sv.mu.Unlock()
		s.abort()
	}()
	if err := sv.welcome(c, id); err != nil {
		sv.o.Log.Printf("%s: answering the hello: %v", c.RemoteAddr(), err)
		return
	}
	// A session counts once it asks for a serve job; one that asks for
	// none (a run's probe) is counted apart when it ends.
	served := false
	defer func() {
		if !served {
			sv.probeCount.Add(1)
		}
	}()
	jobs := make(chan jobItem)
	quit := make(chan struct{})
	defer close(quit)
	go readJobs(c, jobs, quit)
	for it := range jobs {
		if s.broken.Load() {
			return // the client stopped reading: its queued jobs go unanswered
		}
		if it.err != nil {
			if it.fatal && !sv.isClosed() && !errors.Is(it.err, net.ErrClosed) && !clientGone(it.err) {
				// The last item: the session ends with it. (A reset is a
				// client that went away, as at EOF.)
				sv.errors.Add(1)
				sv.o.Log.Printf("session %s: %v; the session ends", id, it.err)
			}
			if it.fatal && !errors.Is(it.err, bufio.ErrTooLong) {
				// The connection itself failed (a client gone without
				// closing it reads ETIMEDOUT): no reply would reach it,
				// and its failed write would be this error again.
				return
			}
			s.reply(Reply{Op: OpError, Error: it.err.Error()})
			continue
		}
		j := it.job
		switch j.Op {
		case OpServe:
			if !served {
				served = true
				sv.sessionCount.Add(1)
			}
			s.startJob(j)
		case OpCPU:
			s.reply(cpuReply(j.ID, 0, 0))
		case OpHeader:
			s.reply(Reply{Op: OpHeader, ID: j.ID, Header: sv.header})
		case OpEnd:
			s.end(j.ID)
		case OpExit:
			return
		default:
			s.reply(Reply{Op: OpError, ID: j.ID, Error: fmt.Sprintf("unknown job op %.200q (want %s, %s, %s, %s or %s)", j.Op, OpServe, OpCPU, OpHeader, OpEnd, OpExit)})
		}
	}
}

// reply writes one reply line on the control connection. The first write
// that fails (the client went away, or stopped reading for DialTimeout)
// ends the session: it is logged and counted once, the control connection
// is closed, and later replies are dropped.
func (s *session) reply(r Reply) {
	b, err := json.Marshal(r)
	if err != nil {
		s.sv.o.Log.Printf("session %s: encoding reply: %v", s.id, err)
		return
	}
	b = append(b, '\n')
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.broken.Load() {
		return
	}
	s.out.SetWriteDeadline(time.Now().Add(DialTimeout))
	if _, err := s.out.Write(b); err != nil {
		s.broken.Store(true)
		s.out.Close() // ends readJobs, and so the session
		// net.ErrClosed: the server closed the control connection itself
		// (stopping, or the session ended), which is no failure; nor is a
		// client gone (clientGone: it closed or died while a reply, such
		// as a job's done, was on its way).
		if !errors.Is(err, net.ErrClosed) && !clientGone(err) && !s.sv.isClosed() {
			s.sv.errors.Add(1)
			s.sv.o.Log.Printf("session %s: writing a reply: %v; the session ends", s.id, err)
		}
	}
}

// startJob checks a serve job and waits for its connections.
func (s *session) startJob(j Job) {
	fail := func(format string, args ...any) {
		s.reply(Reply{Op: OpError, ID: j.ID, Error: fmt.Sprintf(format, args...)})
	}
	cfg, err := j.Frame.Config()
	if err != nil {
		fail("framing: %v", err)
		return
	}
	if j.Model != "" && j.Model != ModelGoroutine {
		fail("%v: a stand-alone peer serves every connection on a goroutine of its own, not with the %s model", ErrNotApplicable, j.Model)
		return
	}
	sj := &sessionJob{id: j.ID, role: j.Role, cfg: cfg, conns: map[net.Conn]struct{}{}}
	switch j.Role {
	case RoleConnect:
		sj.loop, sj.stats = echoLoop, make([]ConnStats, 1)
	default:
		if sj.loop, err = loopFor(j.Role, cfg); err != nil {
			fail("%v", err)
			return
		}
		sj.n = max(j.Conns, 1)
		if j.Conns < 0 || j.Conns > MaxConns {
			fail("conns %d outside 1..%d", j.Conns, MaxConns)
			return
		}
		sj.stats, sj.taken = make([]ConnStats, sj.n), make([]bool, sj.n)
	}
	s.mu.Lock()
	if s.job != nil {
		s.mu.Unlock()
		fail("a serve job is already running")
		return
	}
	s.job = sj
	if sj.n > 0 {
		sj.timer = time.AfterFunc(DialTimeout, func() { s.late(sj) })
	}
	s.mu.Unlock()
	s.reply(Reply{Op: OpReady, ID: j.ID})
}

// late fails a job whose connections did not all arrive in time.
func (s *session) late(sj *sessionJob) {
	s.mu.Lock()
	if s.job != sj || sj.arrived == sj.n {
		s.mu.Unlock()
		return
	}
	sj.errs = append(sj.errs, fmt.Sprintf("only %d of %d connections arrived within %v", sj.arrived, sj.n, DialTimeout))
	sj.late = true // the job ends with the ones that came
	for c := range sj.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.maybeDone(sj)
}

// end answers an end job: the connect job ends once its open connections
// ended.
func (s *session) end(id uint64) {
	s.mu.Lock()
	sj := s.job
	if sj == nil || sj.n != 0 {
		s.mu.Unlock()
		s.reply(Reply{Op: OpError, ID: id, Error: "end: no connect job is running"})
		return
	}
	sj.ending = true
	s.mu.Unlock()
	s.maybeDone(sj)
}

// maybeDone sends the job's done reply once every connection ended.
func (s *session) maybeDone(sj *sessionJob) {
	s.mu.Lock()
	all := sj.ending
	if sj.n > 0 {
		all = sj.arrived == sj.n || sj.late
	}
	finished := !sj.done && sj.open == 0 && all
	if !finished {
		s.mu.Unlock()
		return
	}
	sj.done = true
	if sj.timer != nil {
		sj.timer.Stop()
	}
	if s.job == sj {
		s.job = nil
	}
	errs := append([]string(nil), sj.errs...)
	for i, st := range sj.stats {
		if st.Error != "" {
			errs = append(errs, fmt.Sprintf("connection %d: %s", i, st.Error))
		}
	}
	stats := sj.stats
	s.mu.Unlock()
	s.reply(Reply{Op: OpDone, ID: sj.id, Conns: stats, Error: strings.Join(errs, "; ")})
}

// abort ends the session's job: its connections are closed.
func (s *session) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sj := s.job; sj != nil {
		sj.done = true
		sj.aborted = true
		if sj.timer != nil {
			sj.timer.Stop()
		}
		for c := range sj.conns {
			c.Close()
		}
		s.job = nil
	}
}

// data serves one data connection of a session's serve job.
func (sv *standalone) data(c net.Conn, h Hello) {
	sv.mu.Lock()
	s := sv.sessions[h.Session]
	sv.mu.Unlock()
	if s == nil {
		sv.refuse(c, "no such session (ended, or never begun)")
		return
	}
	s.mu.Lock()
	sj := s.job
	var why string
	switch {
	case sj == nil || sj.done:
		why = "the session has no serve job waiting for connections"
	case sj.late:
		why = "the job's connections did not all arrive in time"
	case sj.n > 0 && h.Conn >= sj.n:
		why = fmt.Sprintf("connection %d is outside the job's %d", h.Conn, sj.n)
	case sj.n > 0 && sj.taken[h.Conn]:
		why = fmt.Sprintf("connection %d arrived twice", h.Conn)
	case sj.n == 0 && (sj.ending || h.Conn != 0):
		why = "the connect job is ending, or the connection is not 0"
	}
	if why != "" {
		s.mu.Unlock()
		sv.refuse(c, why)
		return
	}
	if sj.n > 0 {
		sj.taken[h.Conn] = true
	}
	sj.arrived++
	sj.open++
	sj.conns[c] = struct{}{}
	if sj.n > 0 && sj.arrived == sj.n && sj.timer != nil {
		sj.timer.Stop()
	}
	s.mu.Unlock()
	if err := sv.welcome(c, s.id); err != nil {
		sv.o.Log.Printf("session %s: answering connection %d: %v", s.id, h.Conn, err)
	}
	var st ConnStats
	err := sj.loop(c, sj.cfg, h.Conn, &st)
	c.Close()
	s.mu.Lock()
	aborted := sj.aborted
	s.mu.Unlock()
	// A connection that the server closed itself — while stopping, or
	// because its session's client went away — did not fail; nor did one
	// whose client is gone (reset it, or died: clientGone), as at EOF,
	// while a timeout is a failure. That is the rule of the control
	// connection too: a client whose process ended resets whichever of its
	// connections the server writes to next, so counting a data
	// connection's reset would make the count depend on which came first.
	// A failure is counted and logged, once.
	if err != nil && !sv.isClosed() && !aborted && !clientGone(err) {
		st.Error = err.Error()
		sv.o.Log.Printf("session %s: connection %d: %v", s.id, h.Conn, err)
	}
	sv.count(&st)
	s.mu.Lock()
	delete(sj.conns, c)
	sj.open--
	if sj.n > 0 {
		sj.stats[h.Conn] = st
	} else {
		t := &sj.stats[0]
		t.Messages += st.Messages
		t.Bytes += st.Bytes
		t.Errors += st.Errors
		if t.Error == "" {
			t.Error = st.Error
		}
	}
	s.mu.Unlock()
	s.maybeDone(sj)
}

// clientGone reports whether err is a connection's way of saying its
// client went away without a clean end: the transports' "the peer is
// gone" (transports.ErrPeerGone: a reset, a dead shared-memory peer),
// a reset or a broken pipe (EPIPE: a write to a peer that closed). A
// client whose process ended has gone as surely as one that closed; a
// connection that times out (a vanished host) has not said so, and fails.
func clientGone(err error) bool {
	return errors.Is(err, transports.ErrPeerGone) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
