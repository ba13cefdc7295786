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

// sinkLoop checks every frame and acknowledges each segment. On a
// connection that lends its incoming bytes (transports.PeekReader, with
// length-prefixed frames) it checks them where they lie (sinkPeekLoop).
func sinkLoop(rw io.ReadWriter, cfg frame.Config, index int, st *ConnStats) error {
	if pr, ok := rw.(transports.PeekReader); ok && pr.PeekEnabled() && cfg.Mode == frame.LengthPrefix {
		return sinkPeekLoop(pr, rw, cfg, index, st)
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

// sink is the bookkeeping both sink loops share: the current segment, the
// next sequence number, and the connection's counts.
type sink struct {
	w      *frame.Writer
	ackBuf []byte
	conn   uint32
	seg    Ack
	seq    uint64
	st     *ConnStats
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
// lends its incoming bytes: it parses the frames and checks the payloads
// (frame.CheckPart) in the lent memory, in as many pieces as it comes in,
// and releases them; no payload byte is copied. Acknowledgements, errors
// and counts are sinkLoop's.
func sinkPeekLoop(pr transports.PeekReader, w io.Writer, cfg frame.Config, index int, st *ConnStats) error {
	cfg, err := cfg.Normalize()
	if err != nil {
		return err
	}
	sk := newSink(w, cfg, index, st)
	p := lpParser{max: cfg.MaxSize}
	bad := false // the current payload failed its check
	body := func(piece []byte, off int) {
		if off == 0 {
			bad = false
		}
		if !bad {
			if err := frame.CheckPart(piece, sk.conn, sk.seq, off); err != nil {
				bad = true
				sk.checked(err)
			}
		}
	}
	for {
		b, err := pr.Peek()
		if err != nil {
			if err == io.EOF {
				return p.eofErr(st.Messages)
			}
			return fmt.Errorf("reading message %d: %w", st.Messages, err)
		}
		for {
			used, empty, err := p.feed(b, body, func(n, _ int) { sk.counted(n) })
			if err != nil {
				return fmt.Errorf("reading message %d: %w", st.Messages, err)
			}
			// At the end of a segment, release first, so that the
			// writer's space is not held while we answer.
			if err := pr.Release(used); err != nil {
				return fmt.Errorf("releasing after message %d: %w", st.Messages, err)
			}
			b = b[used:]
			if !empty {
				break
			}
			if err := sk.ack(); err != nil {
				return err
			}
			if len(b) == 0 {
				break
			}
		}
		if p.mid() {
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
