package choose

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/transports"
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
func FromRun(run *bench.Records, q Question, only ...transports.Spec) (*Answer, error) {
	q, _, err := q.normalized()
	if err != nil {
		return nil, err
	}
	wl := q.benchWorkload()
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
		sort.Strings(settings)
		return nil, fmt.Errorf("%w: %s has no %s results (it has: %s)", ErrNoAnswer, run.Source, setting(wl, q.Placement, q.Conns), strings.Join(settings, ", "))
	}
	match, err = onlyTransports(match, only)
	if err != nil {
		return nil, fmt.Errorf("%w: %s has no %s results %v", ErrNoAnswer, run.Source, setting(wl, q.Placement, q.Conns), err)
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
	a, err := answer(q, same, run.Source)
	if err != nil {
		return nil, err
	}
	if size != asked {
		a.SizeNote = fmt.Sprintf("%s was not measured in %s; the nearest measured size, %s, answers", bench.FormatSize(asked), run.Source, bench.FormatSize(size))
	}
	return a, nil
}

// onlyTransports keeps the results of the transports only names (all of
// them when only is empty or holds "all"), or returns an error that names
// the first one without any result and the transports there are.
func onlyTransports(results []bench.Result, only []transports.Spec) ([]bench.Result, error) {
	if len(only) == 0 || slices.ContainsFunc(only, func(s transports.Spec) bool { return s.Name == "all" }) {
		return results, nil
	}
	var have []string
	for _, r := range results {
		if l := r.Case().TransportLabel(); !slices.Contains(have, l) {
			have = append(have, l)
		}
	}
	want := make([]string, len(only))
	for i, s := range only {
		want[i] = s.String()
		if !slices.Contains(have, want[i]) {
			sort.Strings(have)
			return nil, fmt.Errorf("of %s (its transports there: %s)", want[i], strings.Join(have, ", "))
		}
	}
	var kept []bench.Result
	for _, r := range results {
		if slices.Contains(want, r.Case().TransportLabel()) {
			kept = append(kept, r)
		}
	}
	return kept, nil
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
