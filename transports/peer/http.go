package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/ipcbench/ipcbench/internal/frame"
)

// RoleHTTP serves net/http on the connection: every request's body is
// written back unchanged as the response body (with its Content-Length),
// so the bench side can check every byte it sent. HTTP does its own
// framing; of the job's framing only the largest message is used
// (frame.Config.MaxSize, at most frame.DefaultMaxSize): a request whose
// Content-Length exceeds it gets 413 and fails the connection with an
// error wrapping frame.ErrTooLarge. The connection stays open for
// as many requests as the client sends (keep-alive) until the client
// closes it.
const RoleHTTP = "http"

// HTTPPath is the path RoleHTTP answers; any other path gets 404.
const HTTPPath = "/echo"

// httpLoop serves HTTP on one connection until the client closes it.
func httpLoop(rw io.ReadWriter, cfg frame.Config, _ int, st *ConnStats) error {
	c, ok := rw.(net.Conn)
	if !ok {
		return fmt.Errorf("role %s needs a net.Conn, not %T", RoleHTTP, rw)
	}
	ln := newSingleListener(c)
	var mu sync.Mutex // guards st against the handler (requests on one connection are sequential)
	var buf []byte
	var handlerErr error
	// A body is at most one message of the session's framing: a larger
	// Content-Length, which the body is read into, is refused before
	// anything is allocated for it (a client could otherwise make this
	// process allocate what it claims, and die of it).
	limit := int64(frame.DefaultMaxSize) // the most a peer's session may set
	if cfg.MaxSize > 0 {
		limit = min(limit, int64(cfg.MaxSize))
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != HTTPPath {
				http.NotFound(w, r)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r.ContentLength > limit {
				if handlerErr == nil {
					handlerErr = fmt.Errorf("request %d: a body of %d bytes: %w (%d bytes)", st.Messages, r.ContentLength, frame.ErrTooLarge, limit)
				}
				w.Header().Set("Connection", "close")
				http.Error(w, fmt.Sprintf("a body of %d bytes is larger than a message may be (%d bytes)", r.ContentLength, limit), http.StatusRequestEntityTooLarge)
				return
			}
			n := 0
			if r.ContentLength > 0 {
				n = int(r.ContentLength)
			}
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			body := buf[:n]
			if _, err := io.ReadFull(r.Body, body); err != nil {
				if handlerErr == nil {
					handlerErr = fmt.Errorf("reading request body %d: %w", st.Messages, err)
				}
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			st.Messages++
			st.Bytes += int64(n)
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.Write(body)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				ln.Close()
			}
		},
	}
	err := srv.Serve(ln)
	mu.Lock()
	defer mu.Unlock()
	if handlerErr != nil {
		return handlerErr
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// singleListener is a net.Listener that returns one connection, then
// blocks until it is closed.
type singleListener struct {
	conn   chan net.Conn
	closed chan struct{}
	once   sync.Once
	addr   net.Addr
}

func newSingleListener(c net.Conn) *singleListener {
	l := &singleListener{conn: make(chan net.Conn, 1), closed: make(chan struct{}), addr: c.LocalAddr()}
	l.conn <- c
	return l
}

// Accept returns the connection once, then net.ErrClosed after Close.
func (l *singleListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conn:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept return net.ErrClosed; it does not close the
// connection, which the HTTP server owns once accepted.
func (l *singleListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the connection's local address.
func (l *singleListener) Addr() net.Addr { return l.addr }
