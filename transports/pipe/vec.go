package pipe

import (
	"io"
	"net"
	"os"

	"github.com/ipcbench/ipcbench/internal/frame"
)

// WriteBuffers writes all of *v to the outgoing pipe with vectored writes
// (pwritev2(2) by default, writev(2) with io=raw), consuming it, so that a
// frame's header and a large payload go out in one call without being
// copied together first; errors are Write's.
func (c *conn) WriteBuffers(v *net.Buffers) (int64, error) {
	if c.closed.Load() { // as in Write
		return 0, c.opErr("write", os.ErrClosed)
	}
	n, err := c.wr.WriteBuffers(v)
	return n, c.opErr("write", err)
}

// writer is how a conn writes its outgoing pipe: Write, and the vectored
// WriteBuffers.
type writer interface {
	io.Writer
	frame.BuffersWriter
}
