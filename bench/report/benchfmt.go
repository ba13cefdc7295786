package report

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/units"
)

// The "benchfmt" format is the Go benchmark format
// (https://go.dev/design/14313-benchmark-format), so that benchstat and
// golang.org/x/perf/benchfmt read ipcbench results:
//
//	goos: linux
//	cpu: Intel(R) Xeon(R) CPU @ 2.20GHz
//	network: private-netns
//	...
//	Unit round-trip-p50-ns better=lower
//	BenchmarkPingPong/transport=unix/size=64B/conns=1/placement=unpinned-2  98765  10125 ns/op  6.32 MB/s  9800 round-trip-p50-ns ...
//
// Each run starts with configuration lines: the header's machine facts
// (cpu_model as "cpu", go_version as "go", other keys with "_" spelt "-"),
// network, the run options, the source file and a note on units. Then one
// line per OK repeat, named
//
//	Benchmark<Workload>/transport=<name>[<variant>]/size=<size>/conns=<n>[/rate=<msg/s>]/placement=<placement>[-<GOMAXPROCS>]
//
// with the workload spelt PingPong, Stream, FanIn, Connect, Rate or HTTP and the
// variant kept inside the transport value ("transport=tcp-localhost[nodelay=false]"),
// so that `benchstat -col /transport` puts every transport variant in a
// column of its own and compares them. "/" and spaces inside values become
// ":" and "_". The iteration count is the number of messages; an op is one
// message (one round trip for pingpong, connect and rate). Values:
//
//	ns/op                 measured interval / messages
//	MB/s                  payload throughput, one direction (when bytes moved)
//	round-trip-p50-ns     round-trip latency quantiles of the repeat
//	round-trip-p90-ns     (when the workload records latency)
//	round-trip-p99-ns
//	round-trip-p99.9-ns
//	round-trip-max-ns
//	cpu-ns/op             user+sys CPU time of both processes per message
//	                      (left out when the peer's is unknown: a foreign server)
//
// Each line is one repeat: benchstat takes the median over them, as the
// other formats do for p50, msg/s, MB/s and CPU/msg.
//
// Failed and skipped repeats are written as go test does,
// "--- SKIP: <name>" or "--- FAIL: <name>" followed by an indented reason,
// which benchfmt readers ignore.

// workloadNames spells workloads as Go benchmark names.
var workloadNames = map[string]string{
	"pingpong": "PingPong",
	"stream":   "Stream",
	"fanin":    "FanIn",
	"connect":  "Connect",
	"rate":     "Rate",
	"http":     "HTTP",
}

// latencyUnits are the per-repeat round-trip quantiles written, in order.
var latencyUnits = []string{
	"round-trip-p50-ns", "round-trip-p90-ns", "round-trip-p99-ns", "round-trip-p99.9-ns", "round-trip-max-ns",
}

var configKeyRe = regexp.MustCompile(`^[a-z][a-z0-9._-]*$`)

// BenchmarkName returns the Go benchmark name of a case (see the package
// doc), without the GOMAXPROCS suffix.
func BenchmarkName(c bench.Case) string {
	w, ok := workloadNames[c.Workload]
	if !ok {
		w = capitalize(nameValue(c.Workload))
	}
	s := "Benchmark" + w +
		"/transport=" + nameValue(c.TransportLabel()) +
		"/size=" + units.FormatSize(c.Size) +
		"/conns=" + strconv.Itoa(c.Conns)
	if c.Rate > 0 {
		s += "/rate=" + strconv.Itoa(c.Rate)
	}
	pl := c.Placement
	if pl == "" {
		pl = "unknown"
	}
	return s + "/placement=" + nameValue(pl)
}

// nameValue makes s usable inside a benchmark name: no spaces, no "/".
func nameValue(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '/':
			return ':'
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			return '_'
		}
		return r
	}, s)
}

// gomaxprocsSuffix returns "-N" for the header's GOMAXPROCS, or "" when it
// is not recorded.
func gomaxprocsSuffix(h *bench.Header) string {
	n, err := strconv.Atoi(strings.TrimSpace(h.Machine["gomaxprocs"]))
	if err != nil || n <= 0 {
		return ""
	}
	return "-" + strconv.Itoa(n)
}

// fullName is BenchmarkName plus the GOMAXPROCS suffix. Without a suffix, a
// name ending in "-<digits>" (a placement such as "cpus=0-1") would be
// misread as one, so its last "-" becomes "_".
func fullName(c bench.Case, suffix string) string {
	n := BenchmarkName(c)
	if suffix != "" {
		return n + suffix
	}
	i := len(n)
	for i > 0 && n[i-1] >= '0' && n[i-1] <= '9' {
		i--
	}
	if i < len(n) && i > 0 && n[i-1] == '-' {
		n = n[:i-1] + "_" + n[i:]
	}
	return n
}

// configLines returns the configuration lines of a run, in a fixed order.
func configLines(run *bench.Records) []string {
	h := &run.Header
	var lines []string
	add := func(k, v string) {
		k = strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		v = oneLine(v)
		if v == "" || !configKeyRe.MatchString(k) {
			return
		}
		lines = append(lines, k+": "+v)
	}
	add("goos", h.Machine["goos"])
	add("goarch", h.Machine["goarch"])
	add("cpu", h.Machine["cpu_model"])
	add("go", h.Machine["go_version"])
	for _, k := range sortedKeys(h.Machine) {
		switch k {
		case "goos", "goarch", "cpu_model", "go_version":
			continue
		}
		add(k, h.Machine[k])
	}
	network := h.Network
	if h.NetworkNote != "" {
		network += " (" + h.NetworkNote + ")"
	}
	add("network", network)
	for _, k := range sortedKeys(h.Options) {
		if !unusedBy(k, h) {
			add(k, h.Options[k])
		}
	}
	add("tool", h.Tool)
	add("source", run.Source)
	add("note", "round-trip-* units are round-trip latencies measured in the bench process; an op is one message (pingpong, connect, rate: one round trip)")
	return lines
}

func renderBenchfmt(w io.Writer, as []*analysis) error {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range configLines(a.run) {
			b.WriteString(l + "\n")
		}
		b.WriteString("\n")
		for _, u := range latencyUnits {
			b.WriteString("Unit " + u + " better=lower\n")
		}
		b.WriteString("Unit cpu-ns/op better=lower\n\n")
		suffix := gomaxprocsSuffix(&a.run.Header)
		for j := range a.run.Results {
			r := &a.run.Results[j]
			name := fullName(r.Case(), suffix)
			switch r.Status {
			case bench.StatusOK:
			case bench.StatusSkipped:
				fmt.Fprintf(&b, "--- SKIP: %s (repeat %d)\n    %s\n", name, r.Repeat, oneLine(r.Reason))
				continue
			default:
				fmt.Fprintf(&b, "--- FAIL: %s (repeat %d)\n    %s\n", name, r.Repeat, oneLine(r.Reason))
				continue
			}
			if r.Messages <= 0 || r.DurationNS <= 0 {
				fmt.Fprintf(&b, "--- FAIL: %s (repeat %d)\n    no messages in the measured interval\n", name, r.Repeat)
				continue
			}
			fmt.Fprintf(&b, "%s\t%d\t%s ns/op", name, r.Messages, benchNum(float64(r.DurationNS)/float64(r.Messages)))
			if r.Bytes > 0 {
				fmt.Fprintf(&b, "\t%s MB/s", benchNum(float64(r.Bytes)*1e3/float64(r.DurationNS)))
			}
			if q := a.latency[j]; q.ok {
				for k, v := range []int64{q.p50, q.p90, q.p99, q.p999, q.max} {
					fmt.Fprintf(&b, "\t%d %s", v, latencyUnits[k])
				}
			}
			if !r.PeerCPUUnknown { // else the bench process's alone: left out, as in the other formats
				cpu := r.BenchUserNS + r.BenchSysNS + r.PeerUserNS + r.PeerSysNS
				fmt.Fprintf(&b, "\t%s cpu-ns/op", benchNum(float64(cpu)/float64(r.Messages)))
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// benchNum formats a value the way testing does: integers plainly, others
// with enough digits to be useful.
func benchNum(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
