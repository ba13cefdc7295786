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
	}
	return nil, fmt.Errorf("unknown role %q (want %s, %s or %s)", role, RoleEcho, RoleSink, RoleTruncate)
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

// sinkLoop checks every frame and acknowledges each segment.
func sinkLoop(rw io.ReadWriter, cfg frame.Config, index int, st *ConnStats) error {
	cr := &countingReader{r: rw}
	defer func() { st.ShortReads = cr.short }()
	r := frame.NewReader(cr, cfg)
	w := frame.NewWriter(rw, cfg)
	buf := make([]byte, readBufSize)
	ackBuf := make([]byte, 0, MaxAckLen)
	conn := uint32(index)
	var seg Ack
	var seq uint64
	for {
		msg, err := r.ReadMsg(buf)
		if err != nil {
			return endErr(err, "reading", st.Messages)
		}
		if len(msg) == 0 {
			ackBuf = EncodeAck(ackBuf[:0], seg)
			if err := w.WriteMsg(ackBuf); err != nil {
				return fmt.Errorf("writing acknowledgement after %d messages: %w", st.Messages, err)
			}
			seg, seq = Ack{}, 0
			continue
		}
		if err := frame.Check(msg, conn, seq); err != nil {
			seg.Errors++
			st.Errors++
			if st.CheckError == "" {
				st.CheckError = err.Error()
			}
		}
		seq++
		seg.Messages++
		seg.Bytes += int64(len(msg))
		st.Messages++
		st.Bytes += int64(len(msg))
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
