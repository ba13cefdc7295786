package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/floor"
	"github.com/ipcbench/ipcbench/internal/hist"
	"github.com/ipcbench/ipcbench/internal/progress"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

const floorSynopsis = `[flags]
Measures what Go and ipcbench cost on this machine: it builds small C
programs that do the bare minimum for each mechanism between two processes
(the floor), and runs them and the matching ipcbench cases interleaved, in
one run, on the same placements. It prints, and writes to -out, a Markdown
table of the medians and the ratio ipcbench/C for each pair, with the
target each ratio is held to. Needs a C compiler (cc, gcc or clang); without
one it says so and exits 0. Runs on the host's own loopback (no private
namespace: every pair is local).

Pairs: pingpong 64 B over pipe, unix and tcp-localhost, each through Go's
netpoller and with io=raw (same-core, cross-core, unpinned), against the C
pipe/unix/tcp round trip; shm-ring's wait strategies against the C spin,
spin-then-futex and futex round trips; shm-lock against a process-shared
mutex and condition variable; stream 64 KiB against the C
pipe/unix/tcp/shared-memory-ring throughput (shm-ring also with
zerocopy=off, its sink copying every message out before checking it).`

const floorExamples = `  ipcbench floor                              # about 4 minutes; the table on stdout
  ipcbench floor -out results/floor.md        # what 'make floor' runs
  ipcbench floor -repeats 9 -n 50000          # steadier medians
`

// floorPair is one ipcbench case and the C program it is compared with.
type floorPair struct {
	workload  string // "pingpong" or "stream"
	variant   string // an ipcbench transport variant, as -t takes it
	placement string
	cMode     string   // the C program's mode
	cExtra    []string // extra C arguments
	target    string   // what the ratio must meet, for the table
	// higherIsBetter: stream (MB/s); the ratio is ipcbench/C either way.
	higherIsBetter bool
}

// floorPairs returns the pairs to measure; placements other than unpinned
// need two CPUs.
func floorPairs(twoCPUs bool) []floorPair {
	var ps []floorPair
	places := []string{"unpinned"}
	if twoCPUs {
		places = []string{"same-core", "cross-core", "unpinned"}
	}
	for _, m := range []struct{ variant, c string }{{"pipe", "pipe"}, {"unix", "unix"}, {"tcp-localhost", "tcp"}} {
		for _, pl := range places {
			for _, v := range []string{m.variant, m.variant + "[io=raw]"} {
				ps = append(ps, floorPair{workload: "pingpong", variant: v, placement: pl, cMode: m.c, target: "≤ 1.2×"})
			}
		}
	}
	if twoCPUs {
		spin := fmt.Sprint(shmDefaultSpinNS)
		ps = append(ps,
			floorPair{workload: "pingpong", variant: "shm-ring[wait=spin]", placement: "cross-core", cMode: "spin", target: "≤ 2×"},
			floorPair{workload: "pingpong", variant: "shm-ring", placement: "cross-core", cMode: "spinfutex", cExtra: []string{"-S", spin}, target: "≤ 1.5×"},
			floorPair{workload: "pingpong", variant: "shm-ring[wait=futex]", placement: "cross-core", cMode: "futex", target: "—"},
			floorPair{workload: "pingpong", variant: "shm-ring[wait=futex]", placement: "same-core", cMode: "futex", target: "—"},
			floorPair{workload: "pingpong", variant: "shm-lock", placement: "cross-core", cMode: "pshared", target: "—"},
		)
	}
	for _, m := range []struct{ variant, c, target string }{
		{"pipe", "pipe", "≥ 0.9×"}, {"pipe[io=raw]", "pipe", "≥ 0.9×"},
		{"unix", "unix", "≥ 0.9×"}, {"unix[io=raw]", "unix", "≥ 0.9×"},
		{"tcp-localhost", "tcp", "≥ 0.9×"}, {"tcp-localhost[io=raw]", "tcp", "≥ 0.9×"},
		{"shm-ring", "shmringf", "≥ 0.8×"}, {"shm-ring[wait=spin]", "shmring", "≥ 0.8×"},
		{"shm-ring[zerocopy=off]", "shmringf", "—"},
	} {
		ps = append(ps, floorPair{workload: "stream", variant: m.variant, placement: "unpinned", cMode: m.c, target: m.target, higherIsBetter: true})
	}
	return ps
}

// shmDefaultSpinNS is shm-ring's default adaptive spin budget, given to the
// C spin-then-futex program so both spin as long.
const shmDefaultSpinNS = 20000

// floorRecord is one measurement, as written to the -raw file.
type floorRecord struct {
	Side      string  `json:"side"` // "c" or "ipcbench"
	Workload  string  `json:"workload"`
	Variant   string  `json:"variant"`
	Placement string  `json:"placement"`
	Repeat    int     `json:"repeat"`
	Value     float64 `json:"value"` // p50 round trip ns, or MB/s
	Detail    string  `json:"detail,omitempty"`
}

func cmdFloor(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "floor", floorSynopsis, floorExamples)
	repeats := fs.Int("repeats", 5, "runs of each pair, interleaved (the table shows medians)")
	iters := fs.Int("n", 20000, "round trips per pingpong run")
	streamBytes := fs.String("stream-bytes", "1GiB", "bytes per stream run")
	out := fs.String("out", "", "also write the Markdown table to this file")
	raw := fs.String("raw", "", "write every measurement as JSON Lines to this file")
	quiet := fs.Bool("q", false, "no progress display")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags only; see 'ipcbench floor -help')", fs.Arg(0))
	}
	if *repeats < 1 || *iters < 100 {
		return usagef("-repeats must be at least 1 and -n at least 100")
	}
	total, err := bench.ParseSize(*streamBytes, 1<<40)
	if err != nil {
		return usagef("-stream-bytes: %v", err)
	}
	if _, err := floor.Compiler(); err != nil {
		fmt.Fprintf(e.stderr, "ipcbench floor: skipped: %v\n", err)
		return nil
	}
	dir, err := os.MkdirTemp("", "ipcbench-floor-")
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer os.RemoveAll(dir)
	progs, err := floor.Build(ctx, dir)
	if err != nil {
		return err
	}

	cpus, _ := sysinfo.Affinity(os.Getpid())
	pairs := floorPairs(len(cpus) >= 2)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this executable to start peers: %w", err)
	}
	const msg = 64 << 10
	runners := map[string]*bench.Runner{}
	for _, w := range []string{"pingpong", "stream"} {
		o := bench.Options{Workloads: []string{w}, Repeats: 1, Warmup: 100 * time.Millisecond, Sizes: []int{64}}
		o.Count = int64(*iters)
		if w == "stream" {
			o.Sizes = []int{msg}
			o.Count = int64(total / msg)
		}
		o.Peer.Path, o.Peer.Args = exe, []string{"peer"}
		for _, p := range pairs {
			if p.workload != w {
				continue
			}
			specs, err := parseTransports(p.variant)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(o.Transports, func(s bench.TransportSpec) bool { return s.Label() == specs[0].Label() }) {
				o.Transports = append(o.Transports, specs...)
			}
		}
		r, err := bench.NewRunner(o)
		if err != nil {
			return err
		}
		runners[w] = r
	}

	var rawW io.Writer = io.Discard
	if *raw != "" {
		f, err := os.Create(*raw)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		defer f.Close()
		rawW = f
	}
	enc := json.NewEncoder(rawW)
	var done atomic.Int64
	var label atomic.Value
	label.Store("building")
	nRuns := len(pairs) * *repeats * 2
	if !*quiet {
		disp := progress.Start(e.stderr, true, progress.DefaultInterval, func() progress.Snapshot {
			return progress.Snapshot{Done: int(done.Load()), Total: nRuns, Label: label.Load().(string)}
		})
		defer disp.Stop()
	}
	vals := make([][2][]float64, len(pairs)) // [pair][side] values
	for rep := range *repeats {
		for i, p := range pairs {
			pl, err := bench.ParsePlacement(p.placement)
			if err != nil {
				return err
			}
			pin := floor.Unpinned
			if len(pl.Bench) > 0 {
				pin = floor.Pin{A: pl.Bench[0], B: pl.Peer[0]}
			}
			// Alternate which side goes first, so neither always runs
			// on a machine the other just warmed or heated.
			order := []int{0, 1}
			if rep%2 == 1 {
				order = []int{1, 0}
			}
			for _, side := range order {
				if err := ctx.Err(); err != nil {
					return err
				}
				label.Store(fmt.Sprintf("%s %s %s repeat %d", p.workload, p.variant, p.placement, rep+1))
				var v float64
				var detail string
				if side == 0 {
					v, detail, err = runFloorC(ctx, progs, p, *iters, int64(total), msg, pin)
				} else {
					v, detail, err = runFloorGo(ctx, runners[p.workload], p, pl, rep)
				}
				if err != nil {
					return fmt.Errorf("floor: %s %s %s: %w", p.workload, p.variant, p.placement, err)
				}
				vals[i][side] = append(vals[i][side], v)
				sideName := [2]string{"c", "ipcbench"}[side]
				enc.Encode(floorRecord{Side: sideName, Workload: p.workload, Variant: p.variant, Placement: p.placement, Repeat: rep, Value: v, Detail: detail})
				done.Add(1)
			}
		}
	}
	table := floorTable(pairs, vals, *repeats, *iters, progs.Compiler)
	fmt.Fprint(e.stdout, table)
	if *out != "" {
		if dir := filepath.Dir(*out); dir != "." {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("floor: %w", err)
			}
		}
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			return fmt.Errorf("floor: %w", err)
		}
	}
	return nil
}

// runFloorC runs the C side of p and returns p50 ns or MB/s.
func runFloorC(ctx context.Context, progs floor.Programs, p floorPair, iters int, total, msg int64, pin floor.Pin) (float64, string, error) {
	if p.workload == "stream" {
		r, err := progs.Stream(ctx, p.cMode, msg, total, pin)
		if err != nil {
			return 0, "", err
		}
		gbps, err := r.Float("GBps")
		return gbps * 1000, r.Line, err
	}
	r, err := progs.PingPong(ctx, p.cMode, 64, iters, pin, p.cExtra...)
	if err != nil {
		return 0, "", err
	}
	v, err := r.Float("p50_ns")
	return v, r.Line, err
}

// runFloorGo runs the ipcbench side of p and returns p50 ns or MB/s.
func runFloorGo(ctx context.Context, r *bench.Runner, p floorPair, pl bench.Placement, rep int) (float64, string, error) {
	var cs bench.CaseSpec
	found := false
	for _, c := range r.Plan() {
		if c.Transport.Label() == p.variant || c.Transport.Variant() == p.variant {
			cs, found = c, true
			break
		}
	}
	if !found {
		return 0, "", fmt.Errorf("no planned case for %s", p.variant)
	}
	cs.Placement = pl
	res, err := r.RunCase(ctx, cs, rep)
	if err != nil {
		return 0, "", err
	}
	if res.Status != bench.StatusOK {
		return 0, "", errors.New(res.Reason)
	}
	if p.workload == "stream" {
		return float64(res.Bytes) / 1e6 / (float64(res.DurationNS) / 1e9), "", nil
	}
	h, err := hist.Decode(res.Hist)
	if err != nil {
		return 0, "", err
	}
	return float64(h.Quantile(0.5)), fmt.Sprintf("cpus bench %v peer %v", res.BenchCPUs, res.PeerCPUs), nil
}

// floorTable renders the medians and ratios as Markdown.
func floorTable(pairs []floorPair, vals [][2][]float64, repeats, iters int, cc string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	info := sysinfo.Collect()
	fmt.Fprintf(&b, "# ipcbench against the C floor\n\n")
	fmt.Fprintf(&b, "Medians of %d interleaved runs per side; pingpong: p50 round trip of %d round trips of 64 B; stream: MB/s (10^6 B/s) of 64 KiB messages. ", repeats, iters)
	fmt.Fprintf(&b, "Ratio = ipcbench / C: for round trips lower is better, for throughput higher is better. Machine: %s, %s CPUs (%s); C compiler %s.\n\n",
		host, info["cores"], info["cpu_model"], filepath.Base(cc))
	fmt.Fprintf(&b, "| workload | ipcbench variant | placement | C floor | ipcbench | C | ratio | target | |\n|---|---|---|---|---:|---:|---:|---|---|\n")
	for i, p := range pairs {
		c, g := median(vals[i][0]), median(vals[i][1])
		ratio := g / c
		unit := func(v float64) string { return fmt.Sprintf("%.1f µs", v/1000) }
		if p.workload == "stream" {
			unit = func(v float64) string { return fmt.Sprintf("%.0f MB/s", v) }
		}
		verdict := ""
		if t, ok := parseTarget(p.target); ok {
			if (strings.HasPrefix(p.target, "≤") && ratio <= t) || (strings.HasPrefix(p.target, "≥") && ratio >= t) {
				verdict = "meets"
			} else {
				verdict = "misses"
			}
		}
		cname := p.cMode
		if len(p.cExtra) > 0 {
			cname += " " + strings.Join(p.cExtra, " ")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %.2f× | %s | %s |\n", p.workload, p.variant, p.placement, cname, unit(g), unit(c), ratio, p.target, verdict)
	}
	fmt.Fprintf(&b, "\nProduced by `ipcbench floor -repeats %d -n %d` (`make floor`).\n", repeats, iters)
	return b.String()
}

// parseTarget reads the number of "≤ 1.2×" or "≥ 0.9×".
func parseTarget(t string) (float64, bool) {
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimLeft(t, "≤≥ "), "×"))
	var v float64
	if _, err := fmt.Sscanf(s, "%g", &v); err != nil {
		return 0, false
	}
	return v, true
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
