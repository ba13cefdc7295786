package peer

import (
	"errors"
	"fmt"
	"io"

	"github.com/ipcbench/ipcbench/internal/frame"
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
	}
	return nil, fmt.Errorf("unknown role %q (want %s or %s)", role, RoleEcho, RoleSink)
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
