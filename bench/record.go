package bench

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ipcbench/ipcbench/internal/hist"
)

// RecordVersion is the version of the raw-record schema written in every
// header. Readers refuse records with a newer major version.
const RecordVersion = 1

// Record kinds, the "type" field of every JSON Lines record.
const (
	KindHeader = "header"
	KindResult = "result"
)

// Header is the first record of a raw file: the environment a run happened
// in and the options it ran with. A result without its header cannot be
// cited.
type Header struct {
	Type    string    `json:"type"` // always KindHeader
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	// Tool is "ipcbench" plus its version or commit.
	Tool string `json:"tool"`
	// Machine holds machine facts: kernel, cpu_model, cores, gomaxprocs,
	// go_version, goos, goarch, hostname, clock_read_ns, ...
	Machine map[string]string `json:"machine"`
	// Network says where sockets ran: "private-netns" (the default, a
	// namespace ipcbench made with lo and a veth pair) or "host".
	Network string `json:"network"`
	// NetworkNote explains a fallback (why no namespace could be made).
	NetworkNote string `json:"network_note,omitempty"`
	// Options are the options the run went by, after defaults were filled
	// in (workloads, sizes, durations, repeats, warm-up, placements, rate,
	// conns...): what was measured, not only what was typed.
	Options map[string]string `json:"options"`
	// Command is the command line that produced the file.
	Command []string `json:"command,omitempty"`
	// Peer says where the peer ran when it was not spawned by the run
	// itself: "serve ADDRESS" (an ipcbench serve) or "echo ADDRESS" (any
	// echo server). Empty: every case spawned its own peer.
	Peer string `json:"peer,omitempty"`
	// PeerTool and PeerMachine are an ipcbench serve's Tool and Machine,
	// as it reported them.
	PeerTool    string            `json:"peer_tool,omitempty"`
	PeerMachine map[string]string `json:"peer_machine,omitempty"`
}

// Status values of a Result.
const (
	StatusOK      = "ok"
	StatusSkipped = "skipped" // the transport or pair cannot run here; Reason says why
	StatusFailed  = "failed"  // the case ran and failed (peer died, data mismatch, timeout)
)

// InterruptedReason begins the Reason of a failed case that was running
// when the run was interrupted (SIGINT, SIGTERM: its context was
// cancelled): the failure says nothing about the transport.
const InterruptedReason = "interrupted: the run was stopped during this case; "

// Latency kinds: every latency figure is labelled.
const (
	LatencyRoundTrip = "round-trip"
	LatencyNone      = "" // the workload records no per-message latency (stream)
)

// Units of Result.CPUsUnit.
const (
	// CPUsUnitMS: milliseconds the process's threads ran on the CPU, each
	// thread's run time between two samples (every 50 ms) attributed to
	// the CPU it was last on. Threads that did not run add nothing.
	CPUsUnitMS = "ms"
	// CPUsUnitSamples: how many times one of the process's threads was
	// seen on the CPU, every 50 ms, counting threads running at the sample
	// or with CPU time (in 10 ms clock ticks) since the previous one,
	// however briefly they ran. The form of older records and the fallback
	// on kernels without per-thread schedstat.
	CPUsUnitSamples = "samples"
)

// Result is one measured interval of one case: a workload over one transport
// variant at one message size, connection count and placement, in one
// repeat.
type Result struct {
	Type string `json:"type"` // always KindResult

	Workload  string `json:"workload"`          // pingpong, stream, fanin, connect, rate
	Transport string `json:"transport"`         // stable transport name
	Variant   string `json:"variant,omitempty"` // named variant ("nodelay=false", "model=poll"), empty for the default
	// PeerModel is the peer's server model (goroutine, thread, process,
	// poll); empty in records made before it existed, and against a
	// server the run did not start (PeerSource SourceConnect).
	PeerModel string `json:"peer_model,omitempty"`
	// PeerSource is how the peer was started and reached the bench
	// (inherit, address, serve; see Options.PeerSources), or
	// SourceConnect against a server given by address (Options.Remote);
	// empty in records made before it existed, which were all inherit.
	PeerSource string `json:"peer_source,omitempty"`
	Size       int    `json:"size"`           // payload bytes per message
	Conns      int    `json:"conns"`          // concurrent connections
	Rate       int    `json:"rate,omitempty"` // target messages/s for the rate workload
	Placement  string `json:"placement"`      // unpinned, same-core, cross-core, or "cpus=B/P" (bench/peer CPU lists: "cpus=0/1")
	Repeat     int    `json:"repeat"`         // 0-based repeat index
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`

	// DurationNS is the measured interval (warm-up excluded), monotonic clock.
	DurationNS int64 `json:"duration_ns"`
	// Messages counts messages completed in the interval: round trips for
	// request/response workloads, messages received (by the receiver's
	// count) for stream.
	Messages int64 `json:"messages"`
	// Bytes counts payload bytes moved in the interval, one direction.
	Bytes int64 `json:"bytes"`
	// Errors counts messages that failed a check.
	Errors int64 `json:"errors"`

	// LatencyKind labels Hist: LatencyRoundTrip or LatencyNone.
	LatencyKind string `json:"latency_kind,omitempty"`
	// Hist is the latency histogram of the interval in HdrHistogram's
	// compressed, base64 encoding (see internal/hist); values in ns.
	Hist string `json:"hist,omitempty"`
	// SampleEvery, when above 1, says the histogram holds one exchange in
	// SampleEvery: round trips below a few microseconds are sampled rather
	// than all timed, because each clock read costs tens of nanoseconds.
	// Every connection of the result is sampled alike (the first to start
	// measuring decides). Messages still counts every exchange; reports
	// weigh each recorded round trip SampleEvery times when they merge
	// repeats.
	SampleEvery int `json:"sample_every,omitempty"`
	// Achieved is the rate actually achieved (msg/s) for the rate workload.
	Achieved float64 `json:"achieved,omitempty"`

	// CPU time over the measured interval, in ns, of the bench process and
	// of the peer process.
	BenchUserNS int64 `json:"bench_user_ns"`
	BenchSysNS  int64 `json:"bench_sys_ns"`
	PeerUserNS  int64 `json:"peer_user_ns"`
	PeerSysNS   int64 `json:"peer_sys_ns"`
	// PeerCPUUnknown says the peer's CPU time could not be known (a
	// foreign echo server, or a server whose reported CPU times went
	// back): PeerUserNS and PeerSysNS are then 0, not a measurement.
	PeerCPUUnknown bool `json:"peer_cpu_unknown,omitempty"`

	// BenchCPUs and PeerCPUs record where each end actually ran during the
	// measured interval, as "cpu:weight" lists, heaviest first; CPUsUnit
	// says what the weights are. With CPUsUnitMS (the default where the
	// kernel has per-thread schedstat), "0:980,1:3" means the process's
	// threads ran about 980 ms on CPU 0 and 3 ms on CPU 1; a CPU that got
	// under half a millisecond shows 0. With CPUsUnitSamples (older records,
	// whose CPUsUnit is empty, and kernels without schedstat) the weights
	// count how often a thread was seen on the CPU when sampled.
	BenchCPUs string `json:"bench_cpus,omitempty"`
	PeerCPUs  string `json:"peer_cpus,omitempty"`
	// CPUsUnit is the unit of the weights in BenchCPUs and PeerCPUs:
	// CPUsUnitMS or CPUsUnitSamples; empty in records made before it
	// existed, which hold samples.
	CPUsUnit string `json:"cpus_unit,omitempty"`

	// LineRTTNS and LineRTTEndNS are the round trip of a cache line
	// between the two CPUs named in LineRTTCPUs, in ns, measured before
	// the warm-up and after the measured interval (bench.ProbeLine):
	// what every message of a shared-memory transport pays, which a
	// virtual machine's hypervisor changes from one second to the next.
	// Absent when nothing crossed CPUs (both ends pinned to one CPU), for
	// a peer at an address given by the user (-connect), on one CPU, in records made before they existed, and
	// when the probe could not run (LineRTTEndNS also when the case
	// failed).
	LineRTTNS    int64  `json:"line_rtt_ns,omitempty"`
	LineRTTEndNS int64  `json:"line_rtt_end_ns,omitempty"`
	LineRTTCPUs  string `json:"line_rtt_cpus,omitempty"`

	// Options are the transport options in effect, read back where possible.
	Options map[string]string `json:"options,omitempty"`
}

// MaxSampleEvery is the largest Result.SampleEvery a raw-record reader
// takes: far above what a run writes (16), and low enough that a
// histogram's counts, weighed by it when repeats merge, cannot overflow.
const MaxSampleEvery = 1 << 20

// Case returns the identity of r without its repeat index: results with the
// same Case are repeats of one another.
func (r *Result) Case() Case {
	return Case{Workload: r.Workload, Transport: r.Transport, Variant: r.Variant, Size: r.Size, Conns: r.Conns, Rate: r.Rate, Placement: r.Placement}
}

// Case identifies one benchmark case across repeats.
type Case struct {
	Workload  string
	Transport string
	Variant   string
	Size      int
	Conns     int
	Rate      int
	Placement string
}

// TransportLabel is the transport name with its variant, as reports show it:
// "unix" or "tcp-localhost[nodelay=false]".
func (c Case) TransportLabel() string {
	if c.Variant == "" {
		return c.Transport
	}
	return c.Transport + "[" + c.Variant + "]"
}

// Records is one raw-record file: its header and its results in file
// order. Runner.Run returns the records it wrote; ReadRecords returns the
// records of a file.
type Records struct {
	Header  Header
	Results []Result
	// Source names where the records came from (a file name), for reports.
	Source string
}

// RecordWriter writes raw records as JSON Lines: one header, then results.
// Each record is written with one Write call to the underlying writer, so a
// run that is interrupted leaves only whole records behind it.
type RecordWriter struct {
	enc *json.Encoder
}

// NewRecordWriter returns a RecordWriter writing to w.
func NewRecordWriter(w io.Writer) *RecordWriter {
	return &RecordWriter{enc: json.NewEncoder(w)}
}

// WriteHeader writes h as the header record; it sets h.Type to KindHeader
// and h.Version to RecordVersion first.
func (w *RecordWriter) WriteHeader(h *Header) error {
	h.Type = KindHeader
	h.Version = RecordVersion
	if err := w.enc.Encode(h); err != nil {
		return fmt.Errorf("writing the header: %w", err)
	}
	return nil
}

// WriteResult writes r as a result record; it sets r.Type to KindResult
// first.
func (w *RecordWriter) WriteResult(r *Result) error {
	r.Type = KindResult
	if err := w.enc.Encode(r); err != nil {
		return fmt.Errorf("writing a result: %w", err)
	}
	return nil
}

// ErrMalformed is wrapped by every error ReadRecords returns for input that
// is not a valid raw-record file: bad JSON, an unknown record type, a
// missing or repeated header, a newer schema version, a truncated last
// line, invalid field values or a histogram that does not decode. Such
// errors are *ParseError values naming the file and line.
var ErrMalformed = errors.New("malformed raw records")

// ParseError describes one problem in a raw-record file. It wraps
// ErrMalformed and, when there is one, the underlying cause (a JSON syntax
// error, a histogram decoding error).
type ParseError struct {
	Source string // file name or other label given to ReadRecords
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

// ReadRecordsFile reads the raw-record file at path (see ReadRecords); the
// records' Source is path.
func ReadRecordsFile(path string) (*Records, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError: it names the file
	}
	defer f.Close()
	return ReadRecords(f, path)
}

// ReadRecords parses raw records in JSON Lines form: one JSON object per
// line, the first a header (KindHeader) and every other a result
// (KindResult), as they are or gzip-compressed (a gzip stream is read
// through compress/gzip). Blank lines are ignored. source names the input
// in error messages and becomes Records.Source.
//
// ReadRecords refuses, with a *ParseError wrapping ErrMalformed: an empty
// input; a line longer than MaxLineSize (also wrapping ErrLineTooLong;
// ReadRecords stops reading as soon as it knows); a first record that is
// not a header; a second header; a header
// whose version is newer than RecordVersion; an unknown record type; a
// line that is not one JSON object; a last line with no newline that does
// not hold a complete record (an interrupted writer); input compressed
// otherwise than with gzip (zstd, xz, bzip2); a result for a case and
// repeat that an earlier line already holds; results with missing
// or invalid fields (workload, transport, status, negative counts, an OK
// result with no measured interval, a sample_every outside 0 to
// MaxSampleEvery); and latency histograms that are not
// labelled round trip or do not decode. Unknown fields are ignored, so that
// newer writers of the same major version stay readable.
func ReadRecords(r io.Reader, source string) (*Records, error) {
	br, err := Uncompressed(r, source)
	if err != nil {
		return nil, err
	}
	recs := &Records{Source: source}
	line := 0
	sawHeader := false
	type seenKey struct {
		c      Case
		repeat int
	}
	seen := make(map[seenKey]int) // the line of each case's repeat
	for {
		raw, rerr := ReadLine(br)
		if rerr == io.EOF {
			break
		}
		line++
		perr := func(msg string, cause error) error {
			return &ParseError{Source: source, Line: line, Msg: msg, Err: cause}
		}
		truncated := rerr == io.ErrUnexpectedEOF // a last line with no newline
		var ge *gzipError
		switch {
		case errors.As(rerr, &ge):
			return nil, perr(ErrCorruptCompression.Error(), ge.err)
		case errors.Is(rerr, ErrLineTooLong):
			return nil, perr(fmt.Sprintf("not raw records (a raw-record line is at most %d MiB)", MaxLineSize>>20), rerr)
		case rerr != nil && !truncated:
			return nil, fmt.Errorf("reading %s: %w", source, rerr)
		}
		text := bytes.TrimSpace(raw)
		if len(text) == 0 {
			if truncated {
				break
			}
			continue
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
		case KindHeader:
			if sawHeader {
				return nil, perr("second header record: a raw file holds one run (were two files concatenated?)", nil)
			}
			if kind.Version > RecordVersion {
				return nil, perr(fmt.Sprintf("record version %d is newer than this reader understands (%d): use a newer ipcbench", kind.Version, RecordVersion), nil)
			}
			if kind.Version < 1 {
				return nil, perr(fmt.Sprintf("header has no valid version (got %d)", kind.Version), nil)
			}
			if err := json.Unmarshal(text, &recs.Header); err != nil {
				return nil, perr("bad header", err)
			}
			sawHeader = true
		case KindResult:
			if !sawHeader {
				return nil, perr("missing header: the first record is a result, want a header", nil)
			}
			var res Result
			if err := json.Unmarshal(text, &res); err != nil {
				return nil, perr("bad result", err)
			}
			if msg, cause := checkResult(&res); msg != "" {
				return nil, perr(msg, cause)
			}
			k := seenKey{res.Case(), res.Repeat}
			if first, ok := seen[k]; ok {
				return nil, perr(fmt.Sprintf("repeat %d of %s %s %s again (first on line %d): a run records each repeat once (were records copied twice?)", res.Repeat, res.Workload, res.Case().TransportLabel(), res.Placement, first), nil)
			}
			seen[k] = line
			recs.Results = append(recs.Results, res)
		case floorKind:
			return nil, perr("a record of ipcbench floor, not of a run: read the file with ipcbench floor -report", nil)
		default:
			return nil, perr(fmt.Sprintf("unknown record type %q (want %q or %q)", *kind.Type, KindHeader, KindResult), nil)
		}
		if truncated {
			break
		}
	}
	if !sawHeader {
		if line == 0 {
			line = 1
		}
		return nil, &ParseError{Source: source, Line: line, Msg: "missing header: the file holds no records"}
	}
	return recs, nil
}

// Uncompressed returns a buffered reader of the raw records in r: r's own
// bytes, or, when r starts with gzip's magic number, the stream they
// decompress to, whose errors (a stream cut short, a bad checksum) wrap
// ErrCorruptCompression and are never io.ErrUnexpectedEOF, which a reader
// of lines would take for a last line without its newline. Input
// compressed otherwise (zstd, xz, bzip2), or a gzip header that does not
// decode, is a *ParseError naming source.
func Uncompressed(r io.Reader, source string) (*bufio.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	if bytes.HasPrefix(magic, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, &ParseError{Source: source, Line: 1, Msg: "gzip-compressed, and its gzip header does not decode", Err: err}
		}
		return bufio.NewReader(gzipStream{zr}), nil
	}
	if name := compressedBy(magic); name != "" {
		return nil, &ParseError{Source: source, Line: 1, Msg: name + "-compressed (ipcbench reads plain or gzip-compressed raw records): decompress it first"}
	}
	return br, nil
}

// gzipStream reads a gzip stream, its errors (a stream cut short, a bad
// checksum) marked as gzipError: the gzip reader reports a stream cut
// short as io.ErrUnexpectedEOF, which ReadRecords must not take for a
// last line without its newline.
type gzipStream struct{ r io.Reader }

func (g gzipStream) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		err = &gzipError{err}
	}
	return n, err
}

// ErrCorruptCompression is wrapped by the error of a read of
// gzip-compressed raw records (see Uncompressed) whose stream is cut short
// or fails its checksum.
var ErrCorruptCompression = errors.New("the gzip-compressed data is cut short or corrupt (was the file copied before its writer finished?)")

// gzipError is an error of the gzip stream under the records.
type gzipError struct{ err error }

func (e *gzipError) Error() string   { return ErrCorruptCompression.Error() + ": " + e.err.Error() }
func (e *gzipError) Unwrap() []error { return []error{ErrCorruptCompression, e.err} }

// floorKind is the record type of package floor's records
// (floor.KindRecord), which that package's reader reads, not this one.
const floorKind = "floor"

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// compressedBy names the compression format whose magic number starts
// magic (zstd, xz, bzip2), or returns "" for none of them.
func compressedBy(magic []byte) string {
	for _, f := range []struct {
		name  string
		magic []byte
	}{
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
		{"bzip2", []byte("BZh")},
	} {
		if bytes.HasPrefix(magic, f.magic) {
			return f.name
		}
	}
	return ""
}

// checkResult validates the fields of one result; it returns what is wrong
// (and a cause) or "".
func checkResult(r *Result) (string, error) {
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
	case r.SampleEvery < 0 || r.SampleEvery > MaxSampleEvery:
		return fmt.Sprintf("result has sample_every %d (0 to %d)", r.SampleEvery, MaxSampleEvery), nil
	}
	switch r.Status {
	case StatusOK:
		if r.DurationNS <= 0 {
			return "ok result has no measured interval (duration_ns <= 0)", nil
		}
	case StatusFailed, StatusSkipped:
	default:
		return fmt.Sprintf("unknown status %q (want %q, %q or %q)", r.Status, StatusOK, StatusFailed, StatusSkipped), nil
	}
	switch r.LatencyKind {
	case LatencyRoundTrip, LatencyNone:
	default:
		return fmt.Sprintf("unknown latency kind %q (this reader knows %q)", r.LatencyKind, LatencyRoundTrip), nil
	}
	if r.Hist != "" {
		if r.LatencyKind != LatencyRoundTrip {
			return "result has a latency histogram that is not labelled round-trip", nil
		}
		if _, err := hist.Decode(r.Hist); err != nil {
			return "bad histogram", err
		}
	}
	return "", nil
}
