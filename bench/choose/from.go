package choose

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// FromRun answers q from raw records measured earlier (bench.ReadRecordsFile),
// without measuring. It considers the results of q's workload (fanin with
// q.Conns connections when q asks for several) under q's placement; when
// none has q.Size, the nearest measured size (by ratio) answers and
// Answer.SizeNote says so. Measurement-only variants are left out of the
// ranking and listed in NotRanked. It returns an error wrapping
// ErrBadQuestion for a bad q and ErrNoAnswer when the records hold no
// matching case.
//
// When only names transports (specs as 'ipcbench run -t' takes them,
// variants included, "unix" being the default variant only), just their
// results are candidates, and each must have results for q's workload and
// placement, or FromRun fails with ErrNoAnswer naming it. Without only, or
// with "all" among them, every transport in the records is a candidate.
// The specs are checked as New checks them: an unknown transport, an
// option it refuses, a measurement-only variant, or one variant named
// twice (unix,unix[io=netpoll], or all beside unix) is an error wrapping
// ErrBadQuestion. Specs and
// records are compared by canonical label (bench.TransportSpec.CanonicalLabel),
// so unix[io=netpoll] selects unix's results.
func FromRun(run *bench.Records, q Question, only ...transports.Spec) (*Answer, error) {
	q, _, err := q.normalized()
	if err != nil {
		return nil, err
	}
	want, err := resolveOnly(only)
	if err != nil {
		return nil, err
	}
	wl := q.benchWorkload()
	source := run.Source // what the errors and notes call the records
	if source == "" {
		source = "the run"
	}
	// setting names a workload, placement and (for fanin) connection count.
	setting := func(workload, placement string, conns int) string {
		if workload == "fanin" {
			return fmt.Sprintf("%s %s ×%d", workload, placement, conns)
		}
		return workload + " " + placement
	}
	var match []bench.Result
	var settings []string
	for _, r := range run.Results {
		c := r.Case()
		if c.Workload != wl || c.Placement != q.Placement || (wl == "fanin" && c.Conns != q.Conns) {
			if s := setting(c.Workload, c.Placement, c.Conns); !slices.Contains(settings, s) {
				settings = append(settings, s)
			}
			continue
		}
		match = append(match, r)
	}
	if len(match) == 0 {
		has := "it has no results at all"
		if len(settings) > 0 {
			sort.Strings(settings)
			has = "it has: " + strings.Join(settings, ", ")
		}
		return nil, fmt.Errorf("%w: %s has no %s results (%s)", ErrNoAnswer, source, setting(wl, q.Placement, q.Conns), has)
	}
	match, err = onlyTransports(match, want, fmt.Sprintf("%s has no %s results", source, setting(wl, q.Placement, q.Conns)))
	if err != nil {
		return nil, err
	}
	size := nearestSize(match, q.Size)
	var same []bench.Result
	for _, r := range match {
		if r.Size == size {
			same = append(same, r)
		}
	}
	asked := q.Size
	q.Size = size
	a, err := answer(q, same, source)
	if err != nil {
		return nil, err
	}
	if size != asked {
		a.SizeNote = fmt.Sprintf("%s was not measured in %s; the nearest measured size, %s, answers", bench.FormatSize(asked), source, bench.FormatSize(size))
	}
	return a, nil
}

// resolveOnly resolves the specs of FromRun's only to canonical labels
// (unix[io=netpoll] is unix), nil for every transport (only empty or
// holding "all"). A spec that names no transport, has options its
// transport refuses, is measurement-only, or names a variant a second
// time (all,unix included) is an error wrapping ErrBadQuestion, as New
// gives.
func resolveOnly(only []transports.Spec) ([]string, error) {
	var specs []bench.TransportSpec
	every := false
	for _, s := range only {
		if s.Name == all.All {
			rs, err := all.ResolveList(s.String()) // every transport, or the error for options
			if err != nil {
				return nil, badOptions("Transports", err)
			}
			every = true
			for _, r := range rs {
				specs = append(specs, bench.TransportSpec{Transport: r.Transport})
			}
			continue
		}
		ts, err := transportSpec(s)
		if err != nil {
			return nil, badOptions("Transports", err)
		}
		if mo := transports.MeasurementOnlyOption(ts.Transport, ts.Options); mo != "" {
			return nil, badQuestion("Transports", "%s: option %s is measurement-only and never a choice", s, mo)
		}
		specs = append(specs, ts)
	}
	if err := bench.CheckUniqueTransports(specs); err != nil {
		return nil, badOptions("Transports", err)
	}
	if every || len(specs) == 0 {
		return nil, nil
	}
	want := make([]string, len(specs))
	for i, ts := range specs {
		want[i] = ts.CanonicalLabel()
	}
	return want, nil
}

// onlyTransports keeps the results whose canonical label want holds (all
// of them when want is nil), or returns an error wrapping ErrNoAnswer
// that says "where has no ... of" the first one without any result, and
// the transports there are.
func onlyTransports(results []bench.Result, want []string, where string) ([]bench.Result, error) {
	if want == nil {
		return results, nil
	}
	labels := make([]string, len(results))
	var have []string
	for i, r := range results {
		labels[i] = recordLabel(r)
		if !slices.Contains(have, labels[i]) {
			have = append(have, labels[i])
		}
	}
	for _, w := range want {
		if !slices.Contains(have, w) {
			sort.Strings(have)
			return nil, fmt.Errorf("%w: %s of %s (its transports there: %s)", ErrNoAnswer, where, w, strings.Join(have, ", "))
		}
	}
	var kept []bench.Result
	for i, r := range results {
		if slices.Contains(want, labels[i]) {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// transportSpec resolves sp, a transport spec as 'ipcbench run -t' takes
// it or a label as records hold it (a peer model or source among its
// options, "unix[model=thread]"), to the bench.TransportSpec it names.
// Errors are all.Resolve's, or name a bad model or source.
func transportSpec(sp transports.Spec) (bench.TransportSpec, error) {
	opts := maps.Clone(sp.Options)
	var ts bench.TransportSpec
	if m, ok := opts[bench.ModelKey]; ok {
		if err := peer.CheckModel(m); err != nil || m == "" {
			return ts, fmt.Errorf("%s: peer model %q: want one of %s", sp, m, strings.Join(peer.Models(), ", "))
		}
		ts.PeerModel = m
		delete(opts, bench.ModelKey)
	}
	if src, ok := opts[bench.SourceKey]; ok {
		if !slices.Contains(bench.PeerSources(), src) {
			return ts, fmt.Errorf("%s: peer source %q: want one of %s", sp, src, strings.Join(bench.PeerSources(), ", "))
		}
		ts.PeerSource = src
		delete(opts, bench.SourceKey)
	}
	r, err := all.Resolve(transports.Spec{Name: sp.Name, Options: opts}.String())
	if err != nil {
		return ts, err
	}
	ts.Transport, ts.Options = r.Transport, r.Spec.Options
	return ts, nil
}

// recordLabel is r's canonical transport label, or its label as recorded
// when this build does not know it.
func recordLabel(r bench.Result) string {
	label := r.Case().TransportLabel()
	sp, err := transports.ParseSpec(label)
	if err != nil {
		return label
	}
	if ts, err := transportSpec(sp); err == nil {
		return ts.CanonicalLabel()
	}
	return label
}

// nearestSize returns the size of results closest to want by ratio (the
// larger one of two equally near).
func nearestSize(results []bench.Result, want int) int {
	best, bestD := 0, math.Inf(1)
	for _, r := range results {
		d := math.Abs(math.Log(float64(r.Size) / float64(want)))
		if d < bestD || d == bestD && r.Size > best {
			best, bestD = r.Size, d
		}
	}
	return best
}
