package peer

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
)

// readBufSize is the size of the buffer a role loop reads messages into;
// larger messages land in the frame.Reader's own reused buffer.
const readBufSize = 64 << 10

// sinkBufSize is the read buffer of a sink's frame.Reader.
const sinkBufSize = 256 << 10

// countingReader counts reads that returned fewer bytes than asked for.
type countingReader struct {
	r     io.Reader
	short int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && n < len(p) {
		c.short++
	}
	return n, err
}

// CheapCalls forwards the wrapped stream's answer (frame.CheapCalls), so
// that the frame Reader treats a counted shared-memory connection as the
// connection itself.
func (c *countingReader) CheapCalls() bool {
	cc, ok := c.r.(frame.CheapCalls)
	return ok && cc.CheapCalls()
}

// roleLoop serves one role on one connection until EOF at a frame boundary
// (nil) or an error. st is updated as messages go by and may be read only
// after the loop returns.
type roleLoop func(rw io.ReadWriter, cfg frame.Config, index int, st *ConnStats) error

// loopFor returns the loop of role, or an error for an unknown role or one
// the framing cannot carry.
func loopFor(role string, cfg frame.Config) (roleLoop, error) {
	switch role {
	case RoleEcho:
		return echoLoop, nil
	case RoleSink:
		if cfg.Mode == frame.Fixed {
			return nil, fmt.Errorf("role %q needs a framing mode that carries an empty end-of-segment message; %s framing cannot", role, cfg.Mode)
		}
		return sinkLoop, nil
	case RoleTruncate:
		if cfg.Mode != frame.LengthPrefix {
			return nil, fmt.Errorf("role %q needs length-prefixed framing, not %s", role, cfg.Mode)
		}
		return truncateLoop, nil
	case RoleHTTP:
		return httpLoop, nil
	}
	return nil, fmt.Errorf("unknown role %q (want %s, %s, %s or %s)", role, RoleEcho, RoleSink, RoleHTTP, RoleTruncate)
}

// truncateLoop writes half of one frame and ends the connection there.
func truncateLoop(rw io.ReadWriter, cfg frame.Config, index int, st *ConnStats) error {
	msg := make([]byte, TruncateSize)
	frame.Fill(msg, uint32(index), 0)
	var whole bytes.Buffer
	if err := frame.NewWriter(&whole, cfg).WriteMsg(msg); err != nil {
		return fmt.Errorf("framing the message: %w", err)
	}
	half := whole.Bytes()[:whole.Len()/2]
	if _, err := rw.Write(half); err != nil {
		return fmt.Errorf("writing half a frame: %w", err)
	}
	st.Bytes = int64(len(half))
	cw, ok := rw.(transports.CloseWriter)
	if !ok {
		return nil // the serve loop closes the connection
	}
	if err := cw.CloseWrite(); err != nil {
		return fmt.Errorf("closing the write side: %w", err)
	}
	// Wait for the bench side to close, so the truncation is seen through
	// CloseWrite alone and not through the connection going away.
	if _, err := io.Copy(io.Discard, rw); err != nil {
		return fmt.Errorf("waiting for the bench side to close: %w", err)
	}
	return nil
}

// echoLoop writes every frame back unchanged.
func echoLoop(rw io.ReadWriter, cfg frame.Config, _ int, st *ConnStats) error {
	cr := &countingReader{r: rw}
	defer func() { st.ShortReads = cr.short }()
	r := frame.NewReader(cr, cfg)
	w := frame.NewWriter(rw, cfg)
	buf := make([]byte, readBufSize)
	for {
		msg, err := r.ReadMsg(buf)
		if err != nil {
			return endErr(err, "reading", st.Messages)
		}
		st.Messages++
		st.Bytes += int64(len(msg))
		if err := w.WriteMsg(msg); err != nil {
			return fmt.Errorf("echoing message %d: %w", st.Messages-1, err)
		}
	}
}

// sinkLoop checks every frame and acknowledges each segment. Length-
// prefixed frames are walked through where they lie as they come, on a
// connection that lends its incoming bytes (transports.PeekReader:
// sinkPeekLoop) and on any other (sinkWalkLoop); delimited frames go
// through a frame.Reader.
func sinkLoop(rw io.ReadWriter, cfg frame.Config, index int, st *ConnStats) error {
	if cfg.Mode == frame.LengthPrefix {
		if pr, ok := rw.(transports.PeekReader); ok && pr.PeekEnabled() {
			return sinkPeekLoop(pr, rw, cfg, index, st)
		}
		return sinkWalkLoop(rw, cfg, index, st)
	}
	cr := &countingReader{r: rw}
	defer func() { st.ShortReads = cr.short }()
	// Messages are checked where the Reader buffered them (ReadMsg(nil)),
	// not copied once more into a buffer of ours; its buffer holds the
	// frames of up to 64 KiB payloads several times over.
	r := frame.NewReaderSize(cr, cfg, sinkBufSize)
	sk := newSink(rw, cfg, index, st)
	for {
		msg, err := r.ReadMsg(nil)
		if err != nil {
			return endErr(err, "reading", st.Messages)
		}
		if len(msg) == 0 {
			if err := sk.ack(); err != nil {
				return err
			}
			continue
		}
		sk.checked(frame.Check(msg, sk.conn, sk.seq))
		sk.counted(len(msg))
	}
}

// maxEmptyReads is how many reads in a row may return nothing, and no
// error, before sinkWalkLoop gives up with io.ErrNoProgress (as bufio and
// frame.Reader do).
const maxEmptyReads = 100

// sinkWalkLoop is sinkLoop for length-prefixed frames on an ordinary
// stream, done as a C program would do it: every read fills one buffer
// from its start, and the frames are walked through it (lpParser), each
// payload checked in as many pieces as it arrived in (frame.CheckPart).
// No byte is copied after the read, and a frame cut by the end of a read
// is not moved to the front of the buffer to be completed there: the next
// read continues it. (A frame.Reader must return each message whole, so
// it moves that partial frame, up to a whole payload's worth of bytes,
// every few reads.)
func sinkWalkLoop(rw io.ReadWriter, cfg frame.Config, index int, st *ConnStats) error {
	cfg, err := cfg.Normalize()
	if err != nil {
		return err
	}
	wk := newSinkWalker(rw, cfg, index, st)
	buf := make([]byte, sinkBufSize)
	empty := 0
	for {
		n, err := rw.Read(buf)
		if n < 0 || n > len(buf) {
			return fmt.Errorf("reading message %d: read returned invalid count %d for %d bytes", st.Messages, n, len(buf))
		}
		if n > 0 {
			empty = 0
			if n < len(buf) {
				st.ShortReads++
			}
			if err := wk.walk(buf[:n], nil); err != nil {
				return err
			}
		}
		switch {
		case err == io.EOF:
			return wk.p.eofErr(st.Messages)
		case err != nil:
			return fmt.Errorf("reading message %d: %w", st.Messages, err)
		case n == 0:
			if empty++; empty == maxEmptyReads {
				return fmt.Errorf("reading message %d: %w", st.Messages, io.ErrNoProgress)
			}
		}
	}
}

// sinkWalker walks length-prefixed frames through the pieces of a stream
// for the sink loops that check payloads where they lie: it checks every
// payload piece by piece, counts every message and acknowledges every
// segment.
type sinkWalker struct {
	sk *sink
	p  lpParser
}

func newSinkWalker(w io.Writer, cfg frame.Config, index int, st *ConnStats) *sinkWalker {
	return &sinkWalker{sk: newSink(w, cfg, index, st), p: lpParser{max: cfg.MaxSize}}
}

// walk takes in the next piece b of the stream. release, when not nil,
// is told how many of b's bytes are done with before every
// acknowledgement and at the end, so that the writer's space is not held
// while the sink answers.
func (wk *sinkWalker) walk(b []byte, release func(n int) error) error {
	for {
		used, empty, err := wk.p.feed(b, wk.sk.checkPart, func(n, _ int) { wk.sk.counted(n) })
		if err != nil {
			return fmt.Errorf("reading message %d: %w", wk.sk.st.Messages, err)
		}
		if release != nil {
			if err := release(used); err != nil {
				return fmt.Errorf("releasing after message %d: %w", wk.sk.st.Messages, err)
			}
		}
		b = b[used:]
		if !empty {
			return nil
		}
		if err := wk.sk.ack(); err != nil {
			return err
		}
		if len(b) == 0 {
			return nil
		}
	}
}

// sink is the bookkeeping the sink loops share: the current segment, the
// next sequence number, and the connection's counts.
type sink struct {
	w      *frame.Writer
	ackBuf []byte
	conn   uint32
	seg    Ack
	seq    uint64
	st     *ConnStats
	bad    bool // checkPart: the current payload failed its check
}

// checkPart checks one piece of the current payload, at offset off in it,
// for the loops that check payloads in the pieces they arrive in; a
// payload that failed is counted once and not checked further.
func (s *sink) checkPart(piece []byte, off int) {
	if off == 0 {
		s.bad = false
	}
	if !s.bad {
		if err := frame.CheckPart(piece, s.conn, s.seq, off); err != nil {
			s.bad = true
			s.checked(err)
		}
	}
}

func newSink(w io.Writer, cfg frame.Config, index int, st *ConnStats) *sink {
	return &sink{w: frame.NewWriter(w, cfg), ackBuf: make([]byte, 0, MaxAckLen), conn: uint32(index), st: st}
}

// checked records the result of checking the current message.
func (s *sink) checked(err error) {
	if err == nil {
		return
	}
	s.seg.Errors++
	s.st.Errors++
	if s.st.CheckError == "" {
		s.st.CheckError = err.Error()
	}
}

// counted records the end of the current message, of n payload bytes.
func (s *sink) counted(n int) {
	s.seq++
	s.seg.Messages++
	s.seg.Bytes += int64(n)
	s.st.Messages++
	s.st.Bytes += int64(n)
}

// ack answers an end-of-segment marker with the segment's counts and
// starts the next segment.
func (s *sink) ack() error {
	s.ackBuf = EncodeAck(s.ackBuf[:0], s.seg)
	if err := s.w.WriteMsg(s.ackBuf); err != nil {
		return fmt.Errorf("writing acknowledgement after %d messages: %w", s.st.Messages, err)
	}
	s.seg, s.seq = Ack{}, 0
	return nil
}

// sinkPeekLoop is sinkLoop for length-prefixed frames on a connection that
// lends its incoming bytes: it walks the frames through the lent memory
// (sinkWalker) and releases them; no payload byte is copied.
func sinkPeekLoop(pr transports.PeekReader, w io.Writer, cfg frame.Config, index int, st *ConnStats) error {
	cfg, err := cfg.Normalize()
	if err != nil {
		return err
	}
	wk := newSinkWalker(w, cfg, index, st)
	for {
		b, err := pr.Peek()
		if err != nil {
			if err == io.EOF {
				return wk.p.eofErr(st.Messages)
			}
			return fmt.Errorf("reading message %d: %w", st.Messages, err)
		}
		if err := wk.walk(b, pr.Release); err != nil {
			return err
		}
		if wk.p.mid() {
			st.ShortReads++ // the piece ended inside a frame
		}
	}
}

// endErr turns a read error into the loop's result: nil for EOF at a frame
// boundary.
func endErr(err error, what string, messages int64) error {
	if err == io.EOF || errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return fmt.Errorf("%s message %d: %w", what, messages, err)
}
