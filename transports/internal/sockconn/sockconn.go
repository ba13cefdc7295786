// Package sockconn holds what the stream-socket transports (tcp-localhost,
// tcp-public, unix) share: buffer-size socket options applied before
// connect/listen, a net.Conn wrapper that reports the options in effect and
// marks peer-gone errors, and option parsing.
package sockconn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/rawio"
	"golang.org/x/sys/unix"
)

// OptNoDelay is the TCP option key that sets TCP_NODELAY ("true", the
// default, or "false").
const OptNoDelay = "nodelay"

// NoDelay parses the "nodelay" option of a TCP transport: absent means true;
// otherwise exactly "true" or "false", else an error wrapping
// transports.ErrBadOption.
func NoDelay(transport string, opts map[string]string) (bool, error) {
	v, ok := opts[OptNoDelay]
	if !ok {
		return true, nil
	}
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s: option %s=%q: want true or false: %w", transport, OptNoDelay, v, transports.ErrBadOption)
}

// Socket-buffer option keys of the socket transports: each sets one
// buffer's size (binary units: "256k", "4MiB") and overrides
// Config.BufferSize for that buffer.
const (
	OptSndBuf = "sndbuf"
	OptRcvBuf = "rcvbuf"
)

// Buffers returns the SO_SNDBUF and SO_RCVBUF sizes a transport sets: each
// the option of that name when present, otherwise size (Config.BufferSize).
// Zero means the system default. A malformed option, or a size over
// transports.MaxBufferSize, gives an error wrapping transports.ErrBadOption.
func Buffers(transport string, size int, opts map[string]string) (snd, rcv int, err error) {
	if err := transports.CheckBufferSize(transport, size); err != nil {
		return 0, 0, err
	}
	snd, rcv = max(size, 0), max(size, 0)
	if v, ok, err := transports.SizeOption(transport, opts, OptSndBuf); err != nil {
		return 0, 0, err
	} else if ok {
		snd = v
	}
	if v, ok, err := transports.SizeOption(transport, opts, OptRcvBuf); err != nil {
		return 0, 0, err
	} else if ok {
		rcv = v
	}
	return snd, rcv, nil
}

// Settings are a socket transport's options after validation.
type Settings struct {
	// NoDelay is TCP_NODELAY (TCP only; true unless nodelay=false).
	NoDelay bool
	// SndBuf and RcvBuf are the buffer sizes to set, 0 for the system's.
	SndBuf, RcvBuf int
	// Raw is io=raw: bypass Go's network poller (see RawConn).
	Raw bool
}

// DefaultOptions returns the option values of a socket transport (or of
// pipe, which takes io too) that mean the same as leaving the option out
// (transports.DefaultOptioner): io=netpoll, and nodelay=true when tcp is
// true.
func DefaultOptions(tcp bool) []string {
	d := []string{OptIO + "=" + IONetpoll}
	if tcp {
		d = append(d, OptNoDelay+"=true")
	}
	return d
}

// CanonicalValue returns a socket transport's option value in its one
// spelling (transports.OptionSpeller): sndbuf and rcvbuf as
// transports.CanonicalSize gives them, every other value as it is.
func CanonicalValue(key, value string) string {
	if key == OptSndBuf || key == OptRcvBuf {
		return transports.CanonicalSize(value)
	}
	return value
}

// ParseOptions validates the options of a socket transport (the keys
// sndbuf, rcvbuf and io, plus nodelay when tcp is true) and returns the
// settings they give with size as Config.BufferSize. An unknown key or a
// malformed value gives an error wrapping transports.ErrBadOption. Listen,
// Dial and the transports' CheckOptions all parse through it.
func ParseOptions(transport string, tcp bool, size int, opts map[string]string) (Settings, error) {
	keys := []string{OptSndBuf, OptRcvBuf, OptIO}
	if tcp {
		keys = append([]string{OptNoDelay}, keys...)
	}
	if err := transports.CheckOptions(transport, opts, keys...); err != nil {
		return Settings{}, err
	}
	var s Settings
	var err error
	if tcp {
		if s.NoDelay, err = NoDelay(transport, opts); err != nil {
			return Settings{}, err
		}
	}
	if s.SndBuf, s.RcvBuf, err = Buffers(transport, size, opts); err != nil {
		return Settings{}, err
	}
	if s.Raw, err = RawIO(transport, opts); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// Control returns a net.ListenConfig/net.Dialer Control function that sets
// SO_SNDBUF to snd and SO_RCVBUF to rcv before the socket listens or
// connects (so accepted TCP sockets inherit them and the window scale
// fits). A size <= 0 leaves that buffer at the system default; with both
// <= 0 it returns nil.
func Control(snd, rcv int) func(network, address string, c syscall.RawConn) error {
	if snd <= 0 && rcv <= 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error { return SetBuffers(c, snd, rcv) }
}

// SetBuffers sets SO_SNDBUF and SO_RCVBUF of the socket behind c to snd and
// rcv (a size <= 0 is left alone). The kernel doubles and clamps the
// values; EffectiveOptions reports the result.
func SetBuffers(c syscall.RawConn, snd, rcv int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, o := range []struct {
			opt  int
			name string
			size int
		}{{unix.SO_SNDBUF, "SO_SNDBUF", snd}, {unix.SO_RCVBUF, "SO_RCVBUF", rcv}} {
			if o.size <= 0 {
				continue
			}
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o.opt, o.size); e != nil {
				serr = fmt.Errorf("setsockopt %s=%d: %w", o.name, o.size, e)
				return
			}
		}
	})
	if err != nil {
		return fmt.Errorf("socket buffers: %w", err)
	}
	return serr
}

// controller runs a function with a socket's descriptor, as
// syscall.RawConn and rawio.FD do.
type controller interface {
	Control(func(fd uintptr)) error
}

// sockopts reads the options in effect on the socket behind c: sndbuf and
// rcvbuf always, nodelay for TCP. Options that cannot be read are left out.
func sockopts(c controller, tcp bool) map[string]string {
	m := make(map[string]string, 4)
	_ = c.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil {
			m["sndbuf"] = strconv.Itoa(v)
		}
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
			m["rcvbuf"] = strconv.Itoa(v)
		}
		if tcp {
			if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY); err == nil {
				m["nodelay"] = strconv.FormatBool(v != 0)
			}
		}
	}) // a closed socket reports nothing
	return m
}

// ListenerOptions returns the socket options in effect on a listening
// *net.TCPListener or *net.UnixListener: sndbuf and rcvbuf (which accepted
// TCP sockets inherit), plus multipath for TCP. Other listeners give an
// empty map.
func ListenerOptions(l net.Listener) map[string]string {
	type syscaller interface {
		SyscallConn() (syscall.RawConn, error)
	}
	s, ok := l.(syscaller)
	if !ok {
		return map[string]string{}
	}
	rc, err := s.SyscallConn()
	if err != nil {
		return map[string]string{}
	}
	_, tcp := l.(*net.TCPListener)
	m := sockopts(rc, false)
	if tcp {
		m["multipath"] = "false" // SetMultipathTCP(false) before listen
	}
	return m
}

// stream is what *net.TCPConn and *net.UnixConn have in common beyond
// net.Conn.
type stream interface {
	net.Conn
	CloseWrite() error
	SyscallConn() (syscall.RawConn, error)
}

// Conn is a stream-socket connection as the transports hand it out. It is a
// net.Conn over the underlying *net.TCPConn or *net.UnixConn. Its Read and
// Write wait in Go's poller as the socket's would, but each recv(2) and
// sendmsg(2) is a direct system call with MSG_DONTWAIT (rawio.PollReader,
// rawio.PollWriter), and a Read yields the CPU once before it parks. Its
// errors are shaped as the underlying connection's (*net.OpError,
// net.ErrClosed, os.ErrDeadlineExceeded, io.EOF), except that EPIPE and
// ECONNRESET also wrap transports.ErrPeerGone. It implements
// transports.CloseWriter and transports.OptionReporter. Only the net.Conn
// methods of the socket are exposed, so every transport moves bytes
// through Read and Write alike, plus WriteBuffers (vectored, with
// sendmsg), which the pipe connections offer too.
type Conn struct {
	s    stream
	raw  syscall.RawConn
	rd   *rawio.PollReader
	wr   *rawio.PollWriter
	tcp  *net.TCPConn
	netw string // the network the socket was made with, for the errors
}

var (
	_ net.Conn                  = (*Conn)(nil)
	_ transports.CloseWriter    = (*Conn)(nil)
	_ transports.OptionReporter = (*Conn)(nil)
	_ transports.DescriptorConn = (*Conn)(nil)
)

// ErrNotStream means Wrap was given something other than a TCP or Unix
// stream connection.
var ErrNotStream = errors.New("not a TCP or Unix stream connection")

// Wrap wraps a *net.TCPConn or *net.UnixConn made on network (the name
// given to net.Dial or net.Listen: "tcp4", "unix", ...; the Net of its
// errors). Anything else gives an error wrapping ErrNotStream and leaves c
// open.
func Wrap(c net.Conn, network string) (*Conn, error) {
	s, ok := c.(stream)
	if !ok {
		return nil, fmt.Errorf("sockconn: wrap %T: %w", c, ErrNotStream)
	}
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
	default:
		return nil, fmt.Errorf("sockconn: wrap %T: %w", c, ErrNotStream)
	}
	rc, err := s.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("sockconn: wrap %T: %w", c, err)
	}
	tcp, _ := c.(*net.TCPConn)
	return &Conn{s: s, raw: rc, rd: rawio.NewPollReader(rc), wr: rawio.NewPollWriter(rc), tcp: tcp, netw: network}, nil
}

// Read reads like the socket's Read, through Go's poller, except that a
// Read that finds nothing may first yield the CPU once to a peer on the
// same CPU (see rawio.PollReader); see Conn for the errors.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.rd.Read(b)
	if err != nil && err != io.EOF {
		err = c.opErr("read", err)
	}
	return n, err
}

// opErr wraps err, a rawio.PollReader or PollWriter error, as the socket's
// own Read and Write would.
func (c *Conn) opErr(op string, err error) error {
	return connerr.PeerGone(&net.OpError{Op: op, Net: c.netw, Source: c.s.LocalAddr(), Addr: c.s.RemoteAddr(), Err: err})
}

// SetBackground marks c as a connection that waits long between messages
// (a control connection open for a whole session): its reads, while
// parked, do not keep the process's other connections from yielding the
// CPU before they park (see rawio.PollReader.SetBackground).
func (c *Conn) SetBackground() { c.rd.SetBackground() }

// Write writes like the socket's Write, with direct system calls (see
// Conn); see Conn for the errors.
func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.wr.Write(b)
	if err != nil {
		err = c.opErr("write", err)
	}
	return n, err
}

// WriteBuffers writes all of *v with sendmsg(2) through Go's poller (as
// net.Buffers.WriteTo does with writev(2) on the socket), consuming it;
// errors are Write's, with the *net.OpError's Op "writev" as WriteTo's.
// It makes Conn a frame.BuffersWriter.
func (c *Conn) WriteBuffers(v *net.Buffers) (int64, error) {
	n, err := c.wr.WriteBuffers(v)
	if err != nil {
		err = c.opErr("writev", err)
	}
	return n, err
}

// Close closes the socket; a second Close returns an error wrapping
// net.ErrClosed. Blocked Read and Write calls return net.ErrClosed.
func (c *Conn) Close() error { return c.s.Close() }

// CloseWrite shuts down the sending direction: the peer reads io.EOF after
// the last byte while this side can still read.
func (c *Conn) CloseWrite() error { return connerr.PeerGone(c.s.CloseWrite()) }

// Descriptors returns one duplicate of the socket's descriptor as both
// rfd and wfd; see transports.DescriptorConn.
func (c *Conn) Descriptors() (rfd, wfd int, err error) { return dupBoth(c.raw) }

// dupBoth duplicates the descriptor behind rc once, for both directions.
func dupBoth(rc interface{ Control(func(fd uintptr)) error }) (int, int, error) {
	fd, err := rawio.Dup(rc)
	if err != nil {
		return -1, -1, fmt.Errorf("sockconn: duplicate descriptor: %w", err)
	}
	return fd, fd, nil
}

// LocalAddr returns the socket's local address.
func (c *Conn) LocalAddr() net.Addr { return c.s.LocalAddr() }

// RemoteAddr returns the socket's peer address.
func (c *Conn) RemoteAddr() net.Addr { return c.s.RemoteAddr() }

// SetDeadline sets the read and write deadlines, as net.Conn documents.
func (c *Conn) SetDeadline(t time.Time) error { return c.s.SetDeadline(t) }

// SetReadDeadline sets the read deadline, as net.Conn documents.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.s.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline, as net.Conn documents.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.s.SetWriteDeadline(t) }

// EffectiveOptions reads back from the kernel the options in effect:
// "sndbuf" and "rcvbuf" (bytes, as the kernel reports them: Linux doubles
// the requested value), "io" (netpoll), and for TCP "nodelay" (TCP_NODELAY) and "multipath"
// (whether the connection is Multipath TCP). Values that cannot be read (a
// closed socket) are left out.
func (c *Conn) EffectiveOptions() map[string]string {
	m := sockopts(c.raw, c.tcp != nil)
	m[OptIO] = IONetpoll
	if c.tcp != nil {
		if mp, err := c.tcp.MultipathTCP(); err == nil {
			m["multipath"] = strconv.FormatBool(mp)
		}
	}
	return m
}
