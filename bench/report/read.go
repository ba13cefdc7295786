// Package report turns ipcbench raw records into summaries, rankings and
// rendered reports, and compares two runs.
//
// Everything here is derived from the raw records that `ipcbench run`
// writes (package bench: one Header, then one Result per measured interval),
// so a report can always be regenerated from the file it names.
//
// The statistics follow docs/methodology.md (§4, §6, §13) and benchstat:
//
//   - Latency is reported as a distribution (p50, p90, p99, p99.9, max, with
//     the mean beside them), and every latency is a round trip measured in
//     the bench process; reports label it so.
//   - Each case runs several times. The central value of a metric is the
//     median of the per-repeat values, with a distribution-free 95%
//     confidence interval computed by golang.org/x/perf/benchmath, the
//     library benchstat uses. With fewer than 6 repeats that interval is
//     unbounded (±∞), exactly as benchstat reports it.
//   - Two cases differ only when a Mann-Whitney U test on their per-repeat
//     values rejects "same distribution" at α = 0.05; otherwise reports show
//     "~", which means what it means in benchstat.
//   - A case whose repeats fall into two modes more than 2× apart is flagged
//     as bimodal, with the modes listed, rather than blended into one number.
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// ErrMalformed is wrapped by every error Read returns for input that is not
// a valid raw-record file: bad JSON, an unknown record type, a missing or
// repeated header, a newer schema version, a truncated last line, invalid
// field values or a histogram that does not decode. Such errors are
// *ParseError values naming the file and line.
var ErrMalformed = errors.New("malformed raw records")

// ParseError describes one problem in a raw-record file. It wraps
// ErrMalformed and, when there is one, the underlying cause (a JSON syntax
// error, a histogram decoding error).
type ParseError struct {
	Source string // file name or other label given to Read
	Line   int    // 1-based line number
	Msg    string // what is wrong
	Err    error  // underlying cause, or nil
}

// Error returns "source:line: what is wrong[: cause]".
func (e *ParseError) Error() string {
	s := fmt.Sprintf("%s:%d: %s", e.Source, e.Line, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap makes errors.Is(err, ErrMalformed) hold, as well as errors.Is and
// errors.As on the cause.
func (e *ParseError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMalformed}
	}
	return []error{ErrMalformed, e.Err}
}

// Run is one raw-record file: the header and the results in file order.
type Run struct {
	Header  bench.Header
	Results []bench.Result
	// Source names where the run came from (the file name), for reports.
	Source string
}

// ReadFile reads the raw-record file at path (see Read).
func ReadFile(path string) (*Run, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	return Read(f, path)
}

// Read parses raw records in JSON Lines form: one JSON object per line, the
// first a header (bench.KindHeader) and every other a result
// (bench.KindResult). Blank lines are ignored. source names the input in
// error messages and becomes Run.Source.
//
// Read refuses, with a *ParseError wrapping ErrMalformed: an empty input;
// a first record that is not a header; a second header; a header whose
// version is newer than bench.RecordVersion; an unknown record type; a line
// that is not one JSON object; a last line with no newline that does not
// hold a complete record (an interrupted writer); results with missing or
// invalid fields (workload, transport, status, negative counts, an OK
// result with no measured interval); and latency histograms that are not
// labelled round trip or do not decode. Unknown fields are ignored, so that
// newer writers of the same major version stay readable.
func Read(r io.Reader, source string) (*Run, error) {
	br := bufio.NewReader(r)
	run := &Run{Source: source}
	line := 0
	sawHeader := false
	for {
		raw, rerr := br.ReadBytes('\n')
		if rerr != nil && rerr != io.EOF {
			return nil, fmt.Errorf("report: reading %s: %w", source, rerr)
		}
		if len(raw) == 0 && rerr == io.EOF {
			break
		}
		line++
		truncated := rerr == io.EOF // a last line with no newline
		text := bytes.TrimSpace(raw)
		if len(text) == 0 {
			if rerr == io.EOF {
				break
			}
			continue
		}
		perr := func(msg string, cause error) error {
			return &ParseError{Source: source, Line: line, Msg: msg, Err: cause}
		}
		var kind struct {
			Type    *string `json:"type"`
			Version int     `json:"version"`
		}
		if err := json.Unmarshal(text, &kind); err != nil {
			if truncated {
				return nil, perr("truncated line: the last record has no newline and is incomplete (was the run interrupted?)", err)
			}
			return nil, perr("bad JSON", err)
		}
		if kind.Type == nil {
			return nil, perr(`record has no "type" field`, nil)
		}
		switch *kind.Type {
		case bench.KindHeader:
			if sawHeader {
				return nil, perr("second header record: a raw file holds one run (were two files concatenated?)", nil)
			}
			if kind.Version > bench.RecordVersion {
				return nil, perr(fmt.Sprintf("record version %d is newer than this reader understands (%d): use a newer ipcbench", kind.Version, bench.RecordVersion), nil)
			}
			if kind.Version < 1 {
				return nil, perr(fmt.Sprintf("header has no valid version (got %d)", kind.Version), nil)
			}
			if err := json.Unmarshal(text, &run.Header); err != nil {
				return nil, perr("bad header", err)
			}
			sawHeader = true
		case bench.KindResult:
			if !sawHeader {
				return nil, perr("missing header: the first record is a result, want a header", nil)
			}
			var res bench.Result
			if err := json.Unmarshal(text, &res); err != nil {
				return nil, perr("bad result", err)
			}
			if msg, cause := checkResult(&res); msg != "" {
				return nil, perr(msg, cause)
			}
			run.Results = append(run.Results, res)
		default:
			return nil, perr(fmt.Sprintf("unknown record type %q (want %q or %q)", *kind.Type, bench.KindHeader, bench.KindResult), nil)
		}
		if rerr == io.EOF {
			break
		}
	}
	if !sawHeader {
		if line == 0 {
			line = 1
		}
		return nil, &ParseError{Source: source, Line: line, Msg: "missing header: the file holds no records"}
	}
	return run, nil
}

// checkResult validates the fields of one result; it returns what is wrong
// (and a cause) or "".
func checkResult(r *bench.Result) (string, error) {
	switch {
	case strings.TrimSpace(r.Workload) == "":
		return "result has no workload", nil
	case strings.TrimSpace(r.Transport) == "":
		return "result has no transport", nil
	case r.Size < 0 || r.Conns < 0 || r.Rate < 0 || r.Repeat < 0:
		return fmt.Sprintf("result has a negative size, conns, rate or repeat (%d, %d, %d, %d)", r.Size, r.Conns, r.Rate, r.Repeat), nil
	case r.DurationNS < 0 || r.Messages < 0 || r.Bytes < 0 || r.Errors < 0:
		return "result has a negative duration, message, byte or error count", nil
	case r.BenchUserNS < 0 || r.BenchSysNS < 0 || r.PeerUserNS < 0 || r.PeerSysNS < 0:
		return "result has a negative CPU time", nil
	}
	switch r.Status {
	case bench.StatusOK:
		if r.DurationNS <= 0 {
			return "ok result has no measured interval (duration_ns <= 0)", nil
		}
	case bench.StatusFailed, bench.StatusSkipped:
	default:
		return fmt.Sprintf("unknown status %q (want %q, %q or %q)", r.Status, bench.StatusOK, bench.StatusFailed, bench.StatusSkipped), nil
	}
	switch r.LatencyKind {
	case bench.LatencyRoundTrip, bench.LatencyNone:
	default:
		return fmt.Sprintf("unknown latency kind %q (this reader knows %q)", r.LatencyKind, bench.LatencyRoundTrip), nil
	}
	if r.Hist != "" {
		if r.LatencyKind != bench.LatencyRoundTrip {
			return "result has a latency histogram that is not labelled round-trip", nil
		}
		if _, err := hist.Decode(r.Hist); err != nil {
			return "bad histogram", err
		}
	}
	return "", nil
}
