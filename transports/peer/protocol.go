// Package peer is the peer process of ipcbench and the typed protocol the
// bench process speaks to it.
//
// The peer is the same executable as the bench, run by internal/proc as a
// hidden subcommand (`ipcbench peer`, or a test binary's TestMain); Main is
// its body. It dials the connections the bench process listens for and
// serves a role on each; the bench process measures.
//
// # Control protocol
//
// Control traffic runs over the peer's stdin (jobs) and stdout (replies),
// one JSON object per line, after the handshake that internal/proc
// describes; the measured connections carry only workload frames. Every job
// is a Job, every reply a Reply, and a reply carries the ID of the job it
// answers:
//
//	bench → peer                          peer → bench
//	{"op":"serve","id":1,...}             {"op":"ready","id":1}  or  {"op":"error","id":1,"error":"..."}
//	                                      ... later, once every connection reached EOF:
//	                                      {"op":"done","id":1,"conns":[{"messages":...},...]}
//	{"op":"cpu","id":2}  (at any time)    {"op":"cpu","id":2,"user_ns":...,"sys_ns":...}
//	{"op":"exit"}  or EOF on stdin        (none: the peer closes everything and exits 0)
//
// A serve job dials Job.Conns connections, one after another in index
// order (so a listener that accepts in arrival order returns them in index
// order), writes Job.Secret first on each (when set: the listening side
// admits only connections that start with it, see Secret), answers ready
// once all are up, and serves Job.Role on each in its own goroutine. A connection error other than EOF at a frame boundary is
// reported in the done reply: Reply.Error names the connection and the
// cause, and ConnStats.Error holds it per connection. Only one serve job
// runs at a time; a peer can run another after done.
//
// # Roles
//
// RoleEcho reads frames and writes each back unchanged. RoleSink reads
// frames and checks every payload with frame.Check (connection id = the
// connection's index, sequence numbers from 0); a zero-length frame ends a
// segment: the sink answers on the same connection with one frame holding
// the segment's counts (EncodeAck), then starts a new segment (sequence
// numbers from 0 again) and goes on until EOF. A sink therefore needs a
// framing mode that can carry an empty message: length prefixes or
// delimiters, not fixed-size frames.
//
// RoleHTTP serves net/http on the connection (see RoleHTTP), for the http
// workload: what a transport buys an application that speaks HTTP.
//
// The echo and sink loops reuse their buffers: they allocate nothing per
// message.
//
// # Stand-alone peer and hello
//
// Serve is the peer as a server (`ipcbench serve`): it listens instead of
// dialing, and many bench processes may use it at once. Every connection to
// it starts with one hello line
// from the client and one answer line from the server; only then do other
// bytes flow, so neither side reads past the other's line:
//
//	client → server   ipcbench-hello/<version> control
//	                  ipcbench-hello/<version> data session=<id> conn=<index>
//	server → client   ipcbench-ok/<version> session=<id> tool=<tool, spaces allowed>
//	                  ipcbench-error <reason>
//
// <version> is ProtocolVersion in decimal. A control connection then
// speaks the Job/Reply protocol (one JSON object per line, as on a spawned
// peer's stdin and stdout, plus OpHeader and OpEnd; a serve job waits for
// its data connections instead of dialing); the ok answer to it carries a
// new session id,
// 32 random hex digits that prove the session's data connections. A data
// connection names its session and its connection index; after the ok
// answer it carries only workload frames. The error answer is the same in
// every version, so a client and a server of different versions fail with
// a line that says so.
package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
)

// Job operations (Job.Op).
const (
	OpServe = "serve" // dial Job.Conns connections and serve Job.Role on them
	OpCPU   = "cpu"   // report the peer's CPU time
	OpExit  = "exit"  // close everything and exit 0
)

// Reply operations (Reply.Op).
const (
	OpReady = "ready" // a serve job's connections are all dialed
	OpError = "error" // a job failed or was not understood; Reply.Error says why
	OpDone  = "done"  // a serve job's connections all ended; Reply.Conns counts
	// OpCPU answers a cpu job with Reply.UserNS and Reply.SysNS.
)

// Roles a peer serves on its connections (Job.Role).
const (
	RoleEcho = "echo" // write every frame back unchanged
	RoleSink = "sink" // check every frame, acknowledge segments with counts
	// RoleTruncate writes the first half of one TruncateSize-byte frame and
	// then ends its side of the connection in the middle of it: with
	// CloseWrite where the connection has it (then it waits for the bench
	// side to close), otherwise by closing. It is a fault for the
	// reliability tests: the reader must report a truncated frame.
	RoleTruncate = "truncate"
)

// TruncateSize is the announced size of the frame RoleTruncate leaves
// unfinished.
const TruncateSize = 4096

// MaxConns is the largest Job.Conns a peer accepts.
const MaxConns = 1024

// Job is one request from the bench process to the peer.
type Job struct {
	// Op is OpServe, OpCPU or OpExit.
	Op string `json:"op"`
	// ID is echoed in the reply, so replies are matched to their jobs.
	ID uint64 `json:"id,omitempty"`
	// Endpoint is what to dial (OpServe). Its files are not sent: the peer
	// takes Endpoint.NumFiles of them from the endpoint it was started with
	// (proc.Spec.Attach set to that endpoint's AttachTo), in order.
	Endpoint transports.Endpoint `json:"endpoint"`
	// Conns is how many connections to dial (OpServe), with Endpoint.Index
	// 0..Conns-1; 0 means 1.
	Conns int `json:"conns,omitempty"`
	// Role is RoleEcho, RoleSink, RoleHTTP, RoleTruncate or RoleConnect
	// (OpServe).
	Role string `json:"role,omitempty"`
	// Frame is the framing on the connections (OpServe).
	Frame FrameSpec `json:"frame"`
	// Secret, when set, is written as the first bytes of every connection
	// the job dials, before any frame (see Secret).
	Secret Secret `json:"secret,omitempty"`
	// Model is the server model that serves the connections (OpServe):
	// ModelGoroutine (also when empty), ModelThread, ModelProcess or
	// ModelPoll; see Models.
	Model string `json:"model,omitempty"`
}

// Reply is one message from the peer to the bench process.
type Reply struct {
	// Op is OpReady, OpError, OpDone or OpCPU.
	Op string `json:"op"`
	// ID is the ID of the job this answers (0 for a line the peer could not
	// decode).
	ID uint64 `json:"id,omitempty"`
	// Error says what failed: the reason for OpError; for OpDone, the
	// connections that ended with an error and why (empty when all ended
	// cleanly); for OpCPU, why the CPU time could not be read.
	Error string `json:"error,omitempty"`
	// NotApplicable marks an OpError that says the job's server model
	// cannot serve the transport or workload at all (ErrNotApplicable):
	// the case is to be skipped, not failed.
	NotApplicable bool `json:"not_applicable,omitempty"`
	// Conns has one entry per connection of the serve job, by index
	// (OpDone).
	Conns []ConnStats `json:"conns,omitempty"`
	// UserNS and SysNS are the peer's CPU time so far, getrusage
	// (RUSAGE_SELF) user and system time in ns (OpCPU).
	UserNS int64 `json:"user_ns,omitempty"`
	SysNS  int64 `json:"sys_ns,omitempty"`
	// Header is a stand-alone peer's environment header, as JSON
	// (OpHeader).
	Header json.RawMessage `json:"header,omitempty"`
}

// ConnStats counts what one connection of a serve job carried.
type ConnStats struct {
	// Messages counts frames read (excluding a sink's end-of-segment
	// markers).
	Messages int64 `json:"messages"`
	// Bytes counts payload bytes read.
	Bytes int64 `json:"bytes"`
	// Errors counts payloads that failed frame.Check (sink).
	Errors int64 `json:"errors"`
	// ShortReads counts reads on the connection that returned fewer bytes
	// than asked for — for a sink reading in place (transports.PeekReader),
	// lent pieces that ended inside a frame: evidence that partial reads
	// happened.
	ShortReads int64 `json:"short_reads,omitempty"`
	// CheckError describes the first payload that failed its check.
	CheckError string `json:"check_error,omitempty"`
	// Error is the connection's error, empty when it ended with EOF at a
	// frame boundary.
	Error string `json:"error,omitempty"`
}

// FrameSpec is a frame.Config as it travels in a Job.
type FrameSpec struct {
	// Mode is "length" (the default when empty), "fixed" or "delimited".
	Mode string `json:"mode,omitempty"`
	// Max is frame.Config.MaxSize (0: the default, frame.DefaultMaxSize,
	// which is also the largest a peer accepts: the client chooses it, and
	// the peer's buffers may grow to it).
	Max int `json:"max,omitempty"`
	// Size is frame.Config.Size (fixed mode).
	Size int `json:"size,omitempty"`
	// Delim is frame.Config.Delim (delimited mode; 0: '\n').
	Delim byte `json:"delim,omitempty"`
}

// FrameSpecOf returns the FrameSpec of c.
func FrameSpecOf(c frame.Config) FrameSpec {
	return FrameSpec{Mode: c.Mode.String(), Max: c.MaxSize, Size: c.Size, Delim: c.Delim}
}

// Config returns the frame.Config f describes, validated; the error wraps
// frame.ErrBadConfig, also for a Max above frame.DefaultMaxSize.
func (f FrameSpec) Config() (frame.Config, error) {
	if f.Max > frame.DefaultMaxSize {
		return frame.Config{}, fmt.Errorf("%w: largest message %d bytes, above the %d a peer takes", frame.ErrBadConfig, f.Max, frame.DefaultMaxSize)
	}
	mode := frame.LengthPrefix
	if f.Mode != "" {
		m, err := frame.ParseMode(f.Mode)
		if err != nil {
			return frame.Config{}, err
		}
		mode = m
	}
	c := frame.Config{Mode: mode, MaxSize: f.Max, Size: f.Size, Delim: f.Delim}
	if _, err := c.Normalize(); err != nil {
		return frame.Config{}, err
	}
	return c, nil
}

// Ack is a sink's acknowledgement of one segment: what it read between the
// previous end marker (or the start) and this one.
type Ack struct {
	Messages int64 // frames read, the end marker excluded
	Bytes    int64 // payload bytes read
	Errors   int64 // payloads that failed frame.Check
}

// AckPrefix starts every acknowledgement payload.
const AckPrefix = "ipcbench-ack/1"

// MaxAckLen is the longest acknowledgement payload EncodeAck makes.
const MaxAckLen = len(AckPrefix) + len(" messages=") + len(" bytes=") + len(" errors=") + 3*19

// ErrBadAck means a payload is not a valid acknowledgement.
var ErrBadAck = errors.New("peer: malformed acknowledgement")

// EncodeAck appends the acknowledgement payload of a to dst and returns the
// extended slice. The payload is ASCII without newlines,
//
//	ipcbench-ack/1 messages=<n> bytes=<n> errors=<n>
//
// with decimal counts, so it travels in length-prefixed and delimited
// frames alike. It allocates only when dst lacks capacity: MaxAckLen bytes
// suffice for any counts.
func EncodeAck(dst []byte, a Ack) []byte {
	dst = append(dst, AckPrefix...)
	dst = append(dst, " messages="...)
	dst = strconv.AppendInt(dst, a.Messages, 10)
	dst = append(dst, " bytes="...)
	dst = strconv.AppendInt(dst, a.Bytes, 10)
	dst = append(dst, " errors="...)
	dst = strconv.AppendInt(dst, a.Errors, 10)
	return dst
}

// DecodeAck parses an acknowledgement payload made by EncodeAck. Anything
// else (another prefix, missing or extra fields, negative or malformed
// counts) gives an error wrapping ErrBadAck.
func DecodeAck(b []byte) (Ack, error) {
	fields := bytes.Split(b, []byte{' '})
	if len(fields) != 4 || string(fields[0]) != AckPrefix {
		return Ack{}, fmt.Errorf("%w: %q", ErrBadAck, clip(b))
	}
	var a Ack
	for i, f := range []struct {
		key string
		dst *int64
	}{{"messages=", &a.Messages}, {"bytes=", &a.Bytes}, {"errors=", &a.Errors}} {
		v, ok := bytes.CutPrefix(fields[i+1], []byte(f.key))
		if !ok {
			return Ack{}, fmt.Errorf("%w: field %d is %q, want %s<n>", ErrBadAck, i+1, clip(fields[i+1]), f.key)
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || !canonical(v) {
			return Ack{}, fmt.Errorf("%w: %s%q is not a count", ErrBadAck, f.key, clip(v))
		}
		*f.dst = n
	}
	return a, nil
}

// canonical reports whether v is a count as EncodeAck writes it: decimal
// digits without sign or leading zeros.
func canonical(v []byte) bool {
	if len(v) == 0 || (len(v) > 1 && v[0] == '0') {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// clip shortens b for an error message.
func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
