package floor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/hist"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
	"github.com/ipcbench/ipcbench/internal/units"
	"github.com/ipcbench/ipcbench/transports/all"
)

// ErrBadConfig is wrapped by Config.Check for options that cannot run
// (each error a *ConfigError), and by New and Select.
var ErrBadConfig = errors.New("bad floor options")

// ConfigError is Config.Check's error: Field names the field of Config
// that cannot run ("Repeats", "PingPongN", "StreamBytes" or "FaninN"), for
// a program to name its own setting (the ipcbench CLI maps "PingPongN" to
// -n). It wraps ErrBadConfig and Err.
type ConfigError struct {
	// Field is the name of the field of Config at fault.
	Field string
	// Err says what is wrong with it, without ErrBadConfig's text.
	Err error
}

// Error returns ErrBadConfig's text and Err's: "bad floor options:
// repeats 0: want at least 1".
func (e *ConfigError) Error() string { return ErrBadConfig.Error() + ": " + e.Err.Error() }

// Unwrap returns ErrBadConfig and Err, for errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return []error{ErrBadConfig, e.Err} }

// badConfig returns a *ConfigError for field, its Err formatted as
// fmt.Errorf formats it.
func badConfig(field, format string, a ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
}

// Config are the options of a floor run.
type Config struct {
	Repeats     int   // runs of each pair per side, interleaved
	PingPongN   int   // round trips per pingpong run
	StreamBytes int64 // bytes per stream run
	FaninN      int64 // round trips per fanin run, over all its connections
	// PeerPath and PeerArgs start ipcbench's peer process (see
	// bench.Options.Peer).
	PeerPath string
	PeerArgs []string
}

// Default values of Config.
const (
	DefaultRepeats     = 5
	DefaultPingPongN   = 20000
	DefaultStreamBytes = 1 << 30
	DefaultFaninN      = 20000
)

// Lower bounds of Config, which Check enforces (the upper bounds are
// bench's MaxRepeats and MaxCount).
const (
	// MinPingPongN is the fewest round trips of a pingpong run.
	MinPingPongN = 100
	// MinStreamBytes is the fewest bytes of a stream run: four messages
	// of the largest stream pair.
	MinStreamBytes = 4 * largeStreamSize
)

// MinFaninN is the fewest round trips of a fanin run: one per connection
// of the fanin pair with the most (the last of FaninConns).
func MinFaninN() int64 { return int64(FaninConns[len(FaninConns)-1]) }

// Check returns a *ConfigError (wrapping ErrBadConfig) for the first
// option that cannot run.
func (c Config) Check() error {
	switch {
	case c.Repeats < 1:
		return badConfig("Repeats", "repeats %d: want at least 1", c.Repeats)
	case c.PingPongN < MinPingPongN:
		return badConfig("PingPongN", "%d round trips per pingpong: want at least %d", c.PingPongN, MinPingPongN)
	case c.StreamBytes < MinStreamBytes:
		return badConfig("StreamBytes", "%s per stream: want at least %s (four of the largest message)", units.FormatBytes(c.StreamBytes), bench.FormatSize(MinStreamBytes))
	case c.FaninN < MinFaninN():
		return badConfig("FaninN", "%d fanin round trips: want at least one per connection (%d)", c.FaninN, MinFaninN())
	// The upper bounds are the runner's (bench.Options), checked here
	// before anything is built.
	case c.Repeats > bench.MaxRepeats:
		return badConfig("Repeats", "repeats %d: want at most %d", c.Repeats, bench.MaxRepeats)
	case c.PingPongN > bench.MaxCount:
		return badConfig("PingPongN", "%d round trips per pingpong: want at most %d", c.PingPongN, bench.MaxCount)
	case c.FaninN > bench.MaxCount:
		return badConfig("FaninN", "%d fanin round trips: want at most %d", c.FaninN, bench.MaxCount)
	}
	return nil
}

// Describe returns the options as a raw file's header holds them.
func (c Config) Describe() map[string]string {
	return map[string]string{
		"repeats":      strconv.Itoa(c.Repeats),
		"pingpong_n":   strconv.Itoa(c.PingPongN),
		"stream_bytes": units.FormatBytes(c.StreamBytes),
		"fanin_n":      strconv.FormatInt(c.FaninN, 10),
		"warmup":       warmup.String(),
		"sides":        "interleaved, the side that goes first alternating by repeat",
	}
}

// warmup precedes every ipcbench case and every C stream run (the C
// round-trip programs warm up with 2000 round trips of their own).
const warmup = 100 * time.Millisecond

// runnerKey picks the runner of a pair: one per workload and size.
type runnerKey struct {
	workload string
	size     int
}

// Experiment is a floor run in progress: the pairs, the built C programs
// and one ipcbench runner per workload and size.
type Experiment struct {
	cfg     Config
	pairs   []Pair
	progs   Programs
	runners map[runnerKey]*bench.Runner
	done    atomic.Int64
	label   atomic.Value // string
}

// TwoCPUs reports whether this process may run on at least two CPUs, which
// the pinned placements need.
func TwoCPUs() bool {
	cpus, err := sysinfo.Affinity(os.Getpid())
	return err == nil && len(cpus) >= 2
}

// New checks cfg and prepares the pairs: every variant must be a known
// transport and every C mode one its program has.
func New(cfg Config, progs Programs, pairs []Pair) (*Experiment, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	e := &Experiment{cfg: cfg, pairs: pairs, progs: progs, runners: map[runnerKey]*bench.Runner{}}
	e.label.Store("")
	opts := map[runnerKey]*bench.Options{}
	var order []runnerKey
	for _, p := range pairs {
		modes := map[string][]string{"pingpong": PingPongModes, "stream": StreamModes, "fanin": FaninModes}[p.C.Program]
		if err := checkMode(p.C.Program, p.C.Mode, modes); err != nil {
			return nil, err
		}
		k := runnerKey{p.Workload, p.Size}
		o := opts[k]
		if o == nil {
			o = &bench.Options{Workloads: []string{p.Workload}, Repeats: 1, Warmup: warmup, Sizes: []int{p.Size}}
			switch p.Workload {
			case "pingpong":
				o.Count = int64(cfg.PingPongN)
			case "stream":
				o.Count = cfg.StreamBytes / int64(p.Size)
			case "fanin":
				o.Count = cfg.FaninN
			default:
				return nil, fmt.Errorf("%w: pair workload %q", ErrBadConfig, p.Workload)
			}
			o.Peer.Path, o.Peer.Args = cfg.PeerPath, cfg.PeerArgs
			opts[k] = o
			order = append(order, k)
		}
		rs, err := all.Resolve(p.Variant)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
		spec := bench.TransportSpec{Transport: rs.Transport, Options: rs.Spec.Options}
		if !slices.ContainsFunc(o.Transports, func(t bench.TransportSpec) bool { return t.Label() == spec.Label() }) {
			o.Transports = append(o.Transports, spec)
		}
		if p.Workload == "fanin" && !slices.Contains(o.FaninConns, p.Conns) {
			o.FaninConns = append(o.FaninConns, p.Conns)
		}
	}
	for _, k := range order {
		r, err := bench.NewRunner(*opts[k])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
		e.runners[k] = r
	}
	for _, p := range pairs {
		if _, err := e.caseFor(p); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	}
	return e, nil
}

// caseFor returns the planned ipcbench case of p (its placement is set
// when it runs).
func (e *Experiment) caseFor(p Pair) (bench.CaseSpec, error) {
	for _, c := range e.runners[runnerKey{p.Workload, p.Size}].Plan() {
		if c.Transport.Label() == p.Variant && c.Conns == p.Conns {
			return c, nil
		}
	}
	return bench.CaseSpec{}, fmt.Errorf("no planned case for %s at %d connections (write the variant as its label, options sorted)", p.Variant, p.Conns)
}

// Pairs returns the pairs in the order they run.
func (e *Experiment) Pairs() []Pair { return e.pairs }

// Progress returns how many side runs have finished, the total, and the
// label of the run in progress; it is safe to call from any goroutine.
func (e *Experiment) Progress() (done, total int, label string) {
	return int(e.done.Load()), len(e.pairs) * e.cfg.Repeats * 2, e.label.Load().(string)
}

// Run measures every pair Repeats times, interleaved (every pair once, then
// again), running both sides of a pair back to back and alternating which
// goes first by repeat, so neither always runs on a machine the other just
// warmed. It hands each measurement to emit as soon as it is known and
// stops at the first failure, or when ctx is cancelled.
func (e *Experiment) Run(ctx context.Context, emit func(Record) error) error {
	for rep := range e.cfg.Repeats {
		for _, p := range e.pairs {
			pl, err := bench.ParsePlacement(p.Placement)
			if err != nil {
				return fmt.Errorf("floor: %w", err)
			}
			sides := []string{SideC, SideIPCBench}
			if rep%2 == 1 {
				sides = []string{SideIPCBench, SideC}
			}
			for _, side := range sides {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("floor: interrupted: %w", err)
				}
				e.label.Store(fmt.Sprintf("%s %s %s %s repeat %d", side, p.Workload, p.Variant, p.Placement, rep+1))
				var v float64
				var detail string
				before, _ := bench.ProbeLine(pl)
				if side == SideC {
					// A stop (Ctrl-Z) of this process stops the C
					// programs too, when they share its process group,
					// and their clocks take it in; the ipcbench side
					// runs again through RunCase.
					err = bench.RetryStopped(ctx, func() error {
						var err error
						v, detail, err = e.runC(ctx, p, pl)
						return err
					})
				} else {
					v, detail, err = e.runIPCBench(ctx, p, pl, rep)
				}
				if err != nil {
					return fmt.Errorf("%s side of %s %s %s: %w", side, p.Workload, p.Variant, p.Placement, err)
				}
				rec := p.record(side, rep, v, detail)
				if after, _ := bench.ProbeLine(pl); before > 0 && after > 0 {
					rec.LineRTTNS = ((before + after) / 2).Nanoseconds()
					rec.LineRTTBeforeNS, rec.LineRTTAfterNS = before.Nanoseconds(), after.Nanoseconds()
				}
				if err := emit(rec); err != nil {
					return err
				}
				e.done.Add(1)
			}
		}
	}
	e.label.Store("")
	return nil
}

// runC runs the C side of p and returns its value in p.Unit(), which must
// be a finite number above zero (an error wrapping ErrBadOutput otherwise).
func (e *Experiment) runC(ctx context.Context, p Pair, pl bench.Placement) (float64, string, error) {
	pin := Unpinned
	if len(pl.Bench) > 0 && len(pl.Peer) > 0 {
		pin = Pin{A: pl.Bench[0], B: pl.Peer[0]}
	}
	var r Result
	var err error
	key := "p50_ns"
	switch p.C.Program {
	case "stream":
		r, err = e.progs.Stream(ctx, p.C.Mode, int64(p.Size), e.cfg.StreamBytes, pin, p.C.Args...)
		key = "MBps"
	case "fanin":
		r, err = e.progs.Fanin(ctx, p.C.Mode, p.Conns, p.Size, e.cfg.FaninN, pin, p.C.Args...)
		key = "msgs_per_s"
	default:
		r, err = e.progs.PingPong(ctx, p.C.Mode, p.Size, e.cfg.PingPongN, pin, p.C.Args...)
	}
	if err != nil {
		return 0, "", err
	}
	v, err := r.Positive(key)
	if err != nil {
		return 0, "", fmt.Errorf("floor: %s %s: %w", p.C.Program, p.C, err)
	}
	return v, r.Line, nil
}

// runIPCBench runs the ipcbench side of p and returns its value in p.Unit().
func (e *Experiment) runIPCBench(ctx context.Context, p Pair, pl bench.Placement, rep int) (float64, string, error) {
	cs, err := e.caseFor(p)
	if err != nil {
		return 0, "", err
	}
	cs.Placement = pl
	res, err := e.runners[runnerKey{p.Workload, p.Size}].RunCase(ctx, cs, rep)
	if err != nil {
		return 0, "", err
	}
	if res.Status != bench.StatusOK {
		return 0, "", fmt.Errorf("case %s: %s", res.Status, res.Reason)
	}
	where := fmt.Sprintf("cpus bench %s peer %s", res.BenchCPUs, res.PeerCPUs)
	secs := float64(res.DurationNS) / 1e9
	switch p.Unit() {
	case UnitMBps:
		return float64(res.Bytes) / 1e6 / secs, where, nil
	case UnitMsgs:
		return float64(res.Messages) / secs, where, nil
	}
	h, err := hist.Decode(res.Hist)
	if err != nil {
		return 0, "", fmt.Errorf("decoding the latency histogram: %w", err)
	}
	return float64(h.Quantile(0.5)), where, nil
}
