package peer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ipcbench/ipcbench/internal/lineio"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/transports/internal/ctxdeadline"
)

// maxControlLine bounds one reply line on a control connection: the same
// limit as every other line of the peer's control protocol.
const maxControlLine = proc.MaxLineSize

// Control is the client's end of a stand-alone peer's control connection:
// a Link for NewLinkClient, and the session its data connections join.
type Control struct {
	c       net.Conn
	welcome Welcome
	r       *bufio.Reader
	// partial is the start of a reply line that a Recv whose ctx ended
	// had read; the next Recv goes on from it.
	partial []byte

	mu sync.Mutex // serialises Send
}

var _ Link = (*Control)(nil)

// OpenControl makes c, a fresh connection to a stand-alone peer, its
// control connection: it sends the control hello and reads the answer
// (see Handshake for the errors). On error c is closed.
func OpenControl(ctx context.Context, c net.Conn) (*Control, error) {
	w, err := Handshake(ctx, c, Hello{Kind: KindControl})
	if err != nil {
		c.Close()
		return nil, err
	}
	background(c)
	return &Control{c: c, welcome: w, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

// background marks c, a control connection, as one that waits long
// between messages, where the connection can be marked so (the socket
// transports' default connections): its idle reads then do not keep the
// data connections' reads from yielding the CPU before they park, which
// would make a served session measure differently from a spawned peer.
func background(c net.Conn) {
	if b, ok := c.(interface{ SetBackground() }); ok {
		b.SetBackground()
	}
}

// Session returns the session id the server gave.
func (ct *Control) Session() string { return ct.welcome.Session }

// Tool returns the server's "ipcbench <version>".
func (ct *Control) Tool() string { return ct.welcome.Tool }

// JoinData makes c, a fresh connection to the same server, data
// connection index of the session (see Handshake for the errors). On
// error c is closed.
func (ct *Control) JoinData(ctx context.Context, c net.Conn, index int) error {
	if _, err := Handshake(ctx, c, Hello{Kind: KindData, Session: ct.welcome.Session, Conn: index}); err != nil {
		c.Close()
		return err
	}
	return nil
}

// Send writes v as one JSON line.
func (ct *Control) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.c.SetWriteDeadline(time.Now().Add(DialTimeout))
	_, err = ct.c.Write(append(b, '\n'))
	return err
}

// Recv reads one JSON line into v, until ctx ends. A line that ctx's end
// cut is not lost: the next Recv reads on from where it stopped.
func (ct *Control) Recv(ctx context.Context, v any) error {
	ct.c.SetReadDeadline(time.Time{})
	stop := ctxdeadline.OnDone(ctx, ct.c.SetReadDeadline)
	line, err := lineio.Read(ct.r, maxControlLine-len(ct.partial))
	stop()
	if len(ct.partial) > 0 && !errors.Is(err, lineio.ErrTooLong) {
		line = append(ct.partial, line...)
	}
	ct.partial = nil
	if err != nil {
		switch {
		case ctx.Err() != nil:
			if len(line) > 0 && !errors.Is(err, lineio.ErrTooLong) && !errors.Is(err, io.ErrUnexpectedEOF) {
				ct.partial = line
			}
			return ctx.Err()
		case errors.Is(err, lineio.ErrTooLong):
			return fmt.Errorf("%w: reply line over %d bytes", ErrProtocol, maxControlLine)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("the server closed the control connection: %w", io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("reading the control connection: %w", err)
	}
	if err := json.Unmarshal(line, v); err != nil {
		return fmt.Errorf("%w: bad reply line %.200q: %w", ErrProtocol, line, err)
	}
	return nil
}

// Close ends the session: the server closes its data connections.
func (ct *Control) Close() error { return ct.c.Close() }
