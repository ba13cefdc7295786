package sockconn

import (
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/rawio"
)

// The "io" option of the socket and pipe transports chooses how bytes move.
const (
	// OptIO is the option key.
	OptIO = "io"
	// IONetpoll (the default) uses Go's network poller: a Read with
	// nothing to read parks the goroutine until epoll reports the socket
	// readable. Before it parks, a Read that is the process's only wait
	// yields the CPU once to a peer that may share it
	// (rawio.PollReader).
	IONetpoll = "netpoll"
	// IORaw bypasses the poller with direct system calls in the calling
	// thread (see package rawio): on a socket a Read is one recv(2) that
	// sleeps until data arrives, on a pipe ppoll(2) then read(2); what a C
	// program does, to show the poller's cost.
	IORaw = "raw"
)

// RawIO parses the "io" option: absent or "netpoll" is false, "raw" true,
// anything else an error wrapping transports.ErrBadOption.
func RawIO(transport string, opts map[string]string) (bool, error) {
	switch v, ok := opts[OptIO]; {
	case !ok || v == IONetpoll:
		return false, nil
	case v == IORaw:
		return true, nil
	default:
		return false, fmt.Errorf("%s: option %s=%q: want %s or %s: %w", transport, OptIO, v, IONetpoll, IORaw, transports.ErrBadOption)
	}
}

// RawConn is a stream-socket connection whose I/O bypasses Go's network
// poller (the io=raw variant). Its contract is Conn's: the same errors
// (*net.OpError wrapping net.ErrClosed, os.ErrDeadlineExceeded, EPIPE and
// ECONNRESET also wrapping transports.ErrPeerGone; io.EOF itself), working
// deadlines and Close, CloseWrite and EffectiveOptions ("io" = "raw").
type RawConn struct {
	fd            *rawio.FD
	netw          string
	local, remote net.Addr
	tcp           bool
}

var (
	_ net.Conn                  = (*RawConn)(nil)
	_ transports.CloseWriter    = (*RawConn)(nil)
	_ transports.OptionReporter = (*RawConn)(nil)
	_ transports.DescriptorConn = (*RawConn)(nil)
)

// WrapRaw takes over c, a *net.TCPConn or *net.UnixConn made on network
// (as for Wrap): it duplicates the socket's descriptor for direct system
// calls and closes c. On error c is left open.
func WrapRaw(c net.Conn, network string) (*RawConn, error) {
	s, ok := c.(stream)
	if !ok {
		return nil, fmt.Errorf("sockconn: wrap %T: %w", c, ErrNotStream)
	}
	_, tcp := c.(*net.TCPConn)
	if _, unixConn := c.(*net.UnixConn); !tcp && !unixConn {
		return nil, fmt.Errorf("sockconn: wrap %T: %w", c, ErrNotStream)
	}
	rc, err := s.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("sockconn: wrap %T: %w", c, err)
	}
	nfd, err := rawio.Dup(rc)
	if err != nil {
		return nil, fmt.Errorf("sockconn: raw: %w", err)
	}
	fd, err := rawio.NewSocket(nfd)
	if err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("sockconn: raw: %w", err)
	}
	r := &RawConn{fd: fd, netw: network, local: c.LocalAddr(), remote: c.RemoteAddr(), tcp: tcp}
	c.Close() // the duplicate keeps the socket open
	return r, nil
}

func (c *RawConn) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	return connerr.PeerGone(&net.OpError{Op: op, Net: c.netw, Source: c.local, Addr: c.remote, Err: err})
}

// Read reads with read(2); see RawConn for the errors.
func (c *RawConn) Read(b []byte) (int, error) {
	n, err := c.fd.Read(b)
	if err == io.EOF {
		return n, err // io.EOF itself, as io.Reader requires
	}
	return n, c.opError("read", err)
}

// Write writes all of b with write(2); see RawConn for the errors.
func (c *RawConn) Write(b []byte) (int, error) {
	n, err := c.fd.Write(b)
	return n, c.opError("write", err)
}

// WriteBuffers writes all of *v with writev(2), consuming it; errors are
// Write's.
func (c *RawConn) WriteBuffers(v *net.Buffers) (int64, error) {
	n, err := c.fd.WriteBuffers(v)
	return n, c.opError("write", err)
}

// Close closes the socket and wakes blocked calls.
func (c *RawConn) Close() error { return c.opError("close", c.fd.Close()) }

// CloseWrite shuts down the sending direction.
func (c *RawConn) CloseWrite() error { return c.opError("close", c.fd.Shutdown(unix.SHUT_WR)) }

// Descriptors returns one duplicate of the socket's descriptor as both
// rfd and wfd; see transports.DescriptorConn.
func (c *RawConn) Descriptors() (rfd, wfd int, err error) { return dupBoth(c.fd) }

// LocalAddr returns the socket's local address.
func (c *RawConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the socket's peer address.
func (c *RawConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *RawConn) SetDeadline(t time.Time) error {
	if err := c.fd.SetReadDeadline(t); err != nil {
		return c.opError("set", err)
	}
	return c.opError("set", c.fd.SetWriteDeadline(t))
}

// SetReadDeadline sets the read deadline.
func (c *RawConn) SetReadDeadline(t time.Time) error {
	return c.opError("set", c.fd.SetReadDeadline(t))
}

// SetWriteDeadline sets the write deadline.
func (c *RawConn) SetWriteDeadline(t time.Time) error {
	return c.opError("set", c.fd.SetWriteDeadline(t))
}

// EffectiveOptions reports sndbuf, rcvbuf, nodelay (TCP) as read back from
// the kernel, and io=raw.
func (c *RawConn) EffectiveOptions() map[string]string {
	m := sockopts(c.fd, c.tcp)
	m[OptIO] = IORaw
	if c.tcp {
		m["multipath"] = "false"
	}
	return m
}

// WrapAs wraps c, made on network, as a RawConn when raw is set, else as
// a Conn. On error c is left open.
func WrapAs(c net.Conn, network string, raw bool) (net.Conn, error) {
	if raw {
		return WrapRaw(c, network)
	}
	return Wrap(c, network)
}
