package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
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

// ErrPeerStart is returned by Run (wrapped) when a peer process could not be
// started at all, which usually means the executable or its environment is
// broken rather than a transport; the CLI maps it to its own exit code. It
// is proc.ErrPeerStart, so the message names it once.
var ErrPeerStart = proc.ErrPeerStart

// ErrCasesFailed is returned by Run (wrapped) when the run completed but at
// least one case failed; the failed results are in the raw records.
var ErrCasesFailed = errors.New("cases failed")

// CaseSpec is one planned case: a workload over one transport at one size,
// connection count and placement. Repeats of it share the spec.
type CaseSpec struct {
	Workload  string
	Transport TransportSpec
	Size      int
	Conns     int
	Rate      int
	Placement Placement
}

// Label is a short human description of the case for progress displays.
func (c CaseSpec) Label() string {
	s := c.Workload + " " + c.Transport.Label() + " " + FormatSize(c.Size)
	if c.Conns > 1 {
		s += " ×" + strconv.Itoa(c.Conns)
	}
	if c.Placement.Name != "unpinned" {
		s += " " + c.Placement.Name
	}
	return s
}

// Runner runs a benchmark plan. Its counters can be read concurrently
// (Progress) while Run is in progress.
type Runner struct {
	opts  Options
	plan  []CaseSpec
	done  atomic.Int64
	label atomic.Value // string

	// onPeerStart, when set (by tests), is called with the peer's PID as
	// soon as the peer of a case has started; faults tests use it to kill
	// or stop the peer at a chosen moment.
	onPeerStart func(pid int)
	// onMeasure, when set (by benchmarks), is called with true as the
	// measured interval begins and false as it ends, so a testing.B can
	// time (and count the allocations of) only the measured loops.
	onMeasure func(start bool)
	// noCPUSampler, when set (by allocation tests), leaves out the sampler
	// of where the processes run: it reads /proc, which allocates at its
	// own pace (about 20 samples/s), independent of the message rate.
	noCPUSampler bool
}

// NewRunner validates opts, fills in defaults and plans the cases.
func NewRunner(opts Options) (*Runner, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Runner{opts: o}
	r.plan = r.makePlan()
	r.label.Store("")
	return r, nil
}

// Options returns the effective options (defaults filled in).
func (r *Runner) Options() Options { return r.opts }

// Plan returns the cases of one repeat, in the order they run.
func (r *Runner) Plan() []CaseSpec { return r.plan }

// Total is the number of case runs: the plan times the repeats.
func (r *Runner) Total() int { return len(r.plan) * r.opts.Repeats }

// Progress returns how many case runs have finished, the total, and the
// label of the case in progress. It is safe to call from any goroutine.
func (r *Runner) Progress() (done, total int, label string) {
	return int(r.done.Load()), r.Total(), r.label.Load().(string)
}

func (r *Runner) makePlan() []CaseSpec {
	var plan []CaseSpec
	for _, pl := range r.opts.Placements {
		for _, wn := range r.opts.Workloads {
			w := workloadByName(wn)
			sizes := r.opts.Sizes
			if w.smallOnly {
				sizes = sizes[:1]
			}
			conns := []int{1}
			if w.multiConn {
				conns = r.opts.FaninConns
			}
			for _, size := range sizes {
				for _, c := range conns {
					for _, tr := range r.opts.Transports {
						cs := CaseSpec{Workload: wn, Transport: tr, Size: size, Conns: c, Placement: pl}
						if wn == "rate" {
							cs.Rate = r.opts.Rate
						}
						plan = append(plan, cs)
					}
				}
			}
		}
	}
	return plan
}

// Run executes every case Repeats times, interleaved (the whole plan once,
// then again), writing the header and then one Result per case run to out
// as JSON Lines as soon as each is known, so an interrupted run keeps what
// it measured. It returns the results. A cancelled ctx stops the run after
// the case in progress is cleaned up; the error then wraps ctx.Err().
func (r *Runner) Run(ctx context.Context, hdr Header, out io.Writer) ([]Result, error) {
	enc := json.NewEncoder(out)
	hdr.Type = KindHeader
	hdr.Version = RecordVersion
	if hdr.Options == nil {
		hdr.Options = r.opts.Describe()
	}
	if err := enc.Encode(&hdr); err != nil {
		return nil, fmt.Errorf("writing header: %w", err)
	}
	var results []Result
	failed := 0
	for rep := 0; rep < r.opts.Repeats; rep++ {
		for _, cs := range r.plan {
			if err := ctx.Err(); err != nil {
				return results, fmt.Errorf("run interrupted after %d of %d cases: %w", r.done.Load(), r.Total(), err)
			}
			r.label.Store(cs.Label() + " (repeat " + strconv.Itoa(rep+1) + "/" + strconv.Itoa(r.opts.Repeats) + ")")
			res, err := r.runCase(ctx, cs, rep)
			if err != nil && errors.Is(err, ErrPeerStart) {
				return results, err
			}
			if res.Status == StatusFailed {
				failed++
			}
			results = append(results, res)
			if err := enc.Encode(&res); err != nil {
				return results, fmt.Errorf("writing result: %w", err)
			}
			r.done.Add(1)
		}
	}
	r.label.Store("")
	if failed > 0 {
		return results, fmt.Errorf("%d of %d case runs failed (see the raw records): %w", failed, len(results), ErrCasesFailed)
	}
	return results, nil
}

// RunCase runs a single case once and returns its result. It is what Run
// does for every planned case; tests and callers that want one number use
// it directly.
func (r *Runner) RunCase(ctx context.Context, cs CaseSpec, repeat int) (Result, error) {
	return r.runCase(ctx, cs, repeat)
}

// caseRun is the state of one case in progress, shared by the runner and
// the workload functions.
type caseRun struct {
	spec      CaseSpec
	opts      *Options
	frame     frame.Config // the run's framing; fixed mode sized for the case
	conns     []net.Conn
	client    *peer.Client
	peerPID   int
	measure   atomic.Bool // loops record while true
	stop      atomic.Bool // loops end when true
	limit     int64       // messages each loop measures in count mode; 0: run for Duration
	onMeasure func(start bool)
	tStart    time.Time
	tEnd      time.Time
	cpuStart  [2]sysinfo.CPUTime // bench, peer
	cpuEnd    [2]sysinfo.CPUTime
	sampler   *cpuSampler

	// The connect workload's state: the listener of socket transports
	// (reused for every exchange) or of the current exchange (fresh for
	// transports whose endpoints carry files), the handoff socket, and the
	// connection in progress, which the watchdog interrupts.
	ln      transports.Listener
	handoff *handoff
	curMu   sync.Mutex
	cur     net.Conn
	options map[string]string // effective options of the last exchange

	// sampled is the largest sampling interval any loop chose (see
	// sampleEvery); 0 or 1: every message was timed.
	sampled atomic.Int64
}

// noteSampling records that a loop times one exchange in every.
func (cr *caseRun) noteSampling(every uint64) {
	for {
		cur := cr.sampled.Load()
		if int64(every) <= cur || cr.sampled.CompareAndSwap(cur, int64(every)) {
			return
		}
	}
}

// setCurrent records the connection (and listener) of the exchange in
// progress, so the watchdog can interrupt it.
func (cr *caseRun) setCurrent(c net.Conn, ln transports.Listener) {
	cr.curMu.Lock()
	cr.cur = c
	if ln != nil {
		cr.ln = ln
	}
	cr.curMu.Unlock()
}

// interrupt fails whatever a connect exchange is blocked in.
func (cr *caseRun) interrupt() {
	cr.curMu.Lock()
	defer cr.curMu.Unlock()
	if cr.cur != nil {
		cr.cur.SetDeadline(time.Unix(1, 0))
	}
	if cr.ln != nil && cr.handoff != nil {
		cr.ln.Close()
	}
	if cr.handoff != nil {
		cr.handoff.shutdown()
	}
}

// peerExitWait is how long a failed case waits for its peer's exit to be
// reaped before it words the failure (see runCase).
const peerExitWait = time.Second

// measurement is what a workload function returns.
type measurement struct {
	messages, bytes, errors int64
	hist                    *hist.Histogram // nil when the workload records no latency
	achieved                float64
	end                     time.Time // zero: use the stop time
}

func (r *Runner) runCase(parent context.Context, cs CaseSpec, rep int) (res Result, err error) {
	res = Result{
		Type: KindResult, Workload: cs.Workload, Transport: cs.Transport.Transport.Name(), Variant: cs.Transport.Variant(),
		Size: cs.Size, Conns: cs.Conns, Rate: cs.Rate, Placement: cs.Placement.Name,
		Repeat: rep, Status: StatusOK,
	}
	w := workloadByName(cs.Workload)
	name := cs.Transport.Label()
	if why := w.cannotRun(cs.Transport.Transport.Name()); why != "" {
		res.Status, res.Reason = StatusSkipped, why
		return res, nil
	}
	ctx, cancel := context.WithTimeout(parent, r.opts.CaseTimeout)
	defer cancel()
	fail := func(err error) (Result, error) {
		res.Status = StatusFailed
		res.Reason = name + ": " + err.Error()
		if ctx.Err() != nil && parent.Err() == nil {
			res.Reason = name + ": timeout: case did not finish within " + r.opts.CaseTimeout.String() + " (peer stuck or too slow): " + err.Error()
		}
		return res, err
	}

	ln, err := cs.Transport.Transport.Listen(ctx, transports.Config{Conns: cs.Conns, BufferSize: r.opts.BufferSize, Options: cs.Transport.Options})
	if err != nil {
		if errors.Is(err, transports.ErrUnavailable) {
			res.Status, res.Reason = StatusSkipped, err.Error()
			return res, nil
		}
		return fail(fmt.Errorf("listen: %w", err))
	}
	defer func() { ln.Close() }()
	ep := ln.Endpoint()
	peerEP := ep
	var ho *handoff
	if w.connect {
		// The connect workload hands every exchange's endpoint to the peer
		// over a handoff socket; transports whose endpoints carry files
		// (pipe, shm-lock) get a fresh listener, so a fresh channel, for
		// every exchange.
		if ho, err = newHandoff(); err != nil {
			return fail(err)
		}
		defer ho.close()
		peerEP = transports.Endpoint{Transport: ep.Transport, Files: []*os.File{ho.peer}}
	}

	spec := r.opts.Peer
	spec.Attach = peerEP.AttachTo
	spec.CPUs = cs.Placement.Peer
	p, err := proc.Start(ctx, spec)
	if err != nil {
		if ctx.Err() != nil && parent.Err() == nil {
			// The case timeout passed while the peer was starting: the
			// case failed on its timeout, which fail names; the run goes
			// on (not ErrPeerStart).
			res, _ = fail(err)
			return res, errors.New(res.Reason)
		}
		res, _ = fail(err)
		return res, fmt.Errorf("%s: %w", cs.Label(), err) // err wraps ErrPeerStart
	}
	defer func() {
		if ctx.Err() != nil && parent.Err() == nil {
			// Timed out: the peer is stuck (stopped, or spinning), and
			// waiting for it to exit on its own would only add
			// proc.CloseGrace.
			_ = p.Kill()
		}
		p.Close()
	}()
	if ho != nil {
		ho.peer.Close() // the peer has its copy
		ho.peer = nil
	}
	if r.onPeerStart != nil {
		r.onPeerStart(p.PID())
	}

	if len(cs.Placement.Bench) > 0 {
		restore, err := pinSelf(cs.Placement.Bench)
		if err != nil {
			return fail(err)
		}
		defer restore()
	}

	client := peer.NewClient(p)
	fc := r.opts.Frame
	if fc.Mode == frame.Fixed {
		fc.Size = cs.Size
	}
	job := peer.Job{Op: peer.OpServe, Endpoint: ep, Conns: cs.Conns, Role: w.role, Frame: peer.FrameSpecOf(fc)}
	if ho != nil {
		job.Endpoint = peerEP
	}
	if err := client.Serve(ctx, job); err != nil {
		return fail(err) // the client's errors start with "peer: "
	}
	var conns []net.Conn
	if ho == nil {
		conns, err = acceptN(ctx, ln, cs.Conns)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return fail(fmt.Errorf("accept: %w", err))
	}
	for _, c := range conns {
		if or, ok := c.(transports.OptionReporter); ok {
			res.Options = or.EffectiveOptions()
			break
		}
	}

	cr := &caseRun{spec: cs, opts: &r.opts, frame: fc, conns: conns, client: client, peerPID: p.PID(), onMeasure: r.onMeasure,
		ln: ln, handoff: ho}
	if r.opts.Count > 0 {
		cr.limit = (r.opts.Count + int64(cs.Conns) - 1) / int64(cs.Conns)
	}
	cr.sampler = newCPUSampler(os.Getpid(), p.PID())
	cr.sampler.disabled = r.noCPUSampler

	// Watchdog: a case that outlives its timeout, or whose peer exits,
	// has every blocked call on its connections failed by a deadline in
	// the past, so no workload loop can hang.
	stopWatch := make(chan struct{})
	var watchWG sync.WaitGroup
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		select {
		case <-ctx.Done():
		case <-p.Exited():
		case <-stopWatch:
			return
		}
		cr.stop.Store(true)
		for _, c := range conns {
			c.SetDeadline(time.Unix(1, 0))
		}
		cr.interrupt()
	}()
	m, werr := w.run(ctx, cr)
	close(stopWatch)
	watchWG.Wait()
	cr.sampler.stop()
	if werr != nil {
		// A killed peer's connections report EOF or a reset a moment
		// before its exit is reaped: give the exit that moment, so the
		// reason says the peer died rather than only "EOF". (Not after a
		// timeout: a stuck peer will not exit by itself.)
		wait := peerExitWait
		if ctx.Err() != nil {
			wait = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-p.Exited():
			werr = fmt.Errorf("peer process died: %w (peer log: %s)", werr, strings.TrimSpace(lastLine(p.Logs())))
		case <-t.C:
		}
		t.Stop()
		return fail(werr)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if ho != nil {
		ho.close() // EOF on the handoff socket ends the peer's connect loop
		if res.Options == nil {
			res.Options = cr.options
		}
	}
	done, err := client.Done(ctx)
	if err != nil {
		return fail(fmt.Errorf("peer did not finish: %w", err))
	}
	if done.Error != "" {
		return fail(fmt.Errorf("peer: %s", done.Error))
	}

	end := cr.tEnd
	if !m.end.IsZero() {
		end = m.end
	}
	res.DurationNS = end.Sub(cr.tStart).Nanoseconds()
	res.Messages, res.Bytes, res.Errors = m.messages, m.bytes, m.errors
	res.Achieved = m.achieved
	if m.hist != nil {
		res.LatencyKind = LatencyRoundTrip
		enc, err := m.hist.Encode()
		if err != nil {
			return fail(fmt.Errorf("encoding histogram: %w", err))
		}
		res.Hist = enc
	}
	res.BenchUserNS = int64(cr.cpuEnd[0].User - cr.cpuStart[0].User)
	res.BenchSysNS = int64(cr.cpuEnd[0].System - cr.cpuStart[0].System)
	res.PeerUserNS = int64(cr.cpuEnd[1].User - cr.cpuStart[1].User)
	res.PeerSysNS = int64(cr.cpuEnd[1].System - cr.cpuStart[1].System)
	res.BenchCPUs, res.PeerCPUs = cr.sampler.result()
	if n := cr.sampled.Load(); n > 1 {
		res.SampleEvery = int(n)
	}
	if res.Errors > 0 {
		res.Status = StatusFailed
		res.Reason = fmt.Sprintf("%s: %d messages failed their payload check", name, res.Errors)
	}
	if res.Messages == 0 && res.Status == StatusOK {
		res.Status = StatusFailed
		res.Reason = name + ": no message completed in the measured interval; use a longer --duration"
	}
	return res, nil
}

// cpuTimes reads the CPU time so far of the bench process and the peer.
func (cr *caseRun) cpuTimes(ctx context.Context) ([2]sysinfo.CPUTime, error) {
	c0, err := sysinfo.SelfCPUTime()
	if err != nil {
		return [2]sysinfo.CPUTime{}, err
	}
	c1, err := cr.client.CPU(ctx)
	if err != nil {
		return [2]sysinfo.CPUTime{}, fmt.Errorf("reading peer CPU time: %w", err)
	}
	return [2]sysinfo.CPUTime{c0, c1}, nil
}

// beginMeasure marks the end of the warm-up: CPU times of both processes
// are read and the loops start recording.
func (cr *caseRun) beginMeasure(ctx context.Context) error {
	t, err := cr.cpuTimes(ctx)
	if err != nil {
		return err
	}
	cr.cpuStart = t
	cr.sampler.start()
	if cr.onMeasure != nil {
		cr.onMeasure(true)
	}
	cr.tStart = time.Now()
	cr.measure.Store(true)
	return nil
}

// measured marks the end of the measured interval as now, unless the
// clock already did.
func (cr *caseRun) measured() {
	if cr.tEnd.IsZero() {
		cr.tEnd = time.Now()
	}
	if cr.onMeasure != nil {
		cr.onMeasure(false)
	}
}

// endMeasure reads CPU times at the end of the measured interval.
func (cr *caseRun) endMeasure(ctx context.Context) error {
	t, err := cr.cpuTimes(ctx)
	if err != nil {
		return err
	}
	cr.cpuEnd = t
	return nil
}

// clock runs the phases of a case: the warm-up, then the measured
// interval. In duration mode it sets stop when the interval is over; in
// count mode it returns as the interval begins and the loops stop
// themselves after cr.limit messages. It returns early when stop is set
// (by a failing loop or the watchdog) or ctx is done.
func (cr *caseRun) clock(ctx context.Context) error {
	if !sleepCtx(ctx, cr.opts.Warmup, &cr.stop) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errors.New("stopped during the warm-up")
	}
	if err := cr.beginMeasure(ctx); err != nil {
		return err
	}
	if cr.limit > 0 {
		return nil
	}
	sleepCtx(ctx, cr.opts.Duration, &cr.stop)
	cr.tEnd = time.Now()
	cr.stop.Store(true)
	return nil
}

// sleepCtx sleeps for d unless ctx ends or stop is set first; it reports
// whether the full time passed.
func sleepCtx(ctx context.Context, d time.Duration, stop *atomic.Bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-tick.C:
			if stop.Load() {
				return false
			}
		}
	}
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

// pinSelf pins every thread of this process to cpus and returns a function
// that restores the previous affinity.
func pinSelf(cpus []int) (func(), error) {
	prev, err := sysinfo.Affinity(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("reading CPU affinity: %w", err)
	}
	if err := sysinfo.SetAffinity(os.Getpid(), cpus); err != nil {
		return nil, fmt.Errorf("pinning the bench process to CPUs %v: %w", cpus, err)
	}
	return func() { _ = sysinfo.SetAffinity(os.Getpid(), prev) }, nil
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// cpuSampler records on which CPUs the two processes actually ran during
// the measured interval (BENCHMARKING.md: unpinned runs are bimodal, so
// where each end ran is part of the result).
type cpuSampler struct {
	samplers [2]*sysinfo.ThreadSampler
	counts   [2]map[int]int
	disabled bool
	quit     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
	mu       sync.Mutex
}

func newCPUSampler(benchPID, peerPID int) *cpuSampler {
	return &cpuSampler{
		samplers: [2]*sysinfo.ThreadSampler{sysinfo.NewThreadSampler(benchPID), sysinfo.NewThreadSampler(peerPID)},
		counts:   [2]map[int]int{{}, {}},
		quit:     make(chan struct{}),
	}
}

func (s *cpuSampler) start() {
	if s.disabled {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
}

func (s *cpuSampler) sample() {
	for i, ts := range s.samplers {
		cpus, err := ts.Sample()
		if err != nil {
			continue
		}
		s.mu.Lock()
		for _, c := range cpus {
			s.counts[i][c]++
		}
		s.mu.Unlock()
	}
}

func (s *cpuSampler) stop() {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
}

// result renders the samples as "cpu:count" lists, most frequent first.
func (s *cpuSampler) result() (bench, peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := func(m map[int]int) string {
		type kv struct{ cpu, n int }
		var l []kv
		for c, n := range m {
			l = append(l, kv{c, n})
		}
		sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || (l[i].n == l[j].n && l[i].cpu < l[j].cpu) })
		parts := make([]string, len(l))
		for i, e := range l {
			parts[i] = strconv.Itoa(e.cpu) + ":" + strconv.Itoa(e.n)
		}
		return strings.Join(parts, ",")
	}
	return f(s.counts[0]), f(s.counts[1])
}
