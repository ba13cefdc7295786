package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/report"
	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/progress"
	"github.com/ipcbench/ipcbench/internal/units"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

const runSynopsis = `[flags]

Runs benchmark workloads over transports, each case between this process and
a peer process it starts, and prints a ranking per workload and size. Raw
records (JSON Lines: a header with the environment, then one record per case
run) go to -out; everything else is derived from them by 'ipcbench report',
'plot' and 'compare'.

By default the run happens inside a private network namespace that ipcbench
creates (loopback plus a veth pair 10.77.0.1 <-> 10.77.0.2), so tcp-public has
a non-loopback address, tcp-veth can join two namespaces of its own by a veth
link, and host firewall rules and traffic cannot distort the numbers;
-network host measures on the host's own interfaces instead (tcp-veth is then
skipped).

With -connect ADDRESS the peer is not started: every case dials ADDRESS,
where 'ipcbench serve' (the default, -peer serve) or any echo server (-peer
echo) listens, on the one transport -t names. Against an echo server only
the pingpong, fanin, rate and connect workloads run, with -framing, and
every byte is still checked; its CPU time is unknown, and stream and http
are refused (left out of the default workloads). The
run then stays on the host's network (the server is there), and the raw
header records the peer as "serve ADDRESS" or "echo ADDRESS". A
placement (it places the server too) and -buffer (the server keeps the
buffers it was started with) are refused: pin the run with taskset, and the
server where it is started; a variant's options (-t 'unix[io=raw]') apply
to this side's end, and those only a listener applies (shm-*'s mapping,
pipe's pipe_size) are refused: the server decided them when it started.

-peer-source says how each case's peer reaches the bench; several are
variants of one transport (pipe[via=address]), interleaved in one run:
  inherit  a peer process per case that inherits its channels: pipe and
           shm-* get them prepared at listen time as inherited files;
           sockets hand down no channel, the peer dials the listener's
           address (the default)
  address  a peer process per case that dials by address, as an unrelated
           process would: pipe and shm-* through the listener's rendezvous
           socket, a fresh channel per dial; for sockets this is inherit,
           and such a case is skipped as the same case
  serve    a stand-alone 'ipcbench serve -t SPEC -listen ADDRESS' per case,
           measured as -connect measures one, then stopped with SIGTERM
           (not with -connect, -buffer or a -peer-model other than
           goroutine, whose cases are skipped)

The lists (-t, -w, -s, -conns, -placement, -peer-model, -peer-source) take
each value once: a value given twice (-s 1k,1024, -t all,unix,
-t unix,unix[io=netpoll], a default spelled out, or
-t 'unix[sndbuf=256k],unix[sndbuf=262144]') is an error, not a case run
twice. A flag is given once too: given twice, in one spelling or two
(-t unix -t pipe, -d 1s -duration 2s), it is an error, not the last one
winning. A flag that no selected workload uses is an error, not ignored:
-rate without the rate workload, -conns without fanin, -framing with http
alone (HTTP frames its own), -d with -n (which measures a count instead),
-format with -q (which prints no summary), -peer without -connect. A flag given an empty value (-placement "", an unset shell
variable) is an error too, never the default: leave a flag out for that.

Workloads (-w):
%s
Transports (-t): %s, or all`

const runExamples = `  ipcbench run                                        # default suite (about 3 minutes)
  ipcbench run -t unix,pipe -w pingpong -s 64,64k     # two transports, two sizes
  ipcbench run -w fanin -conns 1,4,16 -s 64            # concurrency
  ipcbench run -w rate -rate 20000 -d 2s               # open loop at 20k msg/s
  ipcbench run -w connect -s 64                        # connection setup cost
  ipcbench run -w fanin -conns 1,64 -s 1k -peer-model goroutine,thread,process,poll   # server models
  ipcbench run -t pipe,unix -w pingpong,stream -peer-source inherit,address,serve   # peer sources
  ipcbench run -placement same-core,cross-core         # placement as a dimension
  ipcbench run -d 1s -repeats 10 -out run.jsonl        # steadier numbers for citing
  ipcbench run -out - -q | ipcbench report -format csv -   # raw records through a pipe
  ipcbench run -t unix -connect /tmp/ipcb/s -w pingpong,stream   # against 'ipcbench serve -t unix -listen /tmp/ipcb/s'
  ipcbench run -t tcp-localhost -connect 127.0.0.1:7000 -peer echo -w pingpong,fanin -s 64   # any echo server, length-prefixed
  ipcbench run -t unix -connect /tmp/echo.sock -peer echo -framing delimited -w pingpong      # a line echo server
`

// maxBufferSize is the largest -buffer.
const maxBufferSize = 1 << 30

// runFlags are the parsed flags of `ipcbench run`.
type runFlags struct {
	transports, workloads, sizes, conns, placements, pin string
	duration, warmup, timeout                            time.Duration
	repeats, rate                                        int
	count                                                int64
	buffer, framing, out, format, network                string
	peerModels, peerSources                              string
	connect, peerKind                                    string
	quiet, force                                         bool
	// typed maps the long name of every flag given (-t's is transports)
	// to the spelling given, for errors to name it as typed; see name.
	typed map[string]string
}

// given reports whether the flag whose long spelling is long ("n",
// "workloads") was given.
func (f *runFlags) given(long string) bool {
	_, ok := f.typed[long]
	return ok
}

// name returns the flag whose long spelling is long ("transports") as the
// command line gave it ("-t"), or as long when it was not given.
func (f *runFlags) name(long string) string {
	if n, ok := f.typed[long]; ok {
		return "-" + n
	}
	return "-" + long
}

func cmdRun(ctx context.Context, e *env, args []string) error {
	var f runFlags
	var wl strings.Builder
	for _, w := range bench.Workloads() {
		fmt.Fprintf(&wl, "  %-9s %s\n", w, bench.WorkloadDoc(w))
	}
	fs := newFlagSet(e, "run", fmt.Sprintf(runSynopsis, strings.TrimRight(wl.String(), "\n"), strings.Join(all.Names(), ", ")), runExamples)
	fs.StringVar(&f.transports, "t", "all", "transports, comma-separated, or all; a variant's options in brackets: tcp-localhost[nodelay=false]")
	fs.StringVar(&f.transports, "transports", "all", "same as -t")
	fs.StringVar(&f.workloads, "w", strings.Join(bench.DefaultWorkloads, ","), "workloads, comma-separated: "+strings.Join(bench.Workloads(), ", "))
	fs.StringVar(&f.workloads, "workloads", strings.Join(bench.DefaultWorkloads, ","), "same as -w")
	fs.StringVar(&f.sizes, "s", "64,1k,16k,64k,1MiB", fmt.Sprintf("message sizes, comma-separated, binary units (4k = 4096 B), each at most %s; fanin, rate and connect run at the first one only", bench.FormatSize(bench.MaxMessageSize)))
	fs.StringVar(&f.sizes, "sizes", "64,1k,16k,64k,1MiB", "same as -s")
	fs.StringVar(&f.conns, "conns", "4", fmt.Sprintf("connection counts of the fanin workload, comma-separated, each at most %d (only with fanin in -w)", bench.MaxFaninConns))
	fs.DurationVar(&f.duration, "d", bench.DefaultDuration, "measured interval of each case, at most "+units.FormatDuration(bench.MaxDuration))
	fs.DurationVar(&f.duration, "duration", bench.DefaultDuration, "same as -d")
	fs.Int64Var(&f.count, "n", 0, fmt.Sprintf("measure exactly this many messages per case instead of a duration, not with -d (fanin: split across its connections, at least one each); at most %d", bench.MaxCount))
	fs.DurationVar(&f.warmup, "warmup", bench.DefaultWarmup, "warm-up before each measured interval, excluded from the numbers; 0 for none; at most "+units.FormatDuration(bench.MaxDuration))
	fs.IntVar(&f.repeats, "repeats", bench.DefaultRepeats, fmt.Sprintf("runs of each case, interleaved across cases; at most %d", bench.MaxRepeats))
	fs.IntVar(&f.rate, "rate", bench.DefaultRate, fmt.Sprintf("target messages/s of the rate workload (only with rate in -w); at most %d", bench.MaxRate))
	fs.StringVar(&f.placements, "placement", "unpinned", "where the two processes run, comma-separated: unpinned, same-core, cross-core, or BENCHCPUS/PEERCPUS like 0/1")
	fs.StringVar(&f.pin, "pin", "", "pin the bench and peer processes: BENCHCPUS/PEERCPUS, e.g. 0/1 (same as -placement 0/1; not with -placement)")
	fs.StringVar(&f.buffer, "buffer", "", fmt.Sprintf("kernel socket/pipe buffer or ring size for every transport, at most %s (default: the system's)", bench.FormatSize(maxBufferSize)))
	fs.StringVar(&f.framing, "framing", "length", "message framing: length (4-byte big-endian prefix), delimited (newline), fixed (every message the case's size; not for stream)")
	fs.StringVar(&f.out, "out", "", "raw records file (JSON Lines), a new file (see -force); missing directories are created; - for stdout (the summary then goes to stderr); default ipcbench-<time>.jsonl, or when that is taken the first free name of ipcbench-<time>-2.jsonl, -3, ...")
	fs.BoolVar(&f.force, "force", false, "replace an existing -out file, once the new one is complete (never through a symbolic link)")
	fs.StringVar(&f.format, "format", "table", "summary format: "+strings.Join(report.Formats(), ", "))
	fs.BoolVar(&f.quiet, "q", false, "no progress display and no summary (raw records only); notes on what the run does not measure as asked (fanin, rate and connect at the first size of -s only; no private network namespace) still go to stderr")
	fs.BoolVar(&f.quiet, "quiet", false, "same as -q")
	fs.StringVar(&f.network, "network", "netns", "netns: measure inside a private network namespace; host: on this host's own interfaces")
	fs.StringVar(&f.peerModels, "peer-model", peer.ModelGoroutine, "the peer's server models, comma-separated, each a variant: "+strings.Join(peer.Models(), ", ")+" (goroutine per connection, OS thread per connection, process per connection, one epoll loop)")
	fs.StringVar(&f.peerSources, "peer-source", bench.SourceInherit, "how the peer reaches the bench, comma-separated, each a variant (\"via=\"): "+strings.Join(bench.PeerSources(), ", ")+" (see above)")
	fs.StringVar(&f.connect, "connect", "", "measure against a server already listening at this address (one transport in -t) instead of starting a peer per case")
	fs.StringVar(&f.peerKind, "peer", "serve", "with -connect, what listens there: serve (ipcbench serve) or echo (any server that echoes every message with -framing)")
	fs.DurationVar(&f.timeout, "case-timeout", 0, "give up on a case after this long, the peer's start included; more than warm-up + duration (with -n, more than warm-up); at most "+units.FormatDuration(bench.MaxCaseTimeout)+" (default: warm-up + duration + 15s; with -n, none on the whole case: warm-up + 1m until the measured interval begins, then it fails only after a minute in which no message was measured)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	long := map[string]string{"t": "transports", "w": "workloads", "s": "sizes", "d": "duration", "q": "quiet"}
	f.typed = map[string]string{}
	fs.Visit(func(fl *flag.Flag) {
		l := fl.Name
		if ll, ok := long[l]; ok {
			l = ll
		}
		f.typed[l] = fl.Name // every flag given, by its long name
	})
	opts, err := f.options()
	if err != nil {
		return err
	}
	if !contains(report.Formats(), f.format) {
		return usagef("-format %q: unknown format (known: %s)", f.format, strings.Join(report.Formats(), ", "))
	}
	if f.given("format") && f.quiet {
		return usagef("-format %s with %s, which prints no summary to format: give one", f.format, f.name("quiet"))
	}
	// Every option, the transports' own included, is checked here, before
	// the network namespace is made and before any case runs.
	runner, err := bench.NewRunner(opts)
	if err != nil {
		return f.optionError(err)
	}
	outPath := f.out
	if outPath == "" {
		// A made-up name: taken, it is no error, the records take the
		// next free one (bench.CreateNumberedOutput), so two runs started
		// in one second never collide.
		outPath = "ipcbench-" + time.Now().Format("20060102-150405") + ".jsonl"
	} else if outPath != "-" {
		// Refused now, not after -connect has opened a session on the
		// server or a network namespace has been made.
		if err := checkOutput("-out", outPath, f.force); err != nil {
			return err
		}
	}

	hdr := newHeader("run", args)
	network := f.network
	if opts.Remote != nil {
		// The server listens in this network namespace, not in a fresh one.
		if network != "host" && network != "netns" {
			return usagef("-network %q: want netns or host", network)
		}
		if f.given("network") && network != "host" {
			return usagef("-connect measures a server on this host's network; -network %s cannot reach it (leave -network out)", network)
		}
		network = "host"
		if err := runner.ProbeRemote(ctx, &hdr); err != nil {
			if ctx.Err() != nil {
				return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted while reaching the server at %s: %w", f.connect, ctx.Err())}
			}
			return usagef("-connect: %s", withoutSentinels(err, bench.ErrRemote))
		}
	}

	// The private network namespace: re-run this command inside one.
	started := time.Now()
	netMode, netNote, code, done, err := enterNetwork(network, append([]string{"run"}, args...))
	if killed := (*netns.KilledError)(nil); errors.As(err, &killed) && outPath != "-" {
		// The run inside had no chance to say where its records are.
		pattern := outPath + bench.PartialSuffix + "*"
		if f.out == "" {
			pattern = "ipcbench-*.jsonl" + bench.PartialSuffix + "*"
		}
		if left := filesSince(pattern, started); len(left) > 0 {
			return &exitError{code: code, err: fmt.Errorf("%w; the records it wrote until then are in %s", killed, strings.Join(left, ", "))}
		}
	}
	if err != nil {
		return err
	}
	if done {
		return &exitError{code: code}
	}

	// Where the records and the summary go.
	summaryOut := e.stdout
	var rawOut io.Writer
	var rawFile *bench.Output
	switch outPath {
	case "-":
		rawOut, summaryOut = e.stdout, e.stderr
	default:
		if f.out == "" {
			rawFile, err = bench.CreateNumberedOutput(outPath)
			if err != nil {
				return outputError("-out", outPath, err)
			}
		} else if rawFile, err = createOutput("-out", outPath, f.force); err != nil {
			return err
		}
		defer rawFile.Abort()
		rawOut = rawFile
	}
	hdr.Network, hdr.NetworkNote = netMode, netNote
	if opts.Remote != nil {
		netNote = ""
		hdr.NetworkNote = "the peer is the server at the -connect address, on this host's network"
	}
	for _, note := range runNotes(f.quiet, network == "host", netNote, f.firstSizeNote(opts)) {
		fmt.Fprintf(e.stderr, "ipcbench run: note: %s\n", note)
	}

	var disp *progress.Display
	if !f.quiet {
		disp = progress.Start(e.stderr, true, progress.DefaultInterval, func() progress.Snapshot {
			d, t, l := runner.Progress()
			return progress.Snapshot{Done: d, Total: t, Label: l}
		})
	}
	recs, runErr := runner.Run(ctx, hdr, rawOut)
	if disp != nil {
		disp.Stop()
	}
	// The records take -out's name once every case is recorded (failed
	// ones included). An interrupt or an error leaves records worth
	// reading too: they take the name if it was free, and otherwise stay
	// beside the file -force would have replaced, which is left whole.
	recsPath := outPath
	if rawFile != nil {
		if runErr == nil || errors.Is(runErr, bench.ErrCasesFailed) || errors.Is(runErr, bench.ErrNothingMeasured) {
			if err := rawFile.Commit(); err != nil && runErr == nil {
				runErr = err
			} else if err != nil {
				fmt.Fprintf(e.stderr, "ipcbench run: %v\n", err)
			}
			recsPath = rawFile.Where() // -out's name, or where they stayed when it could not be given
		} else {
			recsPath = keepRecords(e, "run", rawFile) // "": nothing was recorded, and no file is left
		}
	}
	// The file's name, unless -q was given with it: the default one is
	// made up here, and only this line tells it. It comes before the
	// summary, which a reader that closes stdout early (| head -1) would
	// otherwise keep it from: SIGPIPE ends the process in the summary's
	// write.
	if rawFile != nil && recsPath != "" && (!f.quiet || f.out == "") {
		fmt.Fprintf(e.stderr, "raw records: %s\n", recsPath)
	}
	// The summary of whatever was recorded, whatever ended the run: an
	// interrupt or failed cases leave records worth reading.
	if !f.quiet && recs != nil {
		recs.Source = recsPath
		if outPath == "-" {
			recs.Source = "standard output" // the summary's "raw records: -" would read as a file named -
		}
		if err := report.Render(summaryOut, f.format, recs); err != nil && runErr == nil {
			runErr = fmt.Errorf("rendering the summary: %w", err)
		}
	}
	switch {
	case ctx.Err() != nil:
		// An interrupt is exit 130 at every moment, whatever else failed
		// as the run stopped (a peer's start, a case, the summary).
		if runErr == nil {
			runErr = fmt.Errorf("interrupted after the last case: %w", ctx.Err())
		}
		return &exitError{code: exitInterrupted, err: runErr}
	case runErr == nil:
		return nil
	case errors.Is(runErr, bench.ErrPeerStart):
		return &exitError{code: exitPeerStart, err: runErr}
	}
	return runErr
}

// optionError is the usage error for err, an error of bench.Options's
// validation (a value given twice, a CPU this process may not run on),
// naming the flag, as typed, of the field it is about.
func (f *runFlags) optionError(err error) error {
	var oe *bench.OptionError
	if errors.As(err, &oe) {
		if fl := f.flagOf(oe.Field); fl != "" {
			return usagef("%s", flagLed(fl, withoutSentinels(oe.Err, bench.ErrBadOptions), optionWords[oe.Field]...))
		}
	}
	return usagef("%s", withoutSentinels(err, bench.ErrBadOptions))
}

// runNotes returns the notes a run prints on stderr before its first
// case: netNote, what -network came to (enterNetwork), and sizeNote
// (firstSizeNote). Those that say what the run does not measure as asked
// are warnings, printed with -q too: sizeNote, and netNote when the host
// network was not asked for (no private namespace could be made). With
// hostAsked (-network host, or -connect) netNote only repeats the choice,
// which -q leaves out, as it leaves out the progress display.
func runNotes(quiet, hostAsked bool, netNote, sizeNote string) []string {
	var notes []string
	if netNote != "" && (!quiet || !hostAsked) {
		notes = append(notes, netNote)
	}
	if sizeNote != "" {
		notes = append(notes, sizeNote)
	}
	return notes
}

// firstSizeNote says which selected workloads run at the first of
// several sizes given with -s only (see bench.FirstSizeOnly), or "" when
// none does or -s was not given (the default suite says so in -help).
func (f *runFlags) firstSizeNote(o bench.Options) string {
	if !f.given("sizes") || len(o.Sizes) < 2 {
		return ""
	}
	var ws []string
	for _, w := range o.Workloads {
		if bench.FirstSizeOnly(w) {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return ""
	}
	list, verb := ws[0], "runs"
	if n := len(ws); n > 1 {
		list, verb = strings.Join(ws[:n-1], ", ")+" and "+ws[n-1], "run"
	}
	return fmt.Sprintf("%s %s at %s only, the first size of %s (to measure at another, run again with it first)", list, verb, units.FormatSize(o.Sizes[0]), f.name("sizes"))
}

// optionWords are the words a bench.OptionError's text calls the value of
// a field by, at its start ("count 10 is fewer..."), where they differ
// from its flag's name (see flagLed).
var optionWords = map[string][]string{
	"Placements":  {"placement"},
	"Count":       {"count"},
	"BufferSize":  {"buffer size"},
	"Duration":    {"duration"},
	"Warmup":      {"warm-up"},
	"CaseTimeout": {"case timeout"},
	"FaninConns":  {"connection count"},
	"Sizes":       {"size"},
	"PeerModels":  {"peer model"},
	"PeerSources": {"peer source"},
	"Workloads":   {"workload"},
}

// flagOf returns the flag, as the command line gave it, that sets field
// (an OptionError's Field) of bench.Options, or "" for none.
func (f *runFlags) flagOf(field string) string {
	switch field {
	case "Transports":
		return f.name("transports")
	case "Workloads":
		return f.name("workloads")
	case "Sizes":
		return f.name("sizes")
	case "Duration":
		return f.name("duration")
	case "PeerModels":
		return "-peer-model"
	case "PeerSources":
		return "-peer-source"
	case "FaninConns":
		return "-conns"
	case "Count":
		return "-n"
	case "Warmup":
		return "-warmup"
	case "Repeats":
		return "-repeats"
	case "Rate":
		return "-rate"
	case "Placements":
		if f.given("pin") {
			return "-pin"
		}
		return "-placement"
	case "BufferSize":
		return "-buffer"
	case "CaseTimeout":
		return "-case-timeout"
	case "Remote":
		return "-connect"
	}
	return ""
}

// options turns the flags into bench.Options, naming the bad value on error.
func (f *runFlags) options() (bench.Options, error) {
	var o bench.Options
	trs, err := parseTransports(f.name("transports"), f.transports)
	if err != nil {
		return o, err
	}
	o.Transports = trs
	for _, m := range splitList(f.peerModels) {
		if err := peer.CheckModel(m); err != nil {
			return o, usagef("-peer-model: %v", err)
		}
		o.PeerModels = append(o.PeerModels, m)
	}
	for _, src := range splitList(f.peerSources) {
		if !slices.Contains(bench.PeerSources(), src) {
			return o, usagef("-peer-source: unknown source %q (want %s)", src, strings.Join(bench.PeerSources(), ", "))
		}
		o.PeerSources = append(o.PeerSources, src)
	}
	for _, w := range splitList(f.workloads) {
		if bench.WorkloadDoc(w) == "" {
			return o, usagef("%s: unknown workload %q (known: %s)", f.name("workloads"), w, strings.Join(bench.Workloads(), ", "))
		}
		o.Workloads = append(o.Workloads, w)
	}
	if f.connect != "" && f.peerKind == "echo" && !f.given("workloads") {
		// Against an echo server the default workloads are those it
		// answers (see -help).
		o.Workloads = slices.DeleteFunc(o.Workloads, func(w string) bool { return bench.NotEcho(w) != "" })
	}
	if o.Sizes, err = bench.ParseSizes(f.sizes, bench.MaxMessageSize); err != nil {
		return o, usagef("%s: %v", f.name("sizes"), err)
	}
	for _, c := range splitList(f.conns) {
		var n int
		if _, err := fmt.Sscanf(c, "%d", &n); err != nil || n <= 0 || fmt.Sprint(n) != c {
			return o, usagef("-conns: bad connection count %q (want positive whole numbers, comma-separated)", c)
		}
		o.FaninConns = append(o.FaninConns, n)
	}
	// A flag that no selected workload uses would be taken and ignored
	// (and -conns recorded in the header all the same).
	workloads := o.Workloads
	if len(workloads) == 0 {
		workloads = bench.DefaultWorkloads
	}
	unused := func(flag, value, workload string) error {
		where := fmt.Sprintf("it is not in %s %s; add it there", f.name("workloads"), f.workloads)
		if !f.given("workloads") {
			where = fmt.Sprintf("it is not among the default workloads (%s); add it with -w", strings.Join(workloads, ","))
		}
		return usagef("%s %s: only the %s workload uses it, and %s, or leave %s out", flag, value, workload, where, flag)
	}
	if f.given("rate") && !contains(workloads, "rate") {
		return o, unused("-rate", fmt.Sprint(f.rate), "rate")
	}
	if f.given("conns") && !contains(workloads, "fanin") {
		return o, unused("-conns", f.conns, "fanin")
	}
	if f.given("framing") && !slices.ContainsFunc(workloads, bench.UsesFraming) {
		return o, usagef("-framing %s: no selected workload frames its messages with it (%s frames its own); leave -framing out", f.framing, strings.Join(workloads, ","))
	}
	// -n replaces -duration (see -help): -d is then not used, and not
	// taken.
	if f.given("n") && f.given("duration") {
		return o, usagef("%s %v and -n %d: -n measures a count of messages instead of a duration; give one", f.name("duration"), f.duration, f.count)
	}
	if f.duration <= 0 && f.count == 0 {
		return o, usagef("%s %v: must be positive", f.name("duration"), f.duration)
	}
	// The upper bounds are bench.Options's (NewRunner checks them too),
	// checked here to name the flag.
	if f.duration > bench.MaxDuration {
		return o, usagef("%s %v: at most %s", f.name("duration"), f.duration, units.FormatDuration(bench.MaxDuration))
	}
	if f.given("n") && f.count <= 0 {
		return o, usagef("-n %d: must be positive (leave -n out to measure for a duration)", f.count)
	}
	if f.count > bench.MaxCount {
		return o, usagef("-n %d: at most %d", f.count, bench.MaxCount)
	}
	o.Count = f.count
	if f.warmup < 0 {
		return o, usagef("-warmup %v: must not be negative", f.warmup)
	}
	if f.warmup > bench.MaxDuration {
		return o, usagef("-warmup %v: at most %s", f.warmup, units.FormatDuration(bench.MaxDuration))
	}
	if f.repeats <= 0 {
		return o, usagef("-repeats %d: must be positive", f.repeats)
	}
	if f.repeats > bench.MaxRepeats {
		return o, usagef("-repeats %d: at most %d", f.repeats, bench.MaxRepeats)
	}
	if f.rate <= 0 {
		return o, usagef("-rate %d: must be positive", f.rate)
	}
	if f.rate > bench.MaxRate {
		return o, usagef("-rate %d: at most %d", f.rate, bench.MaxRate)
	}
	if f.given("case-timeout") && f.timeout <= 0 {
		return o, usagef("-case-timeout %v: must be positive", f.timeout)
	}
	if f.timeout > bench.MaxCaseTimeout {
		return o, usagef("-case-timeout %v: at most %s", f.timeout, units.FormatDuration(bench.MaxCaseTimeout))
	}
	if f.given("case-timeout") {
		// A case lasts its warm-up and its measured interval (with -n, its
		// warm-up and then as long as the count takes), plus its peer's
		// start: a timeout no longer than that fails every case.
		least, what := f.warmup+f.duration, fmt.Sprintf("the warm-up plus the duration (%v + %v)", f.warmup, f.duration)
		if f.count > 0 {
			least, what = f.warmup, "the warm-up"
		}
		if f.timeout <= least {
			return o, usagef("-case-timeout %v: every case would time out; give more than %s, %v, or leave it out", f.timeout, what, least)
		}
	}
	o.Duration, o.Warmup, o.Repeats, o.Rate, o.CaseTimeout = max(f.duration, 0), f.warmup, f.repeats, f.rate, f.timeout
	if f.warmup == 0 {
		o.Warmup = bench.NoWarmup // -warmup 0 asks for none; unset, the flag holds the default
	}
	pls := splitList(f.placements)
	if f.given("pin") {
		// -pin is a shorthand for one placement, not one more.
		if f.given("placement") {
			return o, usagef("-pin %s and -placement %s: give one (-pin B/P is -placement B/P)", f.pin, f.placements)
		}
		pls = []string{f.pin}
	}
	for _, p := range pls {
		pl, err := bench.ParsePlacement(p)
		if err != nil {
			return o, f.optionError(err)
		}
		o.Placements = append(o.Placements, pl)
	}
	if f.buffer != "" {
		if o.BufferSize, err = bench.ParseSize(f.buffer, maxBufferSize); err != nil {
			return o, usagef("-buffer: %v", err)
		}
	}
	mode, err := frame.ParseMode(f.framing)
	if err != nil {
		return o, usagef("-framing: %s", withoutSentinels(err, frame.ErrBadConfig))
	}
	o.Frame = frame.Config{Mode: mode, MaxSize: bench.MaxMessageSize}
	if mode == frame.Fixed && contains(o.Workloads, "stream") {
		if !f.given("workloads") {
			return o, usagef("-framing fixed cannot mark the end of a stream, and stream is among the default workloads (%s): name the others with -w, or use -framing length or delimited", strings.Join(o.Workloads, ","))
		}
		return o, usagef("-framing fixed cannot mark the end of a stream; use length or delimited with the stream workload")
	}
	switch {
	case f.connect != "":
		if f.given("peer-source") {
			return o, usagef("-peer-source says how the run starts its own peer; with -connect the server is already running")
		}
		o.PeerSources = nil
		for _, m := range o.PeerModels {
			if m != peer.ModelGoroutine {
				return o, usagef("-peer-model %s: the server models are those of the peer the run starts; with -connect the server serves as it was started", f.peerModels)
			}
		}
		if f.peerKind != "serve" && f.peerKind != "echo" {
			return o, usagef("-peer %q: want serve or echo", f.peerKind)
		}
		if !f.given("transports") {
			return o, usagef("-connect: name the transport the server listens on with -t (one of %s)", strings.Join(servableNames(), ", "))
		}
		if len(o.Transports) != 1 {
			return o, usagef("-connect: the server listens on one transport; give exactly one with %s, not %d", f.name("transports"), len(o.Transports))
		}
		if !transports.DialsByAddress(o.Transports[0].Transport) {
			return o, usagef("%s %s: its connections are handed to a child process as files, not dialed by address, so no server can be reached with -connect; choose another transport", f.name("transports"), f.transports)
		}
		for _, w := range o.Workloads {
			if why := bench.NotEcho(w); f.peerKind == "echo" && why != "" {
				return o, usagef("-peer echo: the %s workload %s; against an echo server %s takes only %s", w, why, f.name("workloads"), orList(bench.EchoWorkloads()))
			}
		}
		o.Remote = &bench.Remote{Address: f.connect, Echo: f.peerKind == "echo"}
		return o, nil
	case f.given("peer"):
		return o, usagef("-peer %s needs -connect ADDRESS: it says what listens there", f.peerKind)
	}
	exe, err := os.Executable()
	if err != nil {
		return o, fmt.Errorf("finding this executable to start peers: %w", err)
	}
	o.Peer.Path, o.Peer.Args = exe, []string{"peer"}
	return o, nil
}

// parseTransports resolves a comma-separated list of transports with
// optional variants ("unix,tcp-localhost[nodelay=false]"), or "all", and
// has each transport check its options, so that a bad variant is a usage
// error before anything runs.
// flag names the flag as the command line gave it, for the error.
func parseTransports(flag, s string) ([]bench.TransportSpec, error) {
	rs, err := all.ResolveList(s)
	if err != nil {
		return nil, usagef("%s: %v", flag, err)
	}
	specs := make([]bench.TransportSpec, len(rs))
	for i, r := range rs {
		specs[i] = bench.TransportSpec{Transport: r.Transport, Options: r.Spec.Options}
	}
	return specs, nil
}

// orList joins l as "a, b or c".
func orList(l []string) string {
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " or " + l[len(l)-1]
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
