package peer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
)

// NotByHand is what Main prints when it was not started by ipcbench.
const NotByHand = "ipcbench peer is started by ipcbench itself and cannot be run by hand"

// Timeouts of the peer.
const (
	// DialTimeout bounds dialing all connections of a serve job.
	DialTimeout = 10 * time.Second
	// ShutdownTimeout bounds waiting for connection goroutines after their
	// connections were closed at exit.
	ShutdownTimeout = 5 * time.Second
)

// RunIfPeer is the peer entry point of a program that imports ipcbench:
// called first in its main, it lets the program serve as its own peer
// process. When this process was started as a peer (proc.Start with the
// program's executable and no arguments, as a bench.Runner does with
// Options.Peer.Path set to it), RunIfPeer runs Main on stdin, stdout and
// stderr with the transports lookup finds (all.Lookup for every transport
// of the module) and exits with Main's status: it never returns. Started
// as a peer with the arguments ServeArg, -t SPEC, -listen ADDRESS (a
// runner's serve peer source), it runs ServeMain instead, until SIGINT or
// SIGTERM. Otherwise it returns at once and the program goes on.
//
// A program that starts itself as its peer (bench's or bench/choose's
// default) but does not call RunIfPeer first runs its normal main in the
// copy started as the peer. That copy starts no peer of its own: its
// attempt fails at once with ErrStartFromPeer. The copy then does what
// the program does on such an error, exit with a message say, but never
// the handshake, so the original's peer start fails (bench.ErrPeerStart),
// quoting the copy's exit status and the end of its stderr.
func RunIfPeer(lookup func(name string) (transports.Transport, error)) {
	if !IsPeer() {
		return
	}
	serveIfAsked(os.Args[1:], lookup)
	os.Exit(Main(context.Background(), os.Stdin, os.Stdout, os.Stderr, lookup))
}

// ErrStartFromPeer is wrapped, with bench.ErrPeerStart, by the error of
// an attempt to start a peer (bench.Runner's Run and RunCase,
// choose.Measure) in a process that was itself started as a peer: a
// program that did not call RunIfPeer first in main (or TestMain) and
// runs its normal main in the copy started as its peer. Nothing is
// started, so the copy does not start copies of its own without end.
var ErrStartFromPeer = proc.ErrStartFromPeer

// IsPeer reports whether this process was started as a peer: its parent
// set the peer cookie in its environment.
func IsPeer() bool { return proc.IsPeer() }

// Main is the body of the `ipcbench peer` subcommand. Without the cookie
// (see internal/proc) it prints NotByHand to stderr and returns 2. Otherwise
// it writes the handshake on stdout, then serves jobs read from stdin (see
// the package documentation) until an exit job, EOF on stdin (return 0) or
// the end of ctx (return 1). lookup finds a transport by name. It returns 1
// when the handshake cannot be written or the parent is already gone.
//
// Main returns without waiting for a read from stdin in progress: the
// process is expected to exit, or the caller to close stdin.
func Main(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, lookup func(name string) (transports.Transport, error)) int {
	if !IsPeer() {
		fmt.Fprintln(stderr, NotByHand)
		return 2
	}
	if isConnChild() {
		return connChildMain(stdout, stderr)
	}
	logger := log.New(stderr, fmt.Sprintf("ipcbench peer %d: ", os.Getpid()), log.Lmicroseconds)
	if err := proc.Announce(stdout); err != nil {
		logger.Print(err)
		return 1
	}
	s := &server{out: stdout, stderr: stderr, log: logger, lookup: lookup}
	return s.run(ctx, stdin)
}

// server is the state of a peer process.
type server struct {
	out    io.Writer
	outMu  sync.Mutex
	stderr io.Writer // inherited by ModelProcess children
	log    *log.Logger
	lookup func(string) (transports.Transport, error)

	filesUsed bool // inherited files were consumed by a serve job

	children children // live ModelProcess children

	mu     sync.Mutex
	active *serving // the serve job in progress, or nil
}

// jobItem is one decoded control line, or an error.
type jobItem struct {
	job Job
	err error
	// fatal marks the error that ended the reading of the control
	// channel (a line over proc.MaxLineSize, a failed read): no item
	// follows it.
	fatal bool
}

func (s *server) run(ctx context.Context, stdin io.Reader) int {
	jobs := make(chan jobItem)
	quit := make(chan struct{})
	defer close(quit)
	go readJobs(stdin, jobs, quit)
	for {
		select {
		case it, ok := <-jobs:
			if !ok {
				s.shutdown()
				return 0
			}
			if it.err != nil {
				s.log.Print(it.err)
				s.reply(Reply{Op: OpError, Error: it.err.Error()})
				continue
			}
			switch it.job.Op {
			case OpServe:
				s.startServe(ctx, it.job)
			case OpCPU:
				s.reply(s.cpuReply(it.job.ID))
			case OpExit:
				s.shutdown()
				return 0
			default:
				s.reply(Reply{Op: OpError, ID: it.job.ID, Error: fmt.Sprintf("unknown job op %.200q (want %s, %s or %s)", it.job.Op, OpServe, OpCPU, OpExit)})
			}
		case <-ctx.Done():
			s.log.Printf("stopping: %v", ctx.Err())
			s.shutdown()
			return 1
		}
	}
}

// readJobs decodes control lines from r until EOF, an error, or quit.
func readJobs(r io.Reader, jobs chan<- jobItem, quit <-chan struct{}) {
	defer close(jobs)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), proc.MaxLineSize)
	for sc.Scan() {
		var it jobItem
		if err := json.Unmarshal(sc.Bytes(), &it.job); err != nil {
			it.err = fmt.Errorf("bad control line %.200q: %w", sc.Text(), err)
		}
		select {
		case jobs <- it:
		case <-quit:
			return
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a control line longer than %d bytes: %w", proc.MaxLineSize, err)
		}
		select {
		case jobs <- jobItem{err: fmt.Errorf("reading control channel: %w", err), fatal: true}:
		case <-quit:
		}
	}
}

// reply writes one reply line; a failure is logged (the bench process is
// gone or stuck, and its death will end this process).
func (s *server) reply(r Reply) {
	b, err := json.Marshal(r)
	if err != nil {
		s.log.Printf("encoding reply: %v", err)
		return
	}
	b = append(b, '\n')
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if _, err := s.out.Write(b); err != nil {
		s.log.Printf("writing reply: %v", err)
	}
}

// cpuReply reads this process's CPU time, its ModelProcess children's
// included.
func (s *server) cpuReply(id uint64) Reply {
	cu, cs := s.children.cpu()
	return cpuReply(id, cu, cs)
}

// cpuReply reads this process's CPU time and adds user and sys ns to it.
func cpuReply(id uint64, user, sys int64) Reply {
	t, err := sysinfo.SelfCPUTime()
	if err != nil {
		return Reply{Op: OpCPU, ID: id, Error: err.Error()}
	}
	return Reply{Op: OpCPU, ID: id, UserNS: int64(t.User) + user, SysNS: int64(t.System) + sys}
}

// serving is one serve job in progress.
type serving struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the job's goroutine has ended

	mu      sync.Mutex
	closing bool
	conns   []net.Conn
	closers []func() // wake a server model's loops at shutdown
}

// startServe validates a serve job and runs it in its own goroutine, so
// that cpu and exit jobs are answered meanwhile.
func (s *server) startServe(ctx context.Context, job Job) {
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		s.log.Printf("serve: %s", msg)
		s.reply(Reply{Op: OpError, ID: job.ID, Error: msg})
	}
	s.mu.Lock()
	busy := s.active != nil
	s.mu.Unlock()
	if busy {
		fail("a serve job is already running")
		return
	}
	conns := job.Conns
	if conns == 0 {
		conns = 1
	}
	if conns < 0 || conns > MaxConns {
		fail("conns %d outside 1..%d", job.Conns, MaxConns)
		return
	}
	cfg, err := job.Frame.Config()
	if err != nil {
		fail("framing: %v", err)
		return
	}
	if s.lookup == nil {
		fail("no transports known")
		return
	}
	tr, err := s.lookup(job.Endpoint.Transport)
	if err != nil {
		fail("%v", err)
		return
	}
	if err := CheckModel(job.Model); err != nil {
		fail("%v", err)
		return
	}
	if job.Role == RoleConnect {
		if job.Model != "" && job.Model != ModelGoroutine {
			s.reply(Reply{Op: OpError, ID: job.ID, NotApplicable: true,
				Error: fmt.Sprintf("%v: the connect workload dials one connection at a time; the %s model serves connections held open", ErrNotApplicable, job.Model)})
			return
		}
		s.startConnect(ctx, job, cfg, tr)
		return
	}
	loop, err := loopFor(job.Role, cfg)
	if err != nil {
		fail("%v", err)
		return
	}
	if why := checkModelJob(job.Model, job.Role, cfg); why != "" {
		fail("%s", why)
		return
	}
	files, err := s.inherited(job.Endpoint.NumFiles)
	if err != nil {
		fail("%v", err)
		return
	}
	sctx, sv := s.begin(ctx)
	go func() {
		defer close(sv.done)
		defer sv.cancel()
		s.serve(sctx, sv, tr, job, conns, cfg, loop, files)
	}()
}

// begin makes a new serve job the active one; its context ends with ctx
// or with the job's cancel.
func (s *server) begin(ctx context.Context) (context.Context, *serving) {
	sctx, cancel := context.WithCancel(ctx)
	sv := &serving{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.active = sv
	s.mu.Unlock()
	return sctx, sv
}

// inherited returns the n endpoint files the bench process handed over
// with transports.Endpoint.AttachTo (transports.InheritedEndpoint). They
// can be taken once.
func (s *server) inherited(n int) ([]*os.File, error) {
	if n == 0 {
		return nil, nil
	}
	if s.filesUsed {
		return nil, errors.New("the inherited endpoint files were used by an earlier serve job")
	}
	s.filesUsed = true
	ep, err := transports.InheritedEndpoint()
	if err != nil {
		return nil, fmt.Errorf("endpoint has %d files, but the peer inherited none: %w", n, err)
	}
	if n < 0 || n > len(ep.Files) {
		rendezvous.CloseFiles(ep.Files)
		return nil, fmt.Errorf("endpoint has %d files, but the peer inherited %d", n, len(ep.Files))
	}
	rendezvous.CloseFiles(ep.Files[n:])
	return ep.Files[:n], nil
}

// serve dials the job's connections, answers ready (or error), serves the
// role on each and answers done when all have ended, unless the peer is
// shutting down.
func (s *server) serve(ctx context.Context, sv *serving, tr transports.Transport, job Job, n int, cfg frame.Config, loop roleLoop, files []*os.File) {
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	for i := 0; i < n; i++ {
		ep := job.Endpoint
		ep.Index = i
		ep.Files = files
		c, err := tr.Dial(dctx, ep)
		if err == nil {
			if err = Prove(c, job.Secret); err != nil {
				c.Close()
			}
		}
		if err != nil {
			cancel()
			rendezvous.CloseFiles(files)
			msg := fmt.Sprintf("dialing %s connection %d of %d: %v", tr.Name(), i, n, err)
			s.log.Print(msg)
			ok := s.finish(sv)
			sv.closeAll()
			if ok {
				s.reply(Reply{Op: OpError, ID: job.ID, Error: msg})
			}
			return
		}
		if !sv.add(c) {
			cancel()
			rendezvous.CloseFiles(files)
			return // shutting down
		}
	}
	cancel()
	rendezvous.CloseFiles(files) // those of channels not dialed; Dial closed its own channel's already
	fds, err := prepareModel(job.Model, tr.Name(), sv.conns)
	if err != nil {
		msg := err.Error()
		s.log.Print(msg)
		ok := s.finish(sv)
		sv.closeAll()
		if ok {
			s.reply(Reply{Op: OpError, ID: job.ID, Error: msg, NotApplicable: errors.Is(err, ErrNotApplicable)})
		}
		return
	}
	// Ready only once every connection is being served: a model that
	// starts a process per connection does so before the bench measures.
	stats := make([]ConnStats, n)
	up, served := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		s.serveModel(sv, job.Model, fds, job.Role, cfg, loop, stats, up)
	}()
	<-up
	s.reply(Reply{Op: OpReady, ID: job.ID})
	<-served
	if !s.finish(sv) {
		return
	}
	var errs []string
	for i, st := range stats {
		if st.Error != "" {
			errs = append(errs, fmt.Sprintf("%s connection %d: %s", tr.Name(), i, st.Error))
		}
		if st.CheckError != "" {
			s.log.Printf("connection %d: %d payloads failed their check; first: %s", i, st.Errors, st.CheckError)
		}
	}
	r := Reply{Op: OpDone, ID: job.ID, Conns: stats, Error: strings.Join(errs, "; ")}
	if r.Error != "" {
		s.log.Print(r.Error)
	}
	s.reply(r)
}

// finish ends sv as the active job before its last reply, so that the
// bench may send the next serve job as soon as it has that reply. It
// reports false when the peer is shutting down: then nothing is replied.
func (s *server) finish(sv *serving) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active != sv || sv.isClosing() {
		return false
	}
	s.active = nil
	return true
}

// add records a dialed connection; false (and the connection closed) when
// the job is shutting down.
func (sv *serving) add(c net.Conn) bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.closing {
		c.Close()
		return false
	}
	sv.conns = append(sv.conns, c)
	return true
}

// onClose registers fn to run when the job shuts down (closeAll); false,
// and fn not registered, when it is shutting down already.
func (sv *serving) onClose(fn func()) bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.closing {
		return false
	}
	sv.closers = append(sv.closers, fn)
	return true
}

func (sv *serving) isClosing() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.closing
}

// closeAll marks the job as shutting down and closes its connections,
// which ends their loops.
func (sv *serving) closeAll() {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	sv.closing = true
	for _, c := range sv.conns {
		c.Close()
	}
	for _, fn := range sv.closers {
		fn()
	}
}

// shutdown ends the serve job in progress, if any, and waits (bounded) for
// its goroutines.
func (s *server) shutdown() {
	s.mu.Lock()
	sv := s.active
	s.active = nil
	if sv != nil {
		sv.closeAll()
	}
	s.mu.Unlock()
	if sv == nil {
		return
	}
	sv.cancel()
	t := time.NewTimer(ShutdownTimeout)
	defer t.Stop()
	select {
	case <-sv.done:
	case <-t.C:
		s.log.Printf("connections did not end within %v of being closed", ShutdownTimeout)
	}
}
