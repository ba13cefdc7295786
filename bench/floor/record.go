package floor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ipcbench/ipcbench/bench"
)

// KindRecord is the "type" of a floor measurement record.
const KindRecord = "floor"

// Sides of a pair.
const (
	SideC        = "c"
	SideIPCBench = "ipcbench"
)

// Record is one measurement of one side of a pair in one repeat, as a floor
// raw file holds it. It carries the whole pair, so a table can be rendered
// from the file alone.
type Record struct {
	Type      string `json:"type"` // always KindRecord
	Side      string `json:"side"` // SideC or SideIPCBench
	Workload  string `json:"workload"`
	Variant   string `json:"variant"` // the ipcbench variant of the pair
	Size      int    `json:"size"`
	Conns     int    `json:"conns"`
	Placement string `json:"placement"`
	// C is the C program's mode and arguments the pair is held against
	// ("spinfutex -S 20000"); CProgram is the program (pingpong, stream,
	// fanin).
	C        string  `json:"c"`
	CProgram string  `json:"c_program"`
	Target   string  `json:"target"`
	Repeat   int     `json:"repeat"` // 0-based
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"` // UnitNS, UnitMBps or UnitMsgs
	// Detail is the C program's RESULT line, or where ipcbench's two
	// processes ran.
	Detail string `json:"detail,omitempty"`
	// LineRTTBeforeNS and LineRTTAfterNS are the round trip of a cache
	// line between the two CPUs the side's messages crossed, in ns
	// (bench.ProbeLine), probed just before the side ran and just after;
	// LineRTTNS is their mean. Two more than 2× apart say the speed
	// changed while the side ran. Absent for same-core pairs, on one CPU,
	// when a probe failed, and in records made before they existed (the
	// first records with LineRTTNS have no before and after).
	LineRTTNS       int64 `json:"line_rtt_ns,omitempty"`
	LineRTTBeforeNS int64 `json:"line_rtt_before_ns,omitempty"`
	LineRTTAfterNS  int64 `json:"line_rtt_after_ns,omitempty"`
}

// record returns p's record for one side and repeat.
func (p Pair) record(side string, repeat int, value float64, detail string) Record {
	return Record{Type: KindRecord, Side: side, Workload: p.Workload, Variant: p.Variant, Size: p.Size, Conns: p.Conns,
		Placement: p.Placement, C: p.C.String(), CProgram: p.C.Program, Target: p.Target, Repeat: repeat, Value: value,
		Unit: p.Unit(), Detail: detail}
}

// File is a floor raw-record file: its header and its records in order.
type File struct {
	Header  bench.Header
	Records []Record
}

// Writer writes a floor raw-record file as JSON Lines, the header first,
// and keeps what it wrote in File.
type Writer struct {
	enc  *json.Encoder
	File File
}

// NewWriter writes hdr (with its type and version set) to w and returns a
// Writer for the records that follow.
func NewWriter(w io.Writer, hdr bench.Header) (*Writer, error) {
	hdr.Type, hdr.Version = bench.KindHeader, bench.RecordVersion
	fw := &Writer{enc: json.NewEncoder(w), File: File{Header: hdr}}
	if err := fw.enc.Encode(&hdr); err != nil {
		return nil, fmt.Errorf("floor: writing the header: %w", err)
	}
	return fw, nil
}

// Write writes one record (with its type set).
func (w *Writer) Write(r Record) error {
	r.Type = KindRecord
	if err := w.enc.Encode(&r); err != nil {
		return fmt.Errorf("floor: writing a record: %w", err)
	}
	w.File.Records = append(w.File.Records, r)
	return nil
}

// ErrMalformed is wrapped by every error Read returns for input that is not
// a floor raw-record file.
var ErrMalformed = errors.New("malformed floor records")

// Read parses a floor raw-record file, plain or gzip-compressed: a header (bench.KindHeader) of a
// version this reader knows, then records of type KindRecord. Blank lines
// are ignored. Errors name source and the line, and wrap ErrMalformed; a
// line longer than bench.MaxLineSize also wraps bench.ErrLineTooLong, and
// Read stops reading as soon as it knows.
func Read(r io.Reader, source string) (*File, error) {
	var f File
	sawHeader := false
	br, err := bench.Uncompressed(r, source)
	if pe := (*bench.ParseError)(nil); errors.As(err, &pe) {
		msg := pe.Msg
		if pe.Err != nil {
			msg += ": " + pe.Err.Error()
		}
		return nil, fmt.Errorf("%s:%d: %w: %s", source, pe.Line, ErrMalformed, msg)
	} else if err != nil {
		return nil, fmt.Errorf("reading %s: %w", source, err)
	}
	line := 0
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s:%d: %w: %s", source, line, ErrMalformed, fmt.Sprintf(format, a...))
	}
	for {
		raw, err := bench.ReadLine(br)
		if err == io.EOF {
			break
		}
		line++
		switch {
		case errors.Is(err, bench.ErrLineTooLong):
			return nil, fmt.Errorf("%s:%d: %w: not raw records (a raw-record line is at most %d MiB): %w", source, line, ErrMalformed, bench.MaxLineSize>>20, err)
		case errors.Is(err, bench.ErrCorruptCompression):
			return nil, fmt.Errorf("%s:%d: %w: %w", source, line, ErrMalformed, err)
		case err != nil && err != io.ErrUnexpectedEOF:
			return nil, fmt.Errorf("reading %s: %w", source, err)
		}
		text := bytes.TrimSpace(raw)
		if len(text) == 0 {
			continue
		}
		var kind struct {
			Type    string `json:"type"`
			Version int    `json:"version"`
		}
		if err := json.Unmarshal(text, &kind); err != nil {
			return nil, bad("bad JSON: %v", err)
		}
		switch {
		case kind.Type == bench.KindHeader && !sawHeader:
			if kind.Version < 1 || kind.Version > bench.RecordVersion {
				return nil, bad("header version %d (this reader knows 1 to %d)", kind.Version, bench.RecordVersion)
			}
			if err := json.Unmarshal(text, &f.Header); err != nil {
				return nil, bad("bad header: %v", err)
			}
			sawHeader = true
		case kind.Type == bench.KindHeader:
			return nil, bad("second header")
		case !sawHeader:
			return nil, bad("the first record is not a header (a floor file from before headers? run 'make floor' again)")
		case kind.Type == KindRecord:
			var rec Record
			if err := json.Unmarshal(text, &rec); err != nil {
				return nil, bad("bad record: %v", err)
			}
			if err := rec.check(); err != "" {
				return nil, bad("%s", err)
			}
			f.Records = append(f.Records, rec)
		case kind.Type == bench.KindResult:
			return nil, bad("an ipcbench run record: render it with 'ipcbench report'")
		default:
			return nil, bad("unknown record type %q (want %q)", kind.Type, KindRecord)
		}
	}
	if !sawHeader {
		return nil, fmt.Errorf("%s: %w: no header (empty file?)", source, ErrMalformed)
	}
	return &f, nil
}

// check returns what is wrong with a record, or "".
func (r *Record) check() string {
	switch {
	case r.Side != SideC && r.Side != SideIPCBench:
		return fmt.Sprintf("side %q (want %q or %q)", r.Side, SideC, SideIPCBench)
	case r.Workload == "" || r.Variant == "" || r.C == "":
		return "record has no workload, variant or C program"
	case r.Unit != UnitNS && r.Unit != UnitMBps && r.Unit != UnitMsgs:
		return fmt.Sprintf("unit %q", r.Unit)
	case r.Repeat < 0 || r.Size < 0 || r.Conns < 0:
		return "negative repeat, size or conns"
	case !(r.Value > 0):
		return fmt.Sprintf("value %v is not positive", r.Value)
	}
	return ""
}
