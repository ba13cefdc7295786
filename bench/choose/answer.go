package choose

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/report"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

// Answer is what a calibration or a file of raw records says.
type Answer struct {
	// Question is the question answered; its Size is the size measured
	// (see SizeNote).
	Question Question `json:"question"`
	// Source says where the numbers come from: CalibrationSource or the
	// records file.
	Source string `json:"source"`
	// SizeNote is set when the records hold no case of the size asked
	// for and the nearest measured size answered instead.
	SizeNote string `json:"size_note,omitempty"`
	// Metric is what the candidates are ranked by (report.MetricP50 for
	// Pingpong and HTTP, report.MetricMBps for Stream, report.MetricRate
	// for several connections); LowerIsBetter says which way.
	Metric        string `json:"metric"`
	LowerIsBetter bool   `json:"lower_is_better"`
	// Winner is the spec to use: pass it to all.Listen and all.Dial.
	Winner string `json:"winner"`
	// Candidates are the ranked transports, best first; Candidates[0] is
	// the Winner, and those with Tied set cannot be told apart from it.
	Candidates []Candidate `json:"candidates"`
	// NotRanked are the transports that were not ranked, with the reason:
	// they cannot run here, failed, or (from records) are measurement-only.
	NotRanked []NotRanked `json:"not_ranked,omitempty"`
	// Repeats is the fewest OK repeats of a ranked candidate; below
	// report.MinRepeats the intervals are unbounded and ~ untrustworthy.
	Repeats int `json:"repeats"`
	// Elapsed is the calibration's wall time; Duration and Warmup are the
	// measured interval and warm-up of each case (zero from records).
	Elapsed  time.Duration `json:"elapsed_ns,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Warmup   time.Duration `json:"warmup_ns,omitempty"`
}

// CalibrationSource is Answer.Source for an answer measured by Run.
const CalibrationSource = "calibration run"

// Candidate is one ranked transport.
type Candidate struct {
	// Spec is the transport with its variant: "unix", "shm-ring[wait=spin]".
	Spec string `json:"spec"`
	// Value is the median over the repeats of the Answer's Metric (ns for
	// round trips, MB/s or msg/s), Lo and Hi its 95% interval.
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	// Ratio is how many times worse than the winner (1 for the winner).
	Ratio float64 `json:"ratio"`
	// Tied: a Mann-Whitney U test cannot tell this candidate from the
	// winner (reports show "~"); P is its p-value.
	Tied bool    `json:"tied"`
	P    float64 `json:"p"`
	// MsgRate is the median messages (round trips) per second.
	MsgRate float64 `json:"msg_per_s"`
	// CPUPerMsg is the median CPU time per message of both processes, ns,
	// with its 95% interval CPULo..CPUHi.
	CPUPerMsg float64 `json:"cpu_per_msg_ns"`
	CPULo     float64 `json:"cpu_lo_ns"`
	CPUHi     float64 `json:"cpu_hi_ns"`
}

// NotRanked is a transport the answer leaves out, and why.
type NotRanked struct {
	Spec   string `json:"spec"`
	Reason string `json:"reason"`
}

// Ties returns the candidates tied with the winner, best first, the
// winner not included (none when there are no candidates).
func (a *Answer) Ties() []Candidate {
	if len(a.Candidates) == 0 {
		return nil
	}
	var out []Candidate
	for _, c := range a.Candidates[1:] {
		if c.Tied {
			out = append(out, c)
		}
	}
	return out
}

// MarshalJSON writes infinite interval bounds (too few repeats), and an
// infinite ratio (a candidate that measured nothing), as null.
func (c Candidate) MarshalJSON() ([]byte, error) {
	type plain Candidate
	f := func(v float64) *float64 {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		plain
		Lo    *float64 `json:"lo"`
		Hi    *float64 `json:"hi"`
		CPULo *float64 `json:"cpu_lo_ns"`
		CPUHi *float64 `json:"cpu_hi_ns"`
		Ratio *float64 `json:"ratio"`
	}{plain(c), f(c.Lo), f(c.Hi), f(c.CPULo), f(c.CPUHi), f(c.Ratio)})
}

// answer ranks the results of q's case with report.Rank.
func answer(q Question, results []bench.Result, source string) (*Answer, error) {
	a := &Answer{Question: q, Source: source}
	var keep []bench.Result
	excluded := map[string]bool{}
	for _, r := range results {
		c := r.Case()
		if mo := measurementOnly(c); mo != "" {
			if !excluded[c.TransportLabel()] {
				excluded[c.TransportLabel()] = true
				a.NotRanked = append(a.NotRanked, NotRanked{Spec: c.TransportLabel(), Reason: "measurement-only variant (" + mo + "): never recommended"})
			}
			continue
		}
		keep = append(keep, r)
	}
	if len(keep) == 0 && len(a.NotRanked) > 0 {
		return nil, noAnswer(a.NotRanked)
	}
	rks := report.Rank(report.Summarize(keep))
	if len(rks) != 1 {
		return nil, fmt.Errorf("%w: %d settings in the results of one question", ErrNoAnswer, len(rks))
	}
	rk := rks[0]
	a.Metric, a.LowerIsBetter = rk.Metric, rk.LowerIsBetter
	a.Repeats = math.MaxInt
	for _, row := range rk.Rows {
		s := row.Summary
		if !row.Ranked {
			a.NotRanked = append(a.NotRanked, NotRanked{Spec: s.Case.TransportLabel(), Reason: notRankedReason(&s)})
			continue
		}
		c := Candidate{Spec: s.Case.TransportLabel(), Value: row.Value, Lo: row.Lo, Hi: row.Hi,
			Ratio: row.Ratio, Tied: row.Noise, P: row.P, MsgRate: s.MsgRate}
		c.CPUPerMsg, c.CPULo, c.CPUHi = s.CPUPerMsg()
		a.Candidates = append(a.Candidates, c)
		a.Repeats = min(a.Repeats, s.OK)
	}
	if len(a.Candidates) == 0 {
		return nil, noAnswer(a.NotRanked)
	}
	a.Winner = a.Candidates[0].Spec
	return a, nil
}

// noAnswer is the error wrapping ErrNoAnswer that says why each of nr
// was not ranked.
func noAnswer(nr []NotRanked) error {
	why := make([]string, len(nr))
	for i, n := range nr {
		why[i] = n.Spec + ": " + n.Reason
	}
	return fmt.Errorf("%w: %s", ErrNoAnswer, strings.Join(why, "; "))
}

// notRankedReason says why a case has no OK repeat.
func notRankedReason(s *report.Summary) string {
	word := "failed"
	if s.Skipped == s.Repeats {
		word = "cannot run here"
	}
	if s.Reason == "" {
		return word
	}
	return word + ": " + s.Reason
}

// measurementOnly returns the measurement-only option of c's variant, or
// "" (also for a transport this module does not know).
func measurementOnly(c bench.Case) string {
	if c.Variant == "" {
		return ""
	}
	sp, err := transports.ParseSpec(c.TransportLabel())
	if err != nil {
		return ""
	}
	tr, err := all.Lookup(sp.Name)
	if err != nil {
		return ""
	}
	return transports.MeasurementOnlyOption(tr, sp.Options)
}

// WriteText writes the answer for people: the winner spec on its own
// line, then every candidate with its interval, ratio, "~" for a tie and
// CPU per message, then what was not ranked and why.
func (a *Answer) WriteText(w io.Writer) error {
	var b strings.Builder
	q := a.Question
	setting := q.Workload + " " + bench.FormatSize(q.Size)
	if q.Conns > 1 {
		setting += fmt.Sprintf(", %d connections", q.Conns)
	}
	setting += ", " + q.Placement
	src := "measured just now by a calibration run"
	if a.Source != CalibrationSource {
		src = "from the records in " + a.Source
	}
	fmt.Fprintf(&b, "fastest here for %s (by %s, %s):\n", setting, a.Metric, src)
	fmt.Fprintf(&b, "  %s\n", a.Winner)
	if a.SizeNote != "" {
		fmt.Fprintf(&b, "note: %s\n", a.SizeNote)
	}
	if ties := a.Ties(); len(ties) > 0 {
		names := make([]string, len(ties))
		for i, t := range ties {
			names[i] = t.Spec
		}
		fmt.Fprintf(&b, "tied with it (~, not significantly different): %s\n", strings.Join(names, ", "))
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	rateCol := a.Metric != report.MetricRate // the metric itself otherwise
	head := "  TRANSPORT\t" + strings.ToUpper(a.Metric) + " (95% CI)\tVS BEST\t"
	if rateCol {
		head += "MSG/S\t"
	}
	fmt.Fprintln(tw, head+"CPU/MSG (95% CI)")
	for i, c := range a.Candidates {
		vs := "best"
		if i > 0 {
			vs = report.FormatRatio(c.Ratio)
			if c.Tied {
				vs = "~ " + vs
			}
		}
		row := "  " + c.Spec + "\t" + a.formatValue(c.Value, c.Lo, c.Hi) + "\t" + vs + "\t"
		if rateCol {
			row += report.FormatRate(c.MsgRate) + "\t"
		}
		cpu := "-" // no repeat measured a message
		if c.CPUPerMsg > 0 {
			cpu = strings.TrimSpace(report.FormatNS(c.CPUPerMsg) + " " + report.FormatCI(c.CPUPerMsg, c.CPULo, c.CPUHi))
		}
		fmt.Fprintln(tw, row+cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range a.NotRanked {
		fmt.Fprintf(&b, "  %s: not ranked: %s\n", n.Spec, n.Reason)
	}
	if a.Repeats < report.MinRepeats {
		word := "repeats"
		if a.Repeats == 1 {
			word = "repeat"
		}
		fmt.Fprintf(&b, "warning: only %d OK %s per transport, fewer than %d: intervals are unbounded and %s\n", a.Repeats, word, report.MinRepeats, report.FewRepeatsTie(a.Repeats))
	}
	if a.Elapsed > 0 {
		fmt.Fprintf(&b, "calibration: %s wall, %d repeats of %s (+%s warm-up) per transport\n",
			round3(a.Elapsed), a.Repeats, round3(a.Duration), round3(a.Warmup))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// round3 rounds d to three significant digits for people: 97.777777ms
// is 97.8ms, 12.345678s is 12.3s, 60ms stays 60ms.
func round3(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	step := time.Duration(1)
	for d/step >= 1000 {
		step *= 10
	}
	return d.Round(step)
}

// formatValue formats a metric value with its interval, as reports do.
func (a *Answer) formatValue(v, lo, hi float64) string {
	var s string
	switch a.Metric {
	case report.MetricMBps:
		s = report.FormatMBps(v) + " MB/s"
	case report.MetricRate:
		s = report.FormatRate(v) + " msg/s"
	default:
		s = report.FormatNS(v)
	}
	return strings.TrimSpace(s + " " + report.FormatCI(v, lo, hi))
}
