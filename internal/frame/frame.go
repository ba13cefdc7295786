// Package frame delimits messages on a byte stream.
//
// Sockets, pipes and shared-memory rings are byte streams: a read or a write
// may move fewer bytes than asked. ipcbench frames messages above the
// transport, here and only here, so the cost of framing is the same for every
// transport. Three framing modes are offered; the default is LengthPrefix.
//
// # Wire format
//
// All modes carry a sequence of messages, one after another, with no stream
// header, no padding and no trailer. A message's payload is an arbitrary byte
// string of 0 to Config.MaxSize bytes (DefaultMaxSize, 64 MiB, unless set);
// the limits below count payload bytes only, never framing bytes.
//
// LengthPrefix (the default, "length"):
//
//	+----------------------------+-----------------------+
//	| length: 4 bytes, uint32 BE | payload: length bytes |
//	+----------------------------+-----------------------+
//
// Each frame is a LengthHeaderLen (4) byte unsigned length in network byte
// order (big-endian), then exactly that many payload bytes. A length of zero is
// a valid empty message. A length greater than MaxSize is a protocol violation:
// the decoder fails with ErrTooLarge as soon as it has read the 4 length bytes,
// before allocating or reading anything for the payload. MaxSize can therefore
// never exceed MaxLengthPrefix (2^32-1).
//
// Fixed ("fixed"):
//
//	+-------------------------------+
//	| payload: exactly Size bytes   |
//	+-------------------------------+
//
// Every message is exactly Config.Size bytes (1 <= Size <= MaxSize) and the
// frame is the payload itself: both ends must agree on Size out of band.
// Writing a message of any other length fails with ErrMalformed.
//
// Delimited ("delimited"):
//
//	+----------------------------------+-------------+
//	| payload: bytes other than Delim  | Delim: 1 B  |
//	+----------------------------------+-------------+
//
// Each message is its payload followed by one delimiter byte, Config.Delim
// (DefaultDelim, '\n', when zero). The payload must not contain the delimiter:
// writing one that does fails with ErrMalformed. A decoder that has buffered
// more than MaxSize payload bytes without finding the delimiter fails with
// ErrTooLarge.
//
// # End of stream
//
// In every mode, end of stream exactly at a frame boundary is the orderly end
// and ReadMsg returns io.EOF itself (not wrapped). End of stream inside a frame
// (inside the length prefix, the payload, or before a delimiter) returns an
// error wrapping both ErrTruncated and io.ErrUnexpectedEOF.
//
// # Payload layout
//
// Workload payloads (Fill, Check, Stamp) are stamped and patterned so that every echoed byte is
// checked (docs/methodology.md §2):
//
//	offset 0                8                        24                  len
//	+-----------------------+------------------------+-------------------+
//	| conn: 8 hex digits    | seq: 16 hex digits     | pattern bytes     |
//	+-----------------------+------------------------+-------------------+
//
// The stamp is the connection id (uint32) and the sequence number (uint64)
// as fixed-width lowercase hexadecimal ASCII, most significant digit first:
// HeaderLen (24) bytes in all. A payload shorter than HeaderLen carries the
// first len(payload) bytes of its stamp. Every byte at offset i >= HeaderLen
// is PatternByte(i), a function of the offset alone with period
// PatternPeriod (a prime, so a shift of the data by a whole number of
// machine words is still detected). Neither the stamp nor the pattern ever
// contains '\n' (DefaultDelim), so payloads travel unchanged in Delimited
// framing with the default delimiter.
//
// # Costs
//
// A Writer sends a frame of up to CoalesceLimit payload bytes with a single
// Write call on the underlying stream (the framing bytes and the payload are
// copied into a reused buffer); larger frames take two Write calls (framing,
// then payload, or payload then delimiter) without copying the payload.
// On a stream that writes several buffers in one call (BuffersWriter), a
// payload of DirectMin bytes or more goes out with its framing bytes in one
// WriteBuffers call (writev(2)) instead, uncopied, whatever its size.
// Fixed frames, which have no framing bytes, always take one Write call. A
// Reader reads through one internal buffer of ReadBufferSize bytes, so a small
// message normally costs one read call on the stream, and reads payloads larger
// than that buffer directly into the destination. Neither allocates per message
// once its buffers have grown to the sizes in use.
//
// Writers and Readers are not safe for concurrent use; use one per direction
// of a connection.
package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
)

// Mode selects a framing mode. The zero value is LengthPrefix.
type Mode int

// Framing modes; see the package documentation for their wire formats.
const (
	// LengthPrefix frames each message as a 4-byte big-endian unsigned
	// length followed by the payload. It is the default.
	LengthPrefix Mode = iota
	// Fixed frames nothing: every message is exactly Config.Size bytes.
	Fixed
	// Delimited ends every message with the byte Config.Delim; payloads must
	// not contain it.
	Delimited
)

// Size constants of the wire formats.
const (
	// LengthHeaderLen is the size of the LengthPrefix length field.
	LengthHeaderLen = 4
	// MaxLengthPrefix is the largest length a LengthPrefix header can carry,
	// and so the largest MaxSize that mode accepts.
	MaxLengthPrefix = math.MaxUint32
	// DelimiterLen is the size of the Delimited end-of-message marker.
	DelimiterLen = 1
	// DefaultDelim is the delimiter used when Config.Delim is zero.
	DefaultDelim byte = '\n'
	// DefaultMaxSize is the maximum payload size used when Config.MaxSize
	// is zero.
	DefaultMaxSize = 64 << 20
	// CoalesceLimit is the largest payload a Writer sends together with its
	// framing bytes in a single Write call.
	CoalesceLimit = 64 << 10
	// ReadBufferSize is the size of a Reader's internal read buffer (a
	// Delimited Reader grows it, up to MaxSize+1 bytes, to hold a longer
	// message).
	ReadBufferSize = 64 << 10
	// DirectMin is the payload size from which a Writer or Reader on a
	// CheapCalls stream bypasses its own buffer (see CheapCalls).
	DirectMin = 4 << 10
)

// CheapCalls is implemented by streams whose Read and Write make no system
// call (shared memory: shm-lock, shm-ring), so that a call costs little
// beyond the bytes it copies and a copy through a Writer's or Reader's own
// buffer costs more than the extra call it saves. CheapCalls reports
// whether that holds (a wrapper reports its inner stream's answer).
//
// On such a stream a Writer sends the framing bytes of a payload of
// DirectMin bytes or more in a call of their own rather than first copying
// the payload behind them, and a Reader reads a payload of DirectMin bytes
// or more that the caller's buffer holds straight into it rather than
// through its own, and after such a payload reads the next frame's framing
// bytes exactly, so that the next payload can go the same way: every
// payload byte is copied once. Smaller messages are framed and
// read as on any stream, in one call where possible.
type CheapCalls interface {
	CheapCalls() bool
}

// BuffersWriter is implemented by streams that write several buffers with
// one call (writev(2) on a socket or pipe). WriteBuffers writes the
// buffers of *v in order, all of them unless it fails, as one Write of
// their concatenation would, and consumes *v as net.Buffers.WriteTo does;
// it returns the number of bytes written. A Writer on such a stream sends
// large payloads with their framing bytes this way, without copying them.
type BuffersWriter interface {
	WriteBuffers(v *net.Buffers) (int64, error)
}

// buffersWriter returns s as a BuffersWriter, or nil when it is not one
// or its calls are cheap (then separate calls cost less than the vector).
func buffersWriter(s any) BuffersWriter {
	if bw, ok := s.(BuffersWriter); ok && !cheap(s) {
		return bw
	}
	return nil
}

// cheap reports whether s says its calls are cheap.
func cheap(s any) bool {
	c, ok := s.(CheapCalls)
	return ok && c.CheapCalls()
}

// bigGrowStep is the first size of the Reader-owned buffer for payloads
// larger than the read buffer; it doubles from there up to the payload size.
const bigGrowStep = 256 << 10

// maxEmptyReads bounds how many successive (0, nil) reads a Reader accepts
// before failing with io.ErrNoProgress, as bufio does.
const maxEmptyReads = 100

// Sentinel errors, tested with errors.Is.
var (
	// ErrTooLarge means a message exceeds Config.MaxSize: a length prefix
	// over the maximum, a delimited message without a delimiter within
	// MaxSize bytes, or a payload given to WriteMsg over the maximum.
	ErrTooLarge = errors.New("frame: message too large")
	// ErrMalformed means a message breaks its mode's rules: a payload that
	// contains the delimiter, or a Fixed message of the wrong length.
	ErrMalformed = errors.New("frame: malformed message")
	// ErrTruncated means the stream ended inside a frame. Such errors also
	// wrap io.ErrUnexpectedEOF.
	ErrTruncated = errors.New("frame: truncated frame")
	// ErrBadConfig means a Config is invalid (unknown mode, negative or
	// out-of-range sizes). WriteMsg and ReadMsg of a Writer or Reader made
	// with such a Config always return an error wrapping it.
	ErrBadConfig = errors.New("frame: bad config")
)

// String returns the mode's name as ParseMode accepts it: "length", "fixed"
// or "delimited" (or "Mode(n)" for an unknown value).
func (m Mode) String() string {
	switch m {
	case LengthPrefix:
		return "length"
	case Fixed:
		return "fixed"
	case Delimited:
		return "delimited"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode returns the Mode named s: "length", "fixed" or "delimited". Any
// other string is an error wrapping ErrBadConfig.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "length":
		return LengthPrefix, nil
	case "fixed":
		return Fixed, nil
	case "delimited":
		return Delimited, nil
	}
	return 0, fmt.Errorf("%w: unknown framing mode %q (want length, fixed or delimited)", ErrBadConfig, s)
}

// Config selects a framing mode and its limits. The zero value is valid:
// LengthPrefix with DefaultMaxSize.
type Config struct {
	// Mode is the framing mode.
	Mode Mode
	// MaxSize is the largest payload, in bytes, either end accepts; 0 means
	// DefaultMaxSize. LengthPrefix allows at most MaxLengthPrefix.
	MaxSize int
	// Size is the length of every message in Fixed mode, 1..MaxSize. Other
	// modes ignore it.
	Size int
	// Delim ends every message in Delimited mode; 0 means DefaultDelim
	// ('\n'). Other modes ignore it.
	Delim byte
}

// Normalize returns c with defaults filled in (MaxSize, Delim), or an error
// wrapping ErrBadConfig when c is invalid.
func (c Config) Normalize() (Config, error) {
	if c.MaxSize < 0 {
		return c, fmt.Errorf("%w: negative MaxSize %d", ErrBadConfig, c.MaxSize)
	}
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	switch c.Mode {
	case LengthPrefix:
		if uint64(c.MaxSize) > MaxLengthPrefix {
			return c, fmt.Errorf("%w: MaxSize %d exceeds the largest length prefix %d", ErrBadConfig, c.MaxSize, uint64(MaxLengthPrefix))
		}
	case Fixed:
		if c.Size < 1 || c.Size > c.MaxSize {
			return c, fmt.Errorf("%w: fixed message size %d outside 1..%d", ErrBadConfig, c.Size, c.MaxSize)
		}
	case Delimited:
		if c.Delim == 0 {
			c.Delim = DefaultDelim
		}
	default:
		return c, fmt.Errorf("%w: unknown framing mode %d", ErrBadConfig, int(c.Mode))
	}
	return c, nil
}

// Writer writes framed messages to an underlying byte stream.
type Writer struct {
	w   io.Writer
	cfg Config
	// err is returned by every WriteMsg once set: a bad Config, or a write
	// that failed after part of a frame reached the stream.
	err error
	// buf holds a coalesced frame (framing bytes and payload) for one Write.
	buf []byte
	// small holds framing bytes written on their own (header or delimiter).
	small [LengthHeaderLen]byte
	// direct: w's calls are cheap (CheapCalls), so large payloads are not
	// coalesced with their framing bytes.
	direct bool
	// vec is w as a BuffersWriter (nil if it is none); iov and bufs are
	// the vector handed to it, kept here so that no call allocates.
	vec  BuffersWriter
	iov  [2][]byte
	bufs net.Buffers
}

// NewWriter returns a Writer that frames messages onto w according to cfg.
// An invalid cfg is reported by every WriteMsg (wrapping ErrBadConfig).
func NewWriter(w io.Writer, cfg Config) *Writer {
	fw := &Writer{w: w, direct: cheap(w), vec: buffersWriter(w)}
	fw.cfg, fw.err = cfg.Normalize()
	return fw
}

// Reset makes w write to dst as if it were new, keeping its buffers, so
// that a new connection reuses them (the connect workload's per-exchange
// connections allocate nothing for framing).
func (w *Writer) Reset(dst io.Writer) {
	w.w = dst
	w.direct = cheap(dst)
	w.vec = buffersWriter(dst)
	w.err = nil
	w.cfg, w.err = w.cfg.Normalize()
}

// WriteMsg writes p as one framed message. It fails with ErrTooLarge when p
// exceeds MaxSize, with ErrMalformed when p breaks the mode's rules (Fixed:
// wrong length; Delimited: contains the delimiter); then nothing is written.
//
// Short writes without an error are retried. When the underlying stream
// fails after part of a frame was written, the stream is desynchronised:
// that error (wrapping the cause) is returned by this and every later call.
// An error before any byte was written leaves the Writer usable.
//
// WriteMsg does not retain p and does not allocate once its coalescing
// buffer has grown to the sizes in use.
func (w *Writer) WriteMsg(p []byte) error {
	if w.err != nil {
		return w.err
	}
	switch w.cfg.Mode {
	case Fixed:
		if len(p) != w.cfg.Size {
			return fmt.Errorf("%w: fixed-size message of %d bytes, want %d", ErrMalformed, len(p), w.cfg.Size)
		}
		return w.writeFrame(p, len(p))
	case Delimited:
		if len(p) > w.cfg.MaxSize {
			return fmt.Errorf("%w: message of %d bytes exceeds maximum %d", ErrTooLarge, len(p), w.cfg.MaxSize)
		}
		if i := bytes.IndexByte(p, w.cfg.Delim); i >= 0 {
			return fmt.Errorf("%w: payload contains the delimiter %q at offset %d", ErrMalformed, w.cfg.Delim, i)
		}
		total := len(p) + DelimiterLen
		if w.vectored(len(p)) {
			w.small[0] = w.cfg.Delim
			return w.writeVec(p, w.small[:DelimiterLen], total)
		}
		if w.coalesce(len(p)) {
			buf := w.grow(total)
			copy(buf, p)
			buf[len(p)] = w.cfg.Delim
			return w.writeFrame(buf, total)
		}
		if err := w.writePart(p, 0, total); err != nil {
			return err
		}
		w.small[0] = w.cfg.Delim
		return w.writePart(w.small[:DelimiterLen], len(p), total)
	default: // LengthPrefix; Normalize rejected unknown modes.
		if len(p) > w.cfg.MaxSize {
			return fmt.Errorf("%w: message of %d bytes exceeds maximum %d", ErrTooLarge, len(p), w.cfg.MaxSize)
		}
		total := LengthHeaderLen + len(p)
		if w.vectored(len(p)) {
			binary.BigEndian.PutUint32(w.small[:], uint32(len(p)))
			return w.writeVec(w.small[:], p, total)
		}
		if w.coalesce(len(p)) {
			buf := w.grow(total)
			binary.BigEndian.PutUint32(buf, uint32(len(p)))
			copy(buf[LengthHeaderLen:], p)
			return w.writeFrame(buf, total)
		}
		binary.BigEndian.PutUint32(w.small[:], uint32(len(p)))
		if err := w.writePart(w.small[:], 0, total); err != nil {
			return err
		}
		return w.writePart(p, LengthHeaderLen, total)
	}
}

// coalesce reports whether a payload of n bytes is copied behind its
// framing bytes and sent in one Write.
func (w *Writer) coalesce(n int) bool {
	return n <= CoalesceLimit && !(w.direct && n >= DirectMin)
}

// vectored reports whether a payload of n bytes goes out with its framing
// bytes in one WriteBuffers call.
func (w *Writer) vectored(n int) bool {
	return w.vec != nil && n >= DirectMin
}

// writeVec writes a whole frame of total bytes, a then b, with one
// WriteBuffers call. A failure after the first byte breaks the Writer.
func (w *Writer) writeVec(a, b []byte, total int) error {
	w.iov = [2][]byte{a, b}
	w.bufs = w.iov[:]
	n, err := w.vec.WriteBuffers(&w.bufs)
	w.iov, w.bufs = [2][]byte{}, nil // retain nothing of the caller's
	if n < 0 || n > int64(total) {
		err = fmt.Errorf("frame: write returned invalid count %d for %d bytes: %w", n, total, io.ErrShortWrite)
		n = 0
	} else if err == nil && n < int64(total) {
		err = io.ErrShortWrite
	}
	if err == nil {
		return nil
	}
	if n == 0 {
		return fmt.Errorf("frame: write: %w", err)
	}
	w.err = fmt.Errorf("frame: write failed after %d of %d frame bytes; stream unusable: %w", n, total, err)
	return w.err
}

// grow returns w.buf resliced to n bytes, growing it if needed.
func (w *Writer) grow(n int) []byte {
	if cap(w.buf) < n {
		c := 2 * cap(w.buf)
		if c < n {
			c = n
		}
		if c > CoalesceLimit+LengthHeaderLen {
			c = CoalesceLimit + LengthHeaderLen
		}
		w.buf = make([]byte, c)
	}
	return w.buf[:n]
}

// writeFrame writes a whole frame b of total bytes.
func (w *Writer) writeFrame(b []byte, total int) error {
	return w.writePart(b, 0, total)
}

// writePart writes b, which starts at offset off of a frame of total bytes.
// A failure after the first byte of the frame breaks the Writer.
func (w *Writer) writePart(b []byte, off, total int) error {
	done := 0
	for done < len(b) {
		n, err := w.w.Write(b[done:])
		if n < 0 || n > len(b)-done {
			err = fmt.Errorf("frame: write returned invalid count %d for %d bytes: %w", n, len(b)-done, io.ErrShortWrite)
			n = 0
		} else if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		done += n
		if err != nil {
			if off+done == 0 {
				return fmt.Errorf("frame: write: %w", err)
			}
			w.err = fmt.Errorf("frame: write failed after %d of %d frame bytes; stream unusable: %w", off+done, total, err)
			return w.err
		}
	}
	return nil
}

// Reader reads framed messages from an underlying byte stream.
type Reader struct {
	r   io.Reader
	cfg Config
	// err is returned by every ReadMsg once set: a bad Config, a protocol
	// violation, or a failure after part of a frame was consumed.
	err error
	// pending is an error that arrived together with data; it is returned
	// by the next fill.
	pending error
	// buf[rd:wr] holds buffered, unconsumed stream bytes.
	buf    []byte
	rd, wr int
	// scanned counts bytes of buf[rd:wr] already searched for the
	// delimiter (Delimited only).
	scanned int
	// big is the reused destination for messages that fit neither the
	// caller's buffer nor the internal one.
	big []byte
	// direct: r's calls are cheap (CheapCalls), so large payloads are read
	// straight into the caller's buffer; lastDirect: the last payload was
	// read so, and the next framing bytes are read exactly, so that the
	// next payload can be too.
	direct, lastDirect bool
	// directMin is DirectMin (tests lower it).
	directMin int
	// exact makes fill read no more than need's missing bytes.
	exact bool
}

// NewReader returns a Reader that decodes messages from r according to cfg.
// An invalid cfg is reported by every ReadMsg (wrapping ErrBadConfig).
func NewReader(r io.Reader, cfg Config) *Reader {
	return NewReaderSize(r, cfg, ReadBufferSize)
}

// Reset makes r read from src as if it were new, discarding anything
// buffered and any sticky error, and keeping its buffers.
func (r *Reader) Reset(src io.Reader) {
	r.r = src
	r.rd, r.wr, r.scanned = 0, 0, 0
	r.pending = nil
	r.direct, r.lastDirect = cheap(src), false
	r.cfg, r.err = r.cfg.Normalize()
}

// minReadBuffer is the smallest read buffer NewReaderSize makes: it must
// hold a length prefix.
const minReadBuffer = 8

// NewReaderSize is NewReader with an internal read buffer of size bytes
// (at least minReadBuffer) instead of ReadBufferSize. A frame that fits the
// buffer can be returned in it (ReadMsg with a nil buffer) without a
// second copy, so a reader that only inspects its messages gains by one
// that holds its largest frames; tests use small buffers to reach every
// path.
func NewReaderSize(r io.Reader, cfg Config, size int) *Reader {
	fr := &Reader{r: r, direct: cheap(r), directMin: DirectMin}
	fr.cfg, fr.err = cfg.Normalize()
	if fr.err == nil {
		n := max(size, minReadBuffer)
		if fr.cfg.Mode == Delimited && fr.cfg.MaxSize+DelimiterLen < n {
			n = fr.cfg.MaxSize + DelimiterLen
		}
		fr.buf = make([]byte, n)
	}
	return fr
}

// ReadMsg reads the next message and returns its payload. The payload is
// placed in buf[:n] when it fits buf's capacity; otherwise it is returned
// in memory owned by the Reader (grown as needed, never beyond MaxSize
// bytes for a payload). Either way the result is valid only until the next
// call to ReadMsg.
//
// At the orderly end of the stream (end of file at a frame boundary) it
// returns io.EOF itself. End of stream inside a frame returns an error
// wrapping ErrTruncated and io.ErrUnexpectedEOF; a frame over MaxSize
// returns ErrTooLarge before the payload is read or allocated. Both leave
// the Reader failed: every later call returns the same error, as does any
// failure of the stream after part of a frame was consumed. Other errors
// of the stream (a deadline, a closed connection) are wrapped and returned;
// when they happen before any part of the frame was consumed (always the
// case for frames that fit the internal buffer) the Reader stays usable and
// a later call resumes where this one stopped.
func (r *Reader) ReadMsg(buf []byte) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.rd == r.wr {
		r.rd, r.wr, r.scanned = 0, 0, 0
	}
	switch r.cfg.Mode {
	case Fixed:
		return r.readBody(buf, 0, r.cfg.Size)
	case Delimited:
		return r.readDelimited(buf)
	default: // LengthPrefix
		r.exact = r.lastDirect
		err := r.need(LengthHeaderLen, "length prefix")
		r.exact = false
		if err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(r.buf[r.rd:])
		if uint64(n) > uint64(r.cfg.MaxSize) {
			r.err = fmt.Errorf("%w: frame length %d exceeds maximum %d", ErrTooLarge, n, r.cfg.MaxSize)
			return nil, r.err
		}
		return r.readBody(buf, LengthHeaderLen, int(n))
	}
}

// buffered returns the number of unconsumed buffered bytes.
func (r *Reader) buffered() int { return r.wr - r.rd }

// fill reads once from the stream into the free tail of r.buf, compacting
// it first when the tail is full, and reading at most max bytes when max
// is positive. It returns nil when it added bytes.
func (r *Reader) fill(max int) error {
	if r.pending != nil {
		err := r.pending
		r.pending = nil
		return err
	}
	if r.wr == len(r.buf) && r.rd > 0 {
		copy(r.buf, r.buf[r.rd:r.wr])
		r.wr -= r.rd
		r.rd = 0
	}
	for range maxEmptyReads {
		free := len(r.buf) - r.wr
		if max > 0 && max < free {
			free = max
		}
		n, err := r.r.Read(r.buf[r.wr : r.wr+free])
		if n < 0 || n > free {
			return fmt.Errorf("frame: read returned invalid count %d for %d bytes", n, free)
		}
		r.wr += n
		if n > 0 {
			r.pending = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// truncated builds the error for end of stream inside a frame.
// A negative want means the frame's length is unknown (Delimited).
func truncated(what string, got, want int) error {
	if want < 0 {
		return fmt.Errorf("%w: stream ended in %s after %d bytes without a delimiter: %w", ErrTruncated, what, got, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%w: stream ended in %s after %d of %d bytes: %w", ErrTruncated, what, got, want, io.ErrUnexpectedEOF)
}

// need makes sure n <= len(r.buf) bytes are buffered at r.rd, where a frame
// starts. End of stream with nothing buffered is io.EOF; with a partial
// frame buffered it is a truncation (sticky). Other errors are wrapped and
// leave the buffered bytes in place.
func (r *Reader) need(n int, what string) error {
	for r.buffered() < n {
		if r.wr+(n-r.buffered()) > len(r.buf) {
			copy(r.buf, r.buf[r.rd:r.wr])
			r.wr -= r.rd
			r.rd = 0
		}
		max := 0
		if r.exact {
			max = n - r.buffered()
		}
		if err := r.fill(max); err != nil {
			return r.readErr(err, what, r.buffered(), n)
		}
	}
	return nil
}

// readErr turns a stream error met while got bytes of a frame of want bytes
// are buffered but not consumed into ReadMsg's error.
func (r *Reader) readErr(err error, what string, got, want int) error {
	if err == io.EOF {
		if got == 0 {
			return io.EOF
		}
		r.err = truncated(what, got, want)
		return r.err
	}
	return fmt.Errorf("frame: read %s: %w", what, err)
}

// readBody consumes a frame of hlen framing bytes (already buffered) and an
// n-byte payload, and returns the payload.
func (r *Reader) readBody(buf []byte, hlen, n int) ([]byte, error) {
	total := hlen + n
	// On a CheapCalls stream a large payload that the caller's buffer
	// holds, and that is not buffered yet, is read straight into it.
	direct := r.direct && n >= r.directMin && n <= cap(buf) && r.buffered() < total
	r.lastDirect = direct
	if total <= len(r.buf) && !direct {
		if err := r.need(total, "payload"); err != nil {
			return nil, err
		}
		msg := r.buf[r.rd+hlen : r.rd+total]
		r.rd += total
		if n <= cap(buf) {
			return buf[:copy(buf[:n], msg)], nil
		}
		return msg, nil
	}
	// A payload larger than the internal buffer: copy what is buffered and
	// read the rest straight into the destination. Reader-owned memory
	// for a payload longer than any before grows as its bytes arrive, so
	// a corrupt length costs memory only in proportion to the data sent.
	var out []byte
	switch {
	case n <= cap(buf):
		out = buf[:n]
	case n <= cap(r.big):
		out = r.big[:n]
	default:
		out = r.big[:cap(r.big)]
	}
	start := r.rd
	r.rd += hlen
	got := 0
	for got < n {
		if got == len(out) {
			c := min(max(2*len(out), bigGrowStep), n)
			nb := make([]byte, c)
			copy(nb, out[:got])
			out, r.big = nb, nb
		}
		if r.buffered() > 0 {
			c := copy(out[got:], r.buf[r.rd:r.wr])
			r.rd += c
			got += c
			continue
		}
		var err error
		if r.pending != nil {
			err, r.pending = r.pending, nil
		} else {
			var m int
			m, err = r.readInto(out[got:min(n, len(out))])
			got += m
		}
		if err == nil {
			continue
		}
		if got == 0 {
			// Nothing of the payload consumed: the framing bytes are
			// still in the buffer, so leave the frame unconsumed.
			r.rd = start
			return nil, r.readErr(err, "payload", r.buffered(), total)
		}
		if err == io.EOF {
			r.err = truncated("payload", hlen+got, total)
		} else if total <= len(r.buf) {
			// A frame the internal buffer holds was being read directly:
			// put its bytes back there, so that a later call resumes as
			// it would have had they been read through the buffer.
			// Nothing was buffered after the frame's start, and the
			// framing bytes are still at start.
			copy(r.buf, r.buf[start:start+hlen])
			copy(r.buf[hlen:], out[:got])
			r.rd, r.wr, r.scanned = 0, hlen+got, 0
			return nil, fmt.Errorf("frame: read payload: %w", err)
		} else {
			r.err = fmt.Errorf("frame: read failed after %d of %d frame bytes; stream unusable: %w", hlen+got, total, err)
		}
		return nil, r.err
	}
	return out[:n], nil
}

// readInto reads once from the stream into p, retrying empty reads.
func (r *Reader) readInto(p []byte) (int, error) {
	for range maxEmptyReads {
		n, err := r.r.Read(p)
		if n < 0 || n > len(p) {
			return 0, fmt.Errorf("frame: read returned invalid count %d for %d bytes", n, len(p))
		}
		if n > 0 {
			if err != nil && n == len(p) {
				r.pending = err
				err = nil
			}
			return n, err
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// readDelimited returns the next delimited message.
func (r *Reader) readDelimited(buf []byte) ([]byte, error) {
	for {
		if i := bytes.IndexByte(r.buf[r.rd+r.scanned:r.wr], r.cfg.Delim); i >= 0 {
			n := r.scanned + i
			if n > r.cfg.MaxSize {
				r.err = fmt.Errorf("%w: delimited message of %d bytes exceeds maximum %d", ErrTooLarge, n, r.cfg.MaxSize)
				return nil, r.err
			}
			msg := r.buf[r.rd : r.rd+n]
			r.rd += n + DelimiterLen
			r.scanned = 0
			if n <= cap(buf) {
				return buf[:copy(buf[:n], msg)], nil
			}
			return msg, nil
		}
		r.scanned = r.buffered()
		if r.scanned > r.cfg.MaxSize {
			r.err = fmt.Errorf("%w: no delimiter within %d bytes (maximum message %d)", ErrTooLarge, r.scanned, r.cfg.MaxSize)
			return nil, r.err
		}
		if r.wr == len(r.buf) {
			if r.rd > 0 {
				copy(r.buf, r.buf[r.rd:r.wr])
				r.wr -= r.rd
				r.rd = 0
			} else {
				// The buffer holds one partial message: grow it, up to
				// what the longest message with its delimiter needs.
				c := 2 * len(r.buf)
				if limit := r.cfg.MaxSize + DelimiterLen; c > limit {
					c = limit
				}
				nb := make([]byte, c)
				copy(nb, r.buf[:r.wr])
				r.buf = nb
			}
		}
		if err := r.fill(0); err != nil {
			return nil, r.readErr(err, "delimited message", r.buffered(), -1)
		}
	}
}
