package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// peerStartAttempts is how many times a case tries to start its peer: a
// single failed start is as often the machine's doing (a kill, memory
// pressure) as the case's.
const peerStartAttempts = 2

// peerExitWait is how long a failed case waits for its peer's exit to be
// reaped before it words the failure (see caseRun.explain).
const peerExitWait = time.Second

// caseRun is the state of one case in progress, shared by the phases of
// runCase and the workload functions.
type caseRun struct {
	r     *Runner
	spec  CaseSpec
	opts  *Options
	w     *workload
	name  string       // the transport label that starts every failure reason
	res   Result       // the record being filled in
	frame frame.Config // the run's framing; fixed mode sized for the case

	// What the phases acquired; close releases it.
	ln transports.Listener
	ep transports.Endpoint // the listener's endpoint
	// peerEP is what the peer inherits: ep, or for the connect workload
	// the handoff socket.
	peerEP    transports.Endpoint
	peer      *proc.Peer
	client    *peer.Client
	conns     []net.Conn
	unpinSelf func() // restores the bench process's CPU affinity
	// secret is what the peer writes first on every connection it dials,
	// and admit how long it may take to (peer.Admit).
	secret peer.Secret
	admit  time.Duration
	// remote is set when the peer is a server at an address
	// (Options.Remote, or the serve source's server): then there is no
	// listener and no peer process.
	remote *remoteCase
	// server is the serve source's stand-alone server process, and dir
	// the private directory of a socket or rendezvous path the case chose
	// (address and serve sources); close stops and removes them.
	server *proc.Peer
	dir    string

	// The connect workload's state (see connect.go).
	connectState

	measure   atomic.Bool // loops record while true
	stop      atomic.Bool // loops end when true
	limit     int64       // messages each loop measures in count mode, at most (see limitOf); 0: run for Duration
	limitRest int64       // in count mode, Count % Conns: how many loops measure limit, the others one fewer
	onMeasure func(start bool)
	tStart    time.Time
	tEnd      time.Time
	cpuStart  [2]sysinfo.CPUTime // bench, peer
	cpuEnd    [2]sysinfo.CPUTime
	sampler   *cpuSampler
	m         measurement // what the workload measured

	// sampled is the case's sampling interval (see sampleEvery), decided
	// once per case run by the first loop to start measuring and adopted
	// by every other loop (see decideSampling), so that all connections of
	// a record sample alike; 0: not decided yet; 1: every message timed.
	sampled atomic.Int64

	// The stall watch of count mode's default timeout (see watchStall):
	// timer ends the case, poke is set by the watch and cleared by a loop
	// that measured a message; bound words what the timer's end stands
	// for at the moment, and fired is that wording once it ended the case.
	timer *time.Timer
	poke  atomic.Bool
	bound atomic.Pointer[string]
	fired atomic.Pointer[string]

	// selfStop notices a stop of this process during the case, which
	// fails it with ErrSelfStopped, for RunCase to run it again; parent
	// is the run's context, the case's parent (see stopped).
	selfStop *selfStop
	parent   context.Context
}

// stopped reports whether this process was stopped and continued during
// the case (see selfStop), unless the run was interrupted (its context
// ended): the interrupt takes precedence, as the SIGCONT that came with it
// is no stop. GNU timeout and systemd send SIGCONT right after their
// SIGINT or SIGTERM, in case the process was stopped, which would
// otherwise read as one; and an interrupted case is not run again, so a
// stop before the interrupt changes nothing but its reason, which the
// interrupt gives.
func (cr *caseRun) stopped() bool {
	if cr.selfStop == nil || (cr.parent != nil && cr.parent.Err() != nil) {
		return false
	}
	return cr.selfStop.stopped()
}

// deadline returns the case's context: one that ends after
// Options.CaseTimeout or, with a stall window (Runner.stallAfter), one
// whose end watchStall moves on while the loops measure messages.
func (cr *caseRun) deadline(parent context.Context) (context.Context, context.CancelFunc) {
	if cr.r.stallAfter == 0 {
		return context.WithTimeout(parent, cr.opts.CaseTimeout)
	}
	ctx, cancel := context.WithCancelCause(parent)
	cr.setBound("case did not finish within " + cr.opts.CaseTimeout.String())
	cr.timer = time.AfterFunc(cr.opts.CaseTimeout, func() {
		cr.fired.Store(cr.bound.Load())
		cancel(context.DeadlineExceeded)
	})
	return ctx, func() {
		cr.timer.Stop()
		cancel(context.Canceled)
	}
}

// watchStall moves the end of a case with a stall window on while its
// loops measure messages, until stop is closed. Before the measured
// interval it leaves the end alone (Options.CaseTimeout from the case's
// start); the first check (of 20 per window) once the interval began
// starts the window, and each later check that finds a message measured
// since the one before starts it again. When the loops are done, the rest
// of the case gets one more window.
func (cr *caseRun) watchStall(ctx context.Context, stop <-chan struct{}) {
	window := cr.r.stallAfter
	tick := time.NewTicker(window / 20)
	defer tick.Stop()
	defer func() {
		// The rest of the case (the peer's report, closing) gets one
		// more window from here.
		if ctx.Err() == nil {
			cr.setBound("case did not finish within " + window.String() + " after its measured interval")
			cr.timer.Reset(window)
		}
	}()
	stalled := "no message measured for " + window.String()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !cr.measure.Load() {
			continue
		}
		if !cr.poke.Swap(true) && ctx.Err() == nil { // cleared since the last check (progress), or the first check
			cr.setBound(stalled)
			cr.timer.Reset(window)
		}
	}
}

// setBound words what the end of a case with a stall window stands for
// from now on (see deadline).
func (cr *caseRun) setBound(text string) { cr.bound.Store(&text) }

// progressed tells the stall watch that a loop measured a message: one
// load per message, and a store at most once per check.
func (cr *caseRun) progressed() {
	if cr.poke.Load() {
		cr.poke.Store(false)
	}
}

// cpuSpent returns the user and system CPU time spent between two
// readings of a process, and false with zeros when either went back: a
// server's figures that do (another implementation of the protocol) are
// no measurement, and a negative one would make the record unreadable.
func cpuSpent(start, end sysinfo.CPUTime) (userNS, sysNS int64, ok bool) {
	u, s := end.User-start.User, end.System-start.System
	if u < 0 || s < 0 {
		return 0, 0, false
	}
	return int64(u), int64(s), true
}

// measurement is what a workload function returns.
type measurement struct {
	messages, bytes, errors int64
	hist                    *hist.Histogram // nil when the workload records no latency
	achieved                float64
	end                     time.Time // zero: use the stop time
}

// runCase runs one case through its phases: listen, start the peer, serve
// (the peer dials in), measure (warm-up and measured interval), collect
// (the peer's report and the numbers), and close. A phase that fails ends
// the case as failed, with a reason that starts with the transport; close
// always releases what the earlier phases acquired. The error is nil for
// an OK or skipped case.
func (r *Runner) runCase(parent context.Context, cs CaseSpec, rep int) (Result, error) {
	cr := r.newCaseRun(cs, rep)
	if why := cr.w.cannotRun(cs.Transport.Transport.Name()); why != "" {
		return cr.skip(why), nil
	}
	if m := cs.Transport.Model(); cr.w.connect && m != peer.ModelGoroutine {
		return cr.skip(fmt.Sprintf("%s: the %s server model is not applicable to the connect workload, which serves one connection at a time", cr.name, m)), nil
	}
	cr.selfStop, cr.parent = watchSelfStop(), parent
	defer cr.selfStop.stop()
	ctx, cancel := cr.deadline(parent)
	defer cancel()
	timedOut := func() bool { return ctx.Err() != nil && parent.Err() == nil }
	defer cr.close(timedOut)

	failed := func(err error) (Result, error) {
		res := cr.fail(err, timedOut())
		if timedOut() {
			// The case's timeout passed, perhaps while its peer was
			// starting: the case failed on its timeout, which the reason
			// names, not on a peer that could not start. A remote
			// server that never answered stays marked, for Run to stop.
			if errors.Is(err, errServerSilent) {
				err = &reasonError{res.Reason, errServerSilent}
			} else {
				err = errors.New(res.Reason)
			}
		}
		if cr.stopped() && !errors.Is(err, ErrSelfStopped) {
			// Whatever failed may have failed because this process did
			// not run (a peer's wait for it ran out, say): the case runs
			// again (RunCase).
			return res, &reasonError{res.Reason, errors.Join(err, ErrSelfStopped)}
		}
		return res, err
	}
	phases := []func(context.Context) error{cr.startPeer, cr.serve, cr.run, cr.collect}
	if cs.Transport.Source() == SourceServe {
		// A stand-alone server of this case, then measured as a remote
		// peer is (see source.go).
		skip, err := cr.startServer(ctx)
		if skip != "" {
			return cr.skip(skip), nil
		}
		if err != nil {
			return failed(err)
		}
	}
	if cr.remote != nil {
		// The peer is already running: dial it instead of listening,
		// starting a peer and accepting (see remote.go).
		phases = []func(context.Context) error{cr.connectRemote, cr.run, cr.collect}
	} else {
		skip, err := cr.listen(ctx)
		if skip != "" {
			return cr.skip(skip), nil
		}
		if err != nil {
			return failed(err)
		}
	}
	for _, phase := range phases {
		if err := phase(ctx); err != nil {
			if errors.Is(err, peer.ErrNotApplicable) {
				// The peer's server model cannot serve this transport's
				// connections (shared memory has no descriptor).
				return cr.skip(cr.name + ": " + err.Error()), nil
			}
			return failed(err)
		}
	}
	if cr.stopped() {
		return failed(ErrSelfStopped)
	}
	if cr.sampler != nil && cr.sampler.peerStopped.Load() {
		return failed(ErrPeerStopped)
	}
	return cr.res, nil
}

// newCaseRun returns the state of case cs in repeat rep, its record filled
// with the case's identity and status OK.
func (r *Runner) newCaseRun(cs CaseSpec, rep int) *caseRun {
	fc := r.opts.Frame
	if fc.Mode == frame.Fixed {
		fc.Size = cs.Size
	}
	cr := &caseRun{
		r: r, spec: cs, opts: &r.opts, w: workloadByName(cs.Workload), name: cs.Transport.Label(), frame: fc,
		onMeasure: r.onMeasure,
		res: Result{
			Type: KindResult, Workload: cs.Workload, Transport: cs.Transport.Transport.Name(), Variant: cs.Transport.Variant(),
			PeerModel: cs.Transport.Model(), PeerSource: cs.Transport.Source(), Size: cs.Size, Conns: cs.Conns, Rate: cs.Rate, Placement: cs.Placement.Name,
			Repeat: rep, Status: StatusOK,
		},
	}
	if r.opts.Count > 0 {
		cr.limit = (r.opts.Count + int64(cs.Conns) - 1) / int64(cs.Conns)
		cr.limitRest = r.opts.Count % int64(cs.Conns)
	}
	if rm := r.opts.Remote; rm != nil {
		cr.remote = &remoteCase{tr: cs.Transport, addr: rm.Address, echo: rm.Echo}
		cr.res.PeerCPUUnknown = rm.Echo
		cr.res.PeerModel, cr.res.PeerSource = "", SourceConnect
	}
	return cr
}

// limitOf returns how many messages the loop of connection conn measures
// in count mode, 0 in duration mode: Options.Count split across the
// case's connections, the first Count % Conns of them one more than the
// others, so that the case measures exactly Count.
func (cr *caseRun) limitOf(conn uint32) int64 {
	if cr.limitRest == 0 || int64(conn) < cr.limitRest {
		return cr.limit
	}
	return cr.limit - 1
}

// skip returns the case's record as skipped, for why.
func (cr *caseRun) skip(why string) Result {
	cr.res.Status, cr.res.Reason = StatusSkipped, why
	return cr.res
}

// fail returns the case's record as failed because of err, without any
// numbers; timedOut says the case ran out of Options.CaseTimeout.
func (cr *caseRun) fail(err error, timedOut bool) Result {
	res := Result{
		Type: cr.res.Type, Workload: cr.res.Workload, Transport: cr.res.Transport, Variant: cr.res.Variant,
		PeerModel: cr.res.PeerModel, PeerSource: cr.res.PeerSource, Size: cr.res.Size, Conns: cr.res.Conns, Rate: cr.res.Rate, Placement: cr.res.Placement, Repeat: cr.res.Repeat,
		Options: cr.res.Options, PeerCPUUnknown: cr.res.PeerCPUUnknown, Status: StatusFailed,
	}
	// A transport's errors start with its name, which cr.name begins
	// with too: "unix: dial ...", not "unix: unix: dial ...".
	text := strings.TrimPrefix(err.Error(), cr.res.Transport+": ")
	res.Reason = cr.name + ": " + text
	stopped := cr.stopped()
	const stopWords = "this process was stopped (SIGSTOP or Ctrl-Z) and continued during the case"
	switch {
	case timedOut:
		bound := "case did not finish within " + cr.opts.CaseTimeout.String()
		if b := cr.fired.Load(); b != nil {
			bound = *b
		}
		why := "peer stuck or too slow"
		if stopped {
			// The time ran out while the bench itself did not run.
			why = stopWords
		}
		res.Reason = cr.name + ": timeout: " + bound + " (" + why + "): " + text
	case stopped && !errors.Is(err, ErrSelfStopped):
		res.Reason += " (" + stopWords + ")"
	}
	return res
}

// listen is the first phase: the case's listener (for the address peer
// source, one dialed by address; see source.go) and, for the connect
// workload, the handoff socket. It returns a reason to skip the case when
// the transport is unavailable here.
func (cr *caseRun) listen(ctx context.Context) (skip string, err error) {
	if cr.ln, skip, err = cr.listenInherit(ctx); skip != "" || err != nil {
		return skip, err
	}
	if cr.spec.Transport.Source() == SourceAddress {
		if skip, err = cr.listenByAddress(ctx); skip != "" || err != nil {
			return skip, err
		}
	}
	cr.ep = cr.ln.Endpoint()
	cr.peerEP = cr.ep
	if cr.r.onListen != nil {
		cr.r.onListen(cr.ep)
	}
	// The peer proves every connection it dials with a secret of this
	// case, handed to it over its control channel: a TCP listener can be
	// reached by any process on the machine, and one that connected
	// before the peer would otherwise be measured in its place.
	if cr.secret, err = peer.NewSecret(); err != nil {
		return "", err
	}
	cr.admit = cr.r.admitTimeout
	if cr.admit == 0 {
		cr.admit = peer.AdmitTimeout
	}
	if cr.w.connect {
		// The connect workload hands every exchange's endpoint to the peer
		// over a handoff socket; transports whose endpoints carry files
		// that are the channel (pipe, shm-lock; not tcp-veth, whose file
		// names a namespace) get a fresh listener, so a fresh channel, for
		// every exchange.
		if cr.handoff, err = newHandoff(); err != nil {
			return "", err
		}
		cr.peerEP = transports.Endpoint{Transport: cr.ep.Transport, Files: []*os.File{cr.handoff.peer}}
		cr.curLn = cr.ln
	}
	return "", nil
}

// startPeer is the second phase: it starts the peer process with the
// endpoint's files (or the handoff socket) on the case's CPUs and waits
// for its handshake. A start that fails is tried once more (see
// startProc); the error of the last attempt wraps ErrPeerStart.
func (cr *caseRun) startPeer(ctx context.Context) error {
	spec := cr.opts.Peer
	spec.Attach = cr.peerEP.AttachTo
	spec.CPUs = cr.spec.Placement.Peer
	p, err := cr.startProc(ctx, spec)
	if err != nil {
		return err
	}
	cr.peer, cr.client = p, peer.NewClient(p)
	if cr.handoff != nil {
		cr.handoff.peer.Close() // the peer has its copy
		cr.handoff.peer = nil
	}
	if cr.r.onPeerStart != nil {
		cr.r.onPeerStart(cr.peer.PID())
	}
	return nil
}

// startProc starts the process spec describes, the case's peer or
// stand-alone server, and waits for its handshake. A start that fails is
// tried once more, unless ctx ended or this process may start no peer
// (peer.ErrStartFromPeer); the error of the last attempt wraps
// ErrPeerStart.
func (cr *caseRun) startProc(ctx context.Context, spec proc.Spec) (*proc.Peer, error) {
	var err error
	for attempt := 1; attempt <= peerStartAttempts; attempt++ {
		if cr.r.beforePeerStart != nil {
			cr.r.beforePeerStart()
		}
		var p *proc.Peer
		if p, err = proc.Start(ctx, spec); err == nil {
			cr.r.peersStarted++
			return p, nil
		}
		if ctx.Err() != nil || errors.Is(err, proc.ErrStartFromPeer) {
			return nil, err // a second try would end the same
		}
	}
	return nil, fmt.Errorf("%w (tried %d times)", err, peerStartAttempts)
}

// serve is the third phase: it pins the bench process to the case's CPUs,
// sends the peer its serve job and accepts the connections it dials (none
// for the connect workload, which connects per exchange), each only once it
// has proved itself with the case's secret, reading back the transport
// options in effect.
func (cr *caseRun) serve(ctx context.Context) error {
	if cpus := cr.spec.Placement.Bench; len(cpus) > 0 {
		restore, err := pinSelf(cpus)
		if err != nil {
			return err
		}
		cr.unpinSelf = restore
	}
	job := peer.Job{Op: peer.OpServe, Endpoint: cr.ep, Conns: cr.spec.Conns, Role: cr.w.role, Frame: peer.FrameSpecOf(cr.frame), Secret: cr.secret, Model: cr.spec.Transport.Model()}
	if cr.handoff != nil {
		job.Endpoint = cr.peerEP
	}
	if cr.r.peerJob != nil {
		cr.r.peerJob(&job)
	}
	if err := cr.client.Serve(ctx, job); err != nil {
		return err // the client's errors start with "peer: "
	}
	if cr.handoff != nil {
		return nil
	}
	var err error
	cr.conns, err = acceptN(ctx, peer.Guard(cr.ln, cr.secret, cr.admit, nil), cr.spec.Conns)
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	for _, c := range cr.conns {
		if or, ok := c.(transports.OptionReporter); ok {
			cr.res.Options = or.EffectiveOptions()
			break
		}
	}
	return nil
}

// run is the fourth phase: the workload's loops, through the warm-up and
// the measured interval (see clock), under a watchdog that fails every
// blocked call once the case times out or its peer exits, so that no loop
// can hang. A failure is explained (see explain). On success the bench's
// ends of the connections are closed, which ends the peer's loops.
func (cr *caseRun) run(ctx context.Context) error {
	peerPID, exited := 0, (<-chan struct{})(nil) // a remote peer: no process to watch
	switch {
	case cr.peer != nil:
		peerPID, exited = cr.peer.PID(), cr.peer.Exited()
	case cr.server != nil: // the case's own stand-alone server
		peerPID, exited = cr.server.PID(), cr.server.Exited()
	}
	cr.sampler = newCPUSampler(os.Getpid(), peerPID)
	cr.sampler.disabled = cr.r.noCPUSampler
	stopWatch := make(chan struct{})
	var watchWG sync.WaitGroup
	if cr.r.stallAfter > 0 {
		watchWG.Add(1)
		go func() {
			defer watchWG.Done()
			cr.watchStall(ctx, stopWatch)
		}()
	}
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		select {
		case <-ctx.Done():
		case <-exited:
		case <-stopWatch:
			return
		}
		cr.stop.Store(true)
		for _, c := range cr.conns {
			c.SetDeadline(time.Unix(1, 0))
		}
		cr.interrupt()
	}()
	cr.probeLine(&cr.res.LineRTTNS)
	m, err := cr.w.run(ctx, cr)
	if err == nil {
		cr.probeLine(&cr.res.LineRTTEndNS)
	}
	close(stopWatch)
	watchWG.Wait()
	cr.sampler.stop()
	if err != nil {
		return cr.explain(ctx, err)
	}
	cr.m = m
	cr.closeConns()
	if cr.handoff != nil {
		cr.handoff.close() // EOF on the handoff socket ends the peer's connect loop
	}
	if cr.res.Options == nil {
		cr.res.Options = cr.options // the connect workload's
	}
	return nil
}

// lineProbeRounds and lineProbeLimit size the probe of the cache line
// round trip (sysinfo.LineRoundTrip) that a case runs before its warm-up
// and after its measured interval: a few milliseconds, given up after the
// limit.
const (
	lineProbeRounds = 4000
	lineProbeLimit  = 200 * time.Millisecond
)

// probeLine records in *ns the round trip of a cache line between the
// two CPUs the case's messages cross (ProbeLine), and names them in the
// record; it records nothing for a peer at an address given by the user
// (Options.Remote), whose CPUs need not be this machine's. The serve
// source's own server is this machine's, and is probed.
func (cr *caseRun) probeLine(ns *int64) {
	if cr.remote != nil && cr.server == nil {
		return
	}
	d, cpus := ProbeLine(cr.spec.Placement)
	if d > 0 {
		*ns, cr.res.LineRTTCPUs = d.Nanoseconds(), cpus
	}
}

// ProbeLine measures the round trip of a cache line between two CPUs
// that messages may cross under placement pl (sysinfo.LineRoundTrip, a few
// milliseconds), and returns it with those CPUs as a list ("0,1"): for a
// pinned placement, the first bench CPU and the first peer CPU other than
// it (or, when the peer has no other, the first bench CPU other than the
// peer's); for an unpinned one the first two CPUs this process could use
// when it started. It returns 0 where no message crosses CPUs (both ends
// on one CPU), on a machine with one CPU, or when the probe failed (a CPU
// busy for longer than its limit): a record then lacks the figure, and is
// measured all the same.
func ProbeLine(pl Placement) (time.Duration, string) {
	a, b, ok := lineCPUs(pl)
	if !ok {
		return 0, ""
	}
	if runtime.GOMAXPROCS(0) < 2 {
		// A pinned bench runs with one P (pinSelf), on which the
		// probe's two spinning goroutines would take turns.
		defer sysinfo.SetGOMAXPROCS(2)()
	}
	d, err := sysinfo.LineRoundTrip(a, b, lineProbeRounds, lineProbeLimit)
	if err != nil {
		return 0, ""
	}
	return d, sysinfo.FormatCPUList([]int{a, b})
}

// lineCPUs returns the two CPUs ProbeLine probes under pl, and false
// when there are none.
func lineCPUs(pl Placement) (a, b int, ok bool) {
	if len(pl.Bench) == 0 || len(pl.Peer) == 0 {
		allowed := firstCPUs()
		if len(allowed) < 2 {
			return 0, 0, false
		}
		return allowed[0], allowed[1], true
	}
	for _, p := range pl.Peer {
		if p != pl.Bench[0] {
			return pl.Bench[0], p, true
		}
	}
	for _, c := range pl.Bench {
		if c != pl.Peer[0] {
			return c, pl.Peer[0], true
		}
	}
	return 0, 0, false
}

// firstCPUs returns the first two CPUs this process could use when it
// started (before any case pinned it), or fewer when it has fewer.
var firstCPUs = sync.OnceValue(func() []int {
	allowed, err := sysinfo.Affinity(os.Getpid())
	if err != nil || len(allowed) < 2 {
		return nil
	}
	return allowed[:2]
})

// explain words a failure of the workload's loops with what the peer
// knows of it. The peer's side of a failure is often its cause (a payload
// it rejected, corruption it detected) while this side saw only EOF or a
// broken pipe, so the bench's ends are closed, which ends the peer's loops,
// and the peer's final report, its done reply with every connection's
// error, is awaited for up to peerExitWait. A peer that died instead
// (its connections report EOF or a reset a moment before its exit is
// reaped) is named as dead, with the last line of its log. After a timeout
// or an interrupt nothing is awaited: a stuck peer will not answer. A
// remote peer is asked the same way; a foreign echo server cannot be.
func (cr *caseRun) explain(ctx context.Context, err error) error {
	if ctx.Err() != nil || cr.client == nil {
		return err
	}
	cr.closeConns()
	if cr.handoff != nil {
		cr.handoff.close()
	}
	wctx, cancel := context.WithTimeout(ctx, peerExitWait)
	defer cancel()
	if cr.remote != nil {
		done, derr := cr.remoteDone(wctx)
		if cr.server != nil && derr != nil {
			// The case's own server (-peer-source serve): a server that
			// died is named as a peer that died is.
			select {
			case <-cr.server.Exited():
				return fmt.Errorf("server process died: %w (server log: %s)", err, strings.TrimSpace(lastLine(cr.server.Logs())))
			case <-wctx.Done():
			}
		}
		if derr == nil && done.Error != "" {
			return fmt.Errorf("%w; the server reports: %s", err, done.Error)
		}
		return err
	}
	done, derr := cr.client.Done(wctx)
	exited := false
	select {
	case <-cr.peer.Exited():
		exited = true
	default:
	}
	if exited || errors.Is(derr, proc.ErrPeerExited) {
		return fmt.Errorf("peer process died: %w (peer log: %s)", err, strings.TrimSpace(lastLine(cr.peer.Logs())))
	}
	if derr == nil && done.Error != "" {
		return fmt.Errorf("%w; the peer reports: %s", err, done.Error)
	}
	return err
}

// collect is the fifth phase: it waits for the peer's report that its
// side ended cleanly and fills the record's numbers from the measurement.
// A case whose messages failed their payload check, or in which no
// message completed, is recorded as failed (with its numbers).
func (cr *caseRun) collect(ctx context.Context) error {
	if cr.remote == nil {
		done, err := cr.client.Done(ctx)
		if err != nil {
			return fmt.Errorf("peer did not finish: %w", err)
		}
		if done.Error != "" {
			return fmt.Errorf("peer: %s", done.Error)
		}
	} else if cr.client != nil {
		done, err := cr.remoteDone(ctx)
		if err != nil {
			return fmt.Errorf("server did not finish: %w", err)
		}
		if done.Error != "" {
			return fmt.Errorf("server: %s", done.Error)
		}
	}
	res, m := &cr.res, &cr.m
	end := cr.tEnd
	if !m.end.IsZero() {
		end = m.end
	}
	res.DurationNS = end.Sub(cr.tStart).Nanoseconds()
	res.Messages, res.Bytes, res.Errors = m.messages, m.bytes, m.errors
	res.Achieved = m.achieved
	if m.hist != nil {
		enc, err := m.hist.Encode()
		if err != nil {
			return fmt.Errorf("encoding histogram: %w", err)
		}
		res.LatencyKind, res.Hist = LatencyRoundTrip, enc
	}
	res.BenchUserNS = int64(cr.cpuEnd[0].User - cr.cpuStart[0].User)
	res.BenchSysNS = int64(cr.cpuEnd[0].System - cr.cpuStart[0].System)
	var known bool
	res.PeerUserNS, res.PeerSysNS, known = cpuSpent(cr.cpuStart[1], cr.cpuEnd[1])
	res.PeerCPUUnknown = res.PeerCPUUnknown || !known
	res.BenchCPUs, res.PeerCPUs, res.CPUsUnit = cr.sampler.result()
	if n := cr.sampled.Load(); n > 1 {
		res.SampleEvery = int(n)
	}
	switch {
	case res.Errors > 0:
		res.Status = StatusFailed
		res.Reason = fmt.Sprintf("%s: %d messages failed their payload check", cr.name, res.Errors)
	case res.Messages == 0:
		res.Status = StatusFailed
		res.Reason = cr.name + ": no message completed in the measured interval; use a longer -d"
	}
	return nil
}

// close is the last phase, run whatever happened before: it closes the
// connections, restores the bench process's CPU affinity, ends the peer
// (killing it at once when the case timed out: a stuck peer would only
// add proc.CloseGrace), and closes the handoff socket and the listener; for
// the serve source it stops the case's server, and it removes the private
// directory of a path the case chose.
func (cr *caseRun) close(timedOut func() bool) {
	cr.closeConns()
	if cr.unpinSelf != nil {
		cr.unpinSelf()
	}
	if cr.peer != nil {
		if timedOut() {
			_ = cr.peer.Kill()
		}
		cr.peer.Close()
	}
	if cr.handoff != nil {
		cr.handoff.close()
	}
	if cr.ln != nil {
		cr.ln.Close()
	}
	if cr.remote != nil {
		cr.remote.close(cr.client)
	}
	cr.stopServer(timedOut())
	if cr.dir != "" {
		os.RemoveAll(cr.dir)
	}
}

// closeConns closes the bench's ends of the case's connections.
func (cr *caseRun) closeConns() {
	for _, c := range cr.conns {
		c.Close()
	}
	cr.conns = nil
}

// acceptN accepts n connections, giving up when ctx ends.
func acceptN(ctx context.Context, ln net.Listener, n int) ([]net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, n)
	go func() {
		for i := 0; i < n; i++ {
			c, err := ln.Accept()
			ch <- result{c, err}
			if err != nil {
				return
			}
		}
	}()
	var conns []net.Conn
	for len(conns) < n {
		select {
		case r := <-ch:
			if r.err != nil {
				return conns, r.err
			}
			conns = append(conns, r.c)
		case <-ctx.Done():
			ln.Close() // unblocks Accept; the goroutine then exits
			for {      // collect a connection accepted in the race
				select {
				case r := <-ch:
					if r.c != nil {
						conns = append(conns, r.c)
					}
					if r.err != nil {
						return conns, ctx.Err()
					}
				case <-time.After(time.Second):
					return conns, ctx.Err()
				}
			}
		}
	}
	return conns, nil
}

// pinSelf pins every thread of this process to cpus, with GOMAXPROCS to
// match, and returns a function that restores the previous affinity.
func pinSelf(cpus []int) (func(), error) {
	prev, err := sysinfo.Affinity(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("reading CPU affinity: %w", err)
	}
	if err := sysinfo.SetAffinity(os.Getpid(), cpus); err != nil {
		return nil, fmt.Errorf("pinning the bench process to CPUs %v: %w", cpus, err)
	}
	procs := sysinfo.SetGOMAXPROCS(len(cpus)) // at once, not when the runtime next looks
	return func() { _ = sysinfo.SetAffinity(os.Getpid(), prev); procs() }, nil
}

// lastLine returns the last line of s, without its newline.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
