package report

import (
	"encoding/json"
	"io"
	"math"

	"github.com/ipcbench/ipcbench/bench"
)

// The "json" format: {"runs": [run, ...]} where each run holds its source,
// header, summaries, rankings and localhost-shortcut lines. Units are in
// the field names, except in a ranking's rows (value, ci95_lo, ci95_hi) and
// a shortcut line (tcp_localhost, tcp_public), which are in the unit of
// their metric: ns for "p50 round trip" and "p99 round trip", else the
// metric's name ("msg/s", "MB/s"); latencies are round trips. A value
// that does not exist (latency for stream) is omitted, and an unbounded
// interval bound is null. The header's values are strings, as the raw
// records hold them.

type jsonDoc struct {
	Runs []jsonRun `json:"runs"`
}

type jsonRun struct {
	Source    string         `json:"source"`
	Header    bench.Header   `json:"header"`
	Summaries []jsonSummary  `json:"summaries"`
	Rankings  []jsonRanking  `json:"rankings"`
	Shortcut  []jsonShortcut `json:"localhost_shortcut"`
}

type jsonCase struct {
	Workload  string `json:"workload"`
	Transport string `json:"transport"`
	Variant   string `json:"variant,omitempty"`
	Label     string `json:"label"`
	Size      int    `json:"size_bytes"`
	Conns     int    `json:"conns"`
	Rate      int    `json:"target_rate_msg_per_s,omitempty"`
	Placement string `json:"placement"`
}

// jsonStat is the median of per-repeat values with its 95% interval.
type jsonStat struct {
	Median  float64   `json:"median"`
	CILo    *float64  `json:"ci95_lo"`
	CIHi    *float64  `json:"ci95_hi"`
	Repeats []float64 `json:"repeats"`
}

type jsonLatency struct {
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
	Mean float64 `json:"mean"`
}

// jsonCPU is CPU time per message in ns: Both, Bench and Peer are each the
// median of the repeats' values (Per holds those of both processes).
type jsonCPU struct {
	Both  float64   `json:"both"`
	Bench float64   `json:"bench"`
	Peer  float64   `json:"peer"`
	Per   []float64 `json:"repeats"`
}

type jsonMode struct {
	Repeats   int     `json:"repeats"`
	Median    float64 `json:"median"`
	Placement string  `json:"cpus_seen,omitempty"`
	LineRTT   float64 `json:"line_rtt_ns,omitempty"`
}

type jsonLinePhase struct {
	Repeats int     `json:"repeats"`
	LineLo  float64 `json:"line_rtt_lo_ns"`
	LineHi  float64 `json:"line_rtt_hi_ns"`
	Median  float64 `json:"median"`
}

type jsonSummary struct {
	Case     jsonCase `json:"case"`
	Repeats  int      `json:"repeats"`
	OK       int      `json:"ok"`
	Failed   int      `json:"failed"`
	Skipped  int      `json:"skipped"`
	Reason   string   `json:"reason,omitempty"`
	RepeatNo []int    `json:"ok_repeats"`
	// AllRoundTrip covers every round trip of the OK repeats together, a
	// sampled repeat's weighted by its sample_every (see Summary).
	AllRoundTrip *jsonLatency      `json:"round_trip_all_ns,omitempty"`
	P50          *jsonStat         `json:"round_trip_p50_ns,omitempty"`
	P99          *jsonStat         `json:"round_trip_p99_ns,omitempty"`
	MsgRate      *jsonStat         `json:"msg_per_s,omitempty"`
	MBps         *jsonStat         `json:"mb_per_s,omitempty"`
	Achieved     float64           `json:"achieved_msg_per_s,omitempty"`
	CPU          *jsonCPU          `json:"cpu_ns_per_msg,omitempty"`
	Bimodal      bool              `json:"bimodal"`
	ModeMetric   string            `json:"mode_metric,omitempty"`
	Modes        []jsonMode        `json:"modes,omitempty"`
	CPUsSeen     string            `json:"cpus_seen,omitempty"`
	LineRTT      float64           `json:"line_rtt_ns,omitempty"`
	PhaseMetric  string            `json:"line_phase_metric,omitempty"`
	LinePhases   []jsonLinePhase   `json:"line_phases,omitempty"`
	Options      map[string]string `json:"options,omitempty"`
	Notes        []string          `json:"notes,omitempty"`
}

type jsonRanking struct {
	Workload      string    `json:"workload"`
	Size          int       `json:"size_bytes"`
	Conns         int       `json:"conns"`
	Rate          int       `json:"target_rate_msg_per_s,omitempty"`
	Placement     string    `json:"placement"`
	Metric        string    `json:"metric"`
	LowerIsBetter bool      `json:"lower_is_better"`
	Rows          []jsonRow `json:"rows"`
}

type jsonRow struct {
	Rank       int      `json:"rank,omitempty"` // 0 for an unranked row
	Case       jsonCase `json:"case"`
	Value      *float64 `json:"value,omitempty"`
	CILo       *float64 `json:"ci95_lo,omitempty"`
	CIHi       *float64 `json:"ci95_hi,omitempty"`
	VsBest     *float64 `json:"vs_best,omitempty"`
	SameAsBest bool     `json:"same_as_best"`
	P          *float64 `json:"p_value,omitempty"`
	Reason     string   `json:"reason,omitempty"`
}

// MarshalJSON writes a ranked row's interval bounds always, null when
// unbounded, as every other interval of the format; an unranked row has
// no value, and no bounds.
func (r jsonRow) MarshalJSON() ([]byte, error) {
	type plain jsonRow
	if r.Rank == 0 {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		CILo *float64 `json:"ci95_lo"`
		CIHi *float64 `json:"ci95_hi"`
	}{plain(r), r.CILo, r.CIHi})
}

type jsonShortcut struct {
	Workload      string   `json:"workload"`
	Size          int      `json:"size_bytes"`
	Conns         int      `json:"conns"`
	Rate          int      `json:"target_rate_msg_per_s,omitempty"`
	Placement     string   `json:"placement"`
	Variant       string   `json:"variant,omitempty"`
	Metric        string   `json:"metric"`
	LowerIsBetter bool     `json:"lower_is_better"`
	Localhost     *float64 `json:"tcp_localhost,omitempty"`
	Public        *float64 `json:"tcp_public,omitempty"`
	LocalhostN    int      `json:"tcp_localhost_repeats"`
	PublicN       int      `json:"tcp_public_repeats"`
	Ratio         *float64 `json:"ratio,omitempty"`
	RatioLo       *float64 `json:"ratio_ci_lo,omitempty"`
	RatioHi       *float64 `json:"ratio_ci_hi,omitempty"`
	P             *float64 `json:"p_value,omitempty"`
	Significant   bool     `json:"significant"`
	Missing       string   `json:"not_compared,omitempty"`
	Text          string   `json:"text"`
}

// MarshalJSON writes a compared line's ratio interval bounds always, null
// when unbounded, as every other interval of the format; a line that
// compares nothing (not_compared) has no ratio, and no bounds.
func (l jsonShortcut) MarshalJSON() ([]byte, error) {
	type plain jsonShortcut
	if l.Missing != "" {
		return json.Marshal(plain(l))
	}
	return json.Marshal(struct {
		plain
		RatioLo *float64 `json:"ratio_ci_lo"`
		RatioHi *float64 `json:"ratio_ci_hi"`
	}{plain(l), l.RatioLo, l.RatioHi})
}

// fptr returns &v, or nil when v is not finite (JSON has no infinity).
func fptr(v float64) *float64 {
	if !finite(v) {
		return nil
	}
	return &v
}

func toJSONCase(c bench.Case) jsonCase {
	return jsonCase{Workload: c.Workload, Transport: c.Transport, Variant: c.Variant, Label: c.TransportLabel(),
		Size: c.Size, Conns: c.Conns, Rate: c.Rate, Placement: c.Placement}
}

func toJSONStat(center, lo, hi float64, vals []float64) *jsonStat {
	if len(vals) == 0 {
		return nil
	}
	return &jsonStat{Median: center, CILo: fptr(lo), CIHi: fptr(hi), Repeats: vals}
}

func toJSONSummary(s *Summary) jsonSummary {
	j := jsonSummary{Case: toJSONCase(s.Case), Repeats: s.Repeats, OK: s.OK, Failed: s.Failed, Skipped: s.Skipped,
		Reason: s.Reason, RepeatNo: s.RepeatIndex, Achieved: s.Achieved, Bimodal: s.Bimodal, CPUsSeen: s.Placement,
		LineRTT: s.LineRTT, Options: s.Options, Notes: s.Notes}
	if j.RepeatNo == nil {
		j.RepeatNo = []int{}
	}
	if s.HasLatency() {
		j.AllRoundTrip = &jsonLatency{P50: s.P50, P90: s.P90, P99: s.P99, P999: s.P999, Max: s.Max, Mean: s.Mean}
	}
	j.P50 = toJSONStat(s.P50Median, s.P50Lo, s.P50Hi, s.RepeatP50)
	j.P99 = toJSONStat(s.P99Median, s.P99Lo, s.P99Hi, s.RepeatP99)
	j.MsgRate = toJSONStat(s.MsgRate, s.MsgRateLo, s.MsgRateHi, s.RepeatMsgRate)
	j.MBps = toJSONStat(s.MBps, s.MBpsLo, s.MBpsHi, s.RepeatMBps)
	if len(s.RepeatCPUPerMsg) > 0 {
		j.CPU = &jsonCPU{Both: s.CPUPerMsgNS, Bench: s.BenchCPUPerMsgNS, Peer: s.PeerCPUPerMsgNS, Per: s.RepeatCPUPerMsg}
	}
	if len(s.LinePhases) > 0 {
		j.PhaseMetric = s.PhaseMetric
		for _, ph := range s.LinePhases {
			j.LinePhases = append(j.LinePhases, jsonLinePhase(ph))
		}
	}
	if s.Bimodal {
		j.ModeMetric = s.ModeMetric()
		for _, m := range s.Modes {
			j.Modes = append(j.Modes, jsonMode(m))
		}
	}
	return j
}

func renderJSON(w io.Writer, as []*analysis) error {
	doc := jsonDoc{Runs: []jsonRun{}}
	for _, a := range as {
		jr := jsonRun{Source: a.run.Source, Header: a.run.Header,
			Summaries: []jsonSummary{}, Rankings: []jsonRanking{}, Shortcut: []jsonShortcut{}}
		for i := range a.summaries {
			jr.Summaries = append(jr.Summaries, toJSONSummary(&a.summaries[i]))
		}
		for _, rk := range a.rankings {
			j := jsonRanking{Workload: rk.Workload, Size: rk.Size, Conns: rk.Conns, Rate: rk.Rate, Placement: rk.Placement,
				Metric: rk.Metric, LowerIsBetter: rk.LowerIsBetter, Rows: []jsonRow{}}
			rank := 0
			for _, row := range rk.Rows {
				jrow := jsonRow{Case: toJSONCase(row.Summary.Case), Reason: row.Summary.Reason}
				if row.Ranked {
					rank++
					jrow.Rank = rank
					jrow.Value, jrow.CILo, jrow.CIHi = fptr(row.Value), fptr(row.Lo), fptr(row.Hi)
					jrow.VsBest, jrow.P = fptr(row.Ratio), fptr(row.P)
					jrow.SameAsBest = row.Noise || rank == 1
				}
				j.Rows = append(j.Rows, jrow)
			}
			jr.Rankings = append(jr.Rankings, j)
		}
		for _, l := range a.shortcut {
			j := jsonShortcut{Workload: l.Workload, Size: l.Size, Conns: l.Conns, Rate: l.Rate, Placement: l.Placement,
				Variant: l.Variant, Metric: l.Metric, LowerIsBetter: l.LowerIsBetter, LocalhostN: l.LocalhostN,
				PublicN: l.PublicN, Significant: l.Significant, Missing: l.Missing, Text: l.String()}
			if l.Missing == "" {
				j.Localhost, j.Public, j.Ratio, j.P = fptr(l.Localhost), fptr(l.Public), fptr(l.Ratio), fptr(l.P)
				if !math.IsInf(l.RatioHi, 1) { // else unbounded: lo is 0, and both are null
					j.RatioLo, j.RatioHi = fptr(l.RatioLo), fptr(l.RatioHi)
				}
			}
			jr.Shortcut = append(jr.Shortcut, j)
		}
		doc.Runs = append(doc.Runs, jr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}
