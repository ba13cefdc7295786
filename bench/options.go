package bench

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
	"github.com/ipcbench/ipcbench/internal/units"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// Defaults of a run. They are chosen so that the default suite (five
// transports, pingpong and stream at five sizes, fanin at 4 connections,
// six repeats) finishes in under three minutes on a 2-core machine; longer
// intervals (--duration 1s or more) give steadier numbers and are what
// docs/methodology.md §6 recommends for citable results.
//
// Six repeats, not five: the 95% confidence interval of a median that the
// reports give (distribution-free, as benchstat computes it) is unbounded
// with five samples or fewer.
const (
	DefaultDuration = 300 * time.Millisecond
	DefaultWarmup   = 100 * time.Millisecond
	DefaultRepeats  = 6
	DefaultRate     = 10000
	// MaxMessageSize is the largest message size a run accepts.
	MaxMessageSize = 64 << 20
	// MaxFaninConns is the largest connection count of a fanin case: the
	// most connections one peer serves (peer.MaxConns).
	MaxFaninConns = peer.MaxConns
)

// Upper bounds of Options. They are far beyond what a run needs (a day of
// warm-up, a day of measuring), and they keep every sum and product the
// runner makes of the options within int64: a case's default timeout
// (Warmup+Duration+15s), the number of case runs (the plan's length times
// Repeats), the bytes a case moves (Count times MaxMessageSize), and the
// rate workload's schedule (Count times a period of up to 1 s).
const (
	// MaxDuration is the longest Duration, and the longest Warmup.
	MaxDuration = 24 * time.Hour
	// MaxCaseTimeout is the longest CaseTimeout: long enough to exceed
	// the longest warm-up plus the longest duration.
	MaxCaseTimeout = 3 * MaxDuration
	// MaxRepeats is the most Repeats.
	MaxRepeats = 10_000
	// MaxCount is the largest Count.
	MaxCount = 1_000_000_000
	// MaxRate is the largest Rate, in messages/s.
	MaxRate = 10_000_000
)

// NoWarmup, as Options.Warmup, asks for no warm-up at all: measurement
// begins as soon as the peer is connected. (A zero Warmup means
// DefaultWarmup.) The header then records a warm-up of "0s".
const NoWarmup time.Duration = -1

// DefaultSizes are the message sizes of the default suite.
var DefaultSizes = []int{64, 1 << 10, 16 << 10, 64 << 10, 1 << 20}

// DefaultWorkloads run by `ipcbench run` when none are named.
var DefaultWorkloads = []string{"pingpong", "stream", "fanin"}

// DefaultFaninConns are the connection counts of the fanin workload.
var DefaultFaninConns = []int{4}

// ErrBadOptions is wrapped by every validation error of Options, each an
// *OptionError.
var ErrBadOptions = errors.New("bad options")

// OptionError is the error of NewRunner (and ParsePlacement) for an
// invalid field of Options: Field names it, for a program to say which of
// its own settings is wrong (the ipcbench CLI maps "Sizes" to -s, "Rate"
// to -rate). It wraps ErrBadOptions and Err.
type OptionError struct {
	// Field is the name of the field of Options at fault: "Transports",
	// "PeerModels", "PeerSources", "Workloads", "Sizes", "FaninConns",
	// "Duration", "Count", "Warmup", "Repeats", "Rate", "Placements",
	// "BufferSize", "CaseTimeout" or "Remote".
	Field string
	// Err says what is wrong with it ("size 64B given twice"), without
	// ErrBadOptions's text; it wraps the error of a transport's own check
	// of its options.
	Err error
}

// Error returns ErrBadOptions's text and Err's: "bad options: size 64B
// given twice".
func (e *OptionError) Error() string { return ErrBadOptions.Error() + ": " + e.Err.Error() }

// Unwrap returns ErrBadOptions and Err, for errors.Is and errors.As.
func (e *OptionError) Unwrap() []error { return []error{ErrBadOptions, e.Err} }

// badOption returns an *OptionError for field, its Err formatted as
// fmt.Errorf formats it (%w included).
func badOption(field, format string, a ...any) error {
	return &OptionError{Field: field, Err: fmt.Errorf(format, a...)}
}

// Placement says where the two processes of a case run. An empty CPU list
// leaves that process to the scheduler.
type Placement struct {
	Name  string // "unpinned", "same-core", "cross-core" or "cpus=B/P"
	Bench []int
	Peer  []int
}

// ParsePlacement parses "unpinned", "same-core" (both on CPU 0),
// "cross-core" (bench on CPU 0, peer on CPU 1), or an explicit "B/P" pair of
// CPU lists such as "0/1" or "0-1/2-3". Its error is an *OptionError for
// Placements.
func ParsePlacement(s string) (Placement, error) {
	switch s {
	case "", "unpinned":
		return Placement{Name: "unpinned"}, nil
	case "same-core":
		return Placement{Name: s, Bench: []int{0}, Peer: []int{0}}, nil
	case "cross-core":
		return Placement{Name: s, Bench: []int{0}, Peer: []int{1}}, nil
	}
	b, p, ok := strings.Cut(s, "/")
	if !ok {
		return Placement{}, badOption("Placements", "placement %q: want unpinned, same-core, cross-core or BENCHCPUS/PEERCPUS like 0/1", s)
	}
	bc, err := sysinfo.ParseCPUList(b)
	if err != nil {
		return Placement{}, badOption("Placements", "placement %q: bench CPUs: %s", s, cpuListProblem(err))
	}
	pc, err := sysinfo.ParseCPUList(p)
	if err != nil {
		return Placement{}, badOption("Placements", "placement %q: peer CPUs: %s", s, cpuListProblem(err))
	}
	return Placement{Name: "cpus=" + s, Bench: bc, Peer: pc}, nil
}

// given is p's name as ParsePlacement was given it: BENCHCPUS/PEERCPUS
// for a placement of CPU lists, which reports call cpus=BENCHCPUS/PEERCPUS.
// Errors about a placement name it so.
func (p Placement) given() string { return strings.TrimPrefix(p.Name, "cpus=") }

// cpuListProblem returns the text of err, an error of
// sysinfo.ParseCPUList, without its sentinel's ("sysinfo: bad CPU list"),
// which names an internal package: what is wrong with the list is all a
// placement's error needs to say.
func cpuListProblem(err error) string {
	return strings.TrimPrefix(err.Error(), sysinfo.ErrBadCPUList.Error()+": ")
}

// checkPlacements returns an *OptionError for Placements when a placement
// pins either process to a CPU outside allowed (the CPUs this process may
// run on), which the kernel would refuse only once the case runs.
func checkPlacements(pls []Placement, allowed []int) error {
	for _, p := range pls {
		for _, c := range slices.Concat(p.Bench, p.Peer) {
			if !slices.Contains(allowed, c) {
				return badOption("Placements", "placement %s: CPU %d is not one this process may run on (%s)", p.given(), c, sysinfo.FormatCPUList(allowed))
			}
		}
	}
	return nil
}

// Options describe a benchmark run. NewRunner fills zero fields with the
// defaults above.
type Options struct {
	// Transports to measure, each with the options of its variant, in the
	// order reports list them when tied.
	Transports []TransportSpec
	// PeerModels, when set, are the server models (peer.Models) every
	// transport is measured with: each TransportSpec is planned once per
	// model, as a variant (its PeerModel set), overriding its own
	// PeerModel. Empty keeps each spec's PeerModel.
	PeerModels []string
	// PeerSources, when set, are how the peer of every transport is
	// started and reaches the bench (PeerSources(): inherit, address,
	// serve): each TransportSpec is planned once per source, as a variant
	// (its PeerSource set), after the models, so that repeats of all of
	// them interleave in one run. Empty keeps each spec's PeerSource. The
	// serve source starts Peer's executable with the arguments peer.ServeArg,
	// -t SPEC, -listen ADDRESS: the ipcbench binary's serve command, or in
	// a program that calls peer.RunIfPeer first, that program. It cannot be
	// combined with Remote.
	PeerSources []string
	// Workloads by name (see Workloads()).
	Workloads []string
	// Sizes are the payload sizes in bytes, each 1..MaxMessageSize.
	// The workloads of FirstSizeOnly (fanin, rate, connect) run at the
	// first one only.
	Sizes []int
	// FaninConns are the connection counts of the fanin workload, each
	// 1..MaxFaninConns.
	FaninConns []int
	// Duration is the measured interval of each case; Warmup precedes it
	// and is excluded. A zero Warmup means DefaultWarmup; NoWarmup means
	// none.
	Duration, Warmup time.Duration
	// Count, when positive, makes each case measure exactly this many
	// messages after the warm-up instead of running for Duration, split
	// across the connections for fanin (Count/conns each, the remainder one
	// more on as many connections). Fanin's Count must be at least its
	// largest number of connections.
	Count int64
	// Repeats is how many times each case runs; repeats are interleaved:
	// every case runs once before any case runs a second time.
	Repeats int
	// Rate is the target request rate (messages/s) of the rate workload.
	Rate int
	// Placements to run every case under. A placement that names a CPU
	// outside this process's affinity mask is an error.
	Placements []Placement
	// BufferSize, when positive, is passed to every transport's Listen
	// (kernel socket/pipe buffers, ring size).
	BufferSize int
	// Frame is the framing every workload uses (the same for every
	// transport); the zero value is 4-byte length prefixes.
	Frame frame.Config
	// Peer says how to start the peer process (executable, arguments);
	// Attach and CPUs are filled in per case. The zero value starts this
	// program's own executable without arguments: a program that imports
	// bench (or bench/choose) calls peer.RunIfPeer(all.Lookup) first in its
	// main, so that copy serves as the peer, and needs no ipcbench binary.
	// Without it the copy runs the program's normal main; its own attempt
	// to start a peer fails at once (peer.ErrStartFromPeer) and no case
	// here can start its peer: Run fails with ErrPeerStart, quoting the
	// copy's exit status and stderr. The ipcbench CLI sets Path to itself
	// and Args to ["peer"].
	Peer proc.Spec
	// CaseTimeout bounds one case from Listen to the peer's exit, the
	// peer's start included; a negative value is an error. A case that
	// exceeds it fails with a timeout instead of hanging. Zero means
	// Warmup+Duration+15s; in count mode (Count set), zero bounds the
	// case by its progress instead of its length, since how long a count
	// takes depends on the transport: Warmup+1m until the measured
	// interval begins, and from then on a minute in which no message was
	// measured.
	CaseTimeout time.Duration
	// Remote, when set, measures against a peer that is already running
	// at an address instead of starting one per case; Peer is then unused,
	// no placement may place the peer, BufferSize must be 0 (the remote
	// peer keeps the buffers it was started with), and no transport may
	// set an option its listener alone applies (transports.ListenerOnly:
	// shm-*'s mapping, pipe's pipe_size), which the remote peer decided.
	Remote *Remote
}

// Remote is a peer that runs on its own, reached at an address.
type Remote struct {
	// Address is what each transport dials: host:port for tcp-*, a socket
	// or rendezvous path for the others.
	Address string
	// Echo says the server is any echo server (one that writes every
	// message back unchanged, with Options.Frame), not `ipcbench serve`:
	// there is no control connection, so the peer's CPU time is unknown,
	// and only EchoWorkloads can run (not stream, which needs the
	// receiver's acknowledgement, nor http, which needs an HTTP server).
	Echo bool
}

// Describe says what the remote peer is: "serve ADDRESS" or "echo
// ADDRESS".
func (r *Remote) Describe() string {
	if r.Echo {
		return "echo " + r.Address
	}
	return "serve " + r.Address
}

// withDefaults returns o with zero fields defaulted, or an error naming the
// first invalid field.
func (o Options) withDefaults() (Options, error) {
	if len(o.Transports) == 0 {
		return o, badOption("Transports", "no transports")
	}
	for _, t := range o.Transports {
		if t.Transport == nil {
			return o, badOption("Transports", "a TransportSpec without a transport")
		}
		if oc, ok := t.Transport.(transports.OptionChecker); ok {
			if err := oc.CheckOptions(t.Options); err != nil {
				return o, badOption("Transports", "%s: %w", t.Label(), err)
			}
		}
	}
	for _, m := range o.PeerModels {
		if err := peer.CheckModel(m); err != nil || m == "" {
			return o, badOption("PeerModels", "peer model %q: want one of %s", m, strings.Join(peer.Models(), ", "))
		}
	}
	if err := checkUnique("PeerModels", "peer model", o.PeerModels, itself); err != nil {
		return o, err
	}
	if len(o.PeerModels) > 0 {
		o.Transports = expand(o.Transports, o.PeerModels, func(t *TransportSpec, m string) { t.PeerModel = m })
		o.PeerModels = nil
	}
	for _, t := range o.Transports {
		if err := peer.CheckModel(t.PeerModel); err != nil {
			return o, badOption("Transports", "%s: %w", t.Transport.Name(), err)
		}
	}
	for _, src := range o.PeerSources {
		if !slices.Contains(PeerSources(), src) {
			return o, badOption("PeerSources", "peer source %q: want one of %s", src, strings.Join(PeerSources(), ", "))
		}
	}
	if err := checkUnique("PeerSources", "peer source", o.PeerSources, itself); err != nil {
		return o, err
	}
	if len(o.PeerSources) > 0 {
		o.Transports = expand(o.Transports, o.PeerSources, func(t *TransportSpec, src string) { t.PeerSource = src })
		o.PeerSources = nil
	}
	// After the expansion: unix and unix[model=thread] are one case when
	// every transport is planned with the thread model. Compared without
	// options spelling out a default: unix[io=netpoll] is unix.
	if err := CheckUniqueTransports(o.Transports); err != nil {
		return o, err
	}
	for _, t := range o.Transports {
		if src := t.PeerSource; src != "" && !slices.Contains(PeerSources(), src) {
			return o, badOption("Transports", "%s: peer source %q: want one of %s", t.Transport.Name(), src, strings.Join(PeerSources(), ", "))
		}
	}
	if len(o.Workloads) == 0 {
		o.Workloads = DefaultWorkloads
	}
	for _, w := range o.Workloads {
		if workloadByName(w) == nil {
			return o, badOption("Workloads", "unknown workload %q (known: %s)", w, strings.Join(Workloads(), ", "))
		}
	}
	if err := checkUnique("Workloads", "workload", o.Workloads, itself); err != nil {
		return o, err
	}
	if len(o.Sizes) == 0 {
		o.Sizes = DefaultSizes
	}
	for _, s := range o.Sizes {
		if s <= 0 || s > MaxMessageSize {
			return o, badOption("Sizes", "size %d out of range 1..%s", s, units.FormatSize(MaxMessageSize))
		}
	}
	if err := checkUnique("Sizes", "size", o.Sizes, units.FormatSize); err != nil {
		return o, err
	}
	if len(o.FaninConns) == 0 {
		o.FaninConns = DefaultFaninConns
	}
	for _, c := range o.FaninConns {
		if c <= 0 || c > MaxFaninConns {
			return o, badOption("FaninConns", "connection count %d out of range 1..%d", c, MaxFaninConns)
		}
	}
	if err := checkUnique("FaninConns", "connection count", o.FaninConns, strconv.Itoa); err != nil {
		return o, err
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Duration < 0 {
		return o, badOption("Duration", "duration %v must be positive", o.Duration)
	}
	if o.Duration > MaxDuration {
		return o, badOption("Duration", "duration %v over the maximum, %s", o.Duration, units.FormatDuration(MaxDuration))
	}
	if o.Count < 0 {
		return o, badOption("Count", "count %d must not be negative", o.Count)
	}
	if o.Count > MaxCount {
		return o, badOption("Count", "count %d over the maximum, %d", o.Count, MaxCount)
	}
	if most := slices.Max(o.FaninConns); o.Count > 0 && o.Count < int64(most) && slices.Contains(o.Workloads, "fanin") {
		return o, badOption("Count", "count %d is fewer messages than fanin's %d connections: each needs at least one", o.Count, most)
	}
	switch {
	case o.Warmup == NoWarmup:
		o.Warmup = 0
	case o.Warmup == 0:
		o.Warmup = DefaultWarmup
	case o.Warmup < 0:
		return o, badOption("Warmup", "warm-up %v must not be negative (NoWarmup asks for none)", o.Warmup)
	case o.Warmup > MaxDuration:
		return o, badOption("Warmup", "warm-up %v over the maximum, %s", o.Warmup, units.FormatDuration(MaxDuration))
	}
	if o.Repeats == 0 {
		o.Repeats = DefaultRepeats
	}
	if o.Repeats < 0 {
		return o, badOption("Repeats", "repeats %d must be positive", o.Repeats)
	}
	if o.Repeats > MaxRepeats {
		return o, badOption("Repeats", "repeats %d over the maximum, %d", o.Repeats, MaxRepeats)
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Rate < 0 || o.Rate > MaxRate {
		return o, badOption("Rate", "rate %d out of range 1..%d msg/s", o.Rate, MaxRate)
	}
	if len(o.Placements) == 0 {
		o.Placements = []Placement{{Name: "unpinned"}}
	}
	if err := checkUnique("Placements", "placement", o.Placements, Placement.given); err != nil {
		return o, err
	}
	if allowed, err := sysinfo.Affinity(os.Getpid()); err == nil {
		if err := checkPlacements(o.Placements, allowed); err != nil {
			return o, err
		}
	}
	if o.BufferSize < 0 {
		return o, badOption("BufferSize", "buffer size %d must not be negative", o.BufferSize)
	}
	if o.CaseTimeout < 0 {
		return o, badOption("CaseTimeout", "case timeout %v must be positive", o.CaseTimeout)
	}
	if o.CaseTimeout > MaxCaseTimeout {
		return o, badOption("CaseTimeout", "case timeout %v over the maximum, %s", o.CaseTimeout, units.FormatDuration(MaxCaseTimeout))
	}
	if o.Remote != nil {
		if o.Remote.Address == "" {
			return o, badOption("Remote", "a remote peer without an address")
		}
		for _, t := range o.Transports {
			if m := t.Model(); m != peer.ModelGoroutine {
				return o, badOption("Remote", "server model %s: a remote peer serves as it was built and started; the server models are the spawned peer's", m)
			}
			if src := t.Source(); src != SourceInherit {
				return o, badOption("Remote", "peer source %s: a remote peer is already running; the peer sources say how the run starts its own", src)
			}
			if kv := transports.ListenerOnlyOption(t.Transport, t.Options); kv != "" {
				return o, badOption("Transports", "%s: option %s: the server decides it (it listens with the options it was started with, and a dialer's value is not used), so the records would name a variant this run does not measure; leave it out, and give it to the server when you start it", t.Transport.Name(), kv)
			}
		}
		for _, pl := range o.Placements {
			if len(pl.Peer) > 0 {
				return o, badOption("Placements", "placement %s places the peer too, and a remote peer runs where it was started; leave the placement out and pin this process with taskset, the server where you start it", pl.Name)
			}
		}
		if o.BufferSize > 0 {
			return o, badOption("BufferSize", "buffer size %s: a remote peer listens with the buffers it was started with, so only this side's would change; leave it out", units.FormatSize(o.BufferSize))
		}
		for _, w := range o.Workloads {
			if why := NotEcho(w); o.Remote.Echo && why != "" {
				return o, badOption("Workloads", "the %s workload %s; against an echo server only %s run (or measure against ipcbench serve)", w, why, strings.Join(EchoWorkloads(), ", "))
			}
		}
	}
	if o.CaseTimeout == 0 {
		o.CaseTimeout = o.Warmup + o.Duration + 15*time.Second
		if o.Count > 0 {
			o.CaseTimeout = o.Warmup + countStall // then bounded by progress: see Runner.stallAfter
		}
	}
	return o, nil
}

// itself names a string value for checkUnique.
func itself(s string) string { return s }

// checkUnique returns an *OptionError for field that names the first
// value of vs whose name an earlier value has, as what ("size", "transport")
// and that name: a value given twice would plan, and run, every one of its
// cases twice.
func checkUnique[T any](field, what string, vs []T, name func(T) string) error {
	seen := make(map[string]bool, len(vs))
	for _, v := range vs {
		n := name(v)
		if seen[n] {
			return badOption(field, "%s %s given twice", what, n)
		}
		seen[n] = true
	}
	return nil
}

// CheckUniqueTransports returns an *OptionError for Transports (wrapping
// ErrBadOptions), as NewRunner does, when two of trs are one variant: one
// CanonicalLabel. It names both spellings when they differ ("transport unix given twice, as
// unix and unix[io=netpoll]").
func CheckUniqueTransports(trs []TransportSpec) error {
	seen := make(map[string]string, len(trs))
	for _, t := range trs {
		c, l := t.CanonicalLabel(), t.Label()
		first, ok := seen[c]
		switch {
		case !ok:
			seen[c] = l
		case first == l:
			return badOption("Transports", "transport %s given twice", l)
		default:
			return badOption("Transports", "transport %s given twice, as %s and %s", c, first, l)
		}
	}
	return nil
}

// expand plans every transport of trs once per value of a dimension (a
// server model, a peer source), set in its copy by set, in the order
// transport by transport, then value by value.
func expand(trs []TransportSpec, values []string, set func(t *TransportSpec, v string)) []TransportSpec {
	out := make([]TransportSpec, 0, len(trs)*len(values))
	for _, t := range trs {
		for _, v := range values {
			set(&t, v)
			out = append(out, t)
		}
	}
	return out
}

// Describe returns the options as the string map recorded in the header:
// fanin_conns only when a workload of the run plans one case per
// connection count (fanin), rate only with the rate workload. (Runner.Run
// adds case_timeout when CaseTimeout was given, which Describe, called on
// options with their defaults filled in, cannot tell from the default.)
func (o Options) Describe() map[string]string {
	names := make([]string, len(o.Transports))
	for i, t := range o.Transports {
		names[i] = t.Label()
	}
	sizes := make([]string, len(o.Sizes))
	for i, s := range o.Sizes {
		sizes[i] = units.FormatSize(s)
	}
	pl := make([]string, len(o.Placements))
	for i, p := range o.Placements {
		pl[i] = p.Name
	}
	conns := make([]string, len(o.FaninConns))
	for i, c := range o.FaninConns {
		conns[i] = strconv.Itoa(c)
	}
	m := map[string]string{
		"transports":  strings.Join(names, ","),
		"workloads":   strings.Join(o.Workloads, ","),
		"sizes":       strings.Join(sizes, ","),
		"fanin_conns": strings.Join(conns, ","),
		"duration":    o.Duration.String(),
		"warmup":      o.Warmup.String(),
		"repeats":     strconv.Itoa(o.Repeats),
		"rate":        strconv.Itoa(o.Rate),
		"placements":  strings.Join(pl, ","),
		"framing":     o.Frame.Mode.String(),
		"timing":      "monotonic clock, round trip measured in the bench process",
	}
	if o.Remote != nil {
		m["peer"] = o.Remote.Describe()
	}
	if o.BufferSize > 0 {
		m["buffer_size"] = units.FormatSize(o.BufferSize)
	}
	if o.Count > 0 {
		m["count"] = strconv.FormatInt(o.Count, 10)
		delete(m, "duration")
	}
	// A setting no workload of the run uses is not one it ran with.
	var multi, rate bool
	ws := o.Workloads
	if len(ws) == 0 {
		ws = DefaultWorkloads
	}
	for _, name := range ws {
		if w := workloadByName(name); w != nil {
			multi = multi || w.multiConn
			rate = rate || w == rateWorkload
		}
	}
	if !multi {
		delete(m, "fanin_conns")
	}
	if !rate {
		delete(m, "rate")
	}
	return m
}
