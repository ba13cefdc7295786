// Package unix is the "unix" transport: a Unix domain stream socket between
// two processes.
//
// Config.Address is the socket path to listen on. Its directory must be
// this user's own and closed to others (mode 0700, no group or other
// bits), and not a symbolic link; Listen makes it, 0700, when it is
// missing (its parent must exist), and refuses anything else with an
// error wrapping transports.ErrBadEndpoint: a mistake in the address, not
// a transport that cannot run here. The socket file gets mode 0600. A
// socket file a killed listener left at the path is removed; a live one,
// another user's, or a file that is not a socket is refused
// (ErrBadEndpoint). Close removes the socket file (and the directory, if
// Listen made it and it is empty).
//
// With an empty Config.Address, Listen makes a fresh private (0700)
// directory, named "ipcbench-unix-PID-*" (PID in base 36), in
// os.TempDir() and listens on a socket file (0600) inside it; Close
// removes both.
// A process killed before its Close leaves its directory behind: the next
// Listen removes the directories of processes that no longer exist (owned
// by the same user, never following symlinks).
//
// Memory per connection: the kernel's socket buffers, SO_SNDBUF on the
// sending side (default net.core.wmem_default, 208 KiB on most Linux
// systems) per direction, or Config.BufferSize; nothing in user space
// beyond the caller's buffers. MemoryPerConn (transports.MemoryReporter)
// states it for a Config: per direction 1.5 × the sender's SO_SNDBUF (the
// queue is charged to the sender, and the kernel admits one more buffer
// of at most half the send buffer past its limit): 312 KiB by default,
// 3 × Config.BufferSize when it is set (the kernel doubles it); per end
// one socket (two descriptors with io=raw), no goroutine, and at most
// 8 KiB of Go heap (0.3-3.3 KiB measured). The conformance suite holds
// 64 connections with full buffers and checks every figure against
// SO_MEMINFO.
//
// Accept refuses (closes, and returns an error wrapping ErrForeignPeer) a
// connection whose peer runs as another user, read with SO_PEERCRED.
// The socket path must fit in sun_path (107 bytes plus the NUL): a longer
// one is refused with a clear error (transports.ErrBadEndpoint from Listen
// and Dial alike; transports.ErrUnavailable when it is the path Listen
// makes itself for an empty Config.Address, too long from a long TMPDIR),
// never truncated. Config.BufferSize sets SO_SNDBUF and SO_RCVBUF on both
// ends; the options sndbuf and rcvbuf (binary units: "256k") set each on
// its own and override it; io=raw makes connections bypass Go's network
// poller: reads and writes are direct system calls, and a goroutine that
// must wait sleeps in the kernel (a read with a receive timeout, or
// ppoll(2)) instead of parking until the poller wakes it; deadlines, Close
// and the errors are as with the poller.
// Connections implement transports.CloseWriter and
// transports.OptionReporter (sndbuf, rcvbuf); EPIPE and ECONNRESET wrap
// transports.ErrPeerGone.
package unix

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"sync"

	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
	"github.com/ipcbench/ipcbench/transports/internal/sockconn"
)

// Name is the transport's stable name.
const Name = "unix"

// MaxPath is the longest socket path the kernel accepts: sun_path is 108
// bytes including the terminating NUL.
const MaxPath = rendezvous.MaxPath

// socketName is the socket file's name inside the private directory.
const socketName = "s"

// dirPrefix starts the name of every private socket directory; the
// creating process's PID follows (in base 36, to keep socket paths short),
// so a later Listen can tell a directory whose owner is gone (killed
// before its Close ran) from a live one.
const dirPrefix = "ipcbench-unix-"

// ErrForeignPeer is wrapped by the error Accept returns for a connection
// from a process of another user.
var ErrForeignPeer = rendezvous.ErrForeignPeer

// New returns the unix transport.
func New() transports.Transport { return transport{} }

type transport struct{}

var (
	_ transports.Transport       = transport{}
	_ transports.OptionChecker   = transport{}
	_ transports.MemoryReporter  = transport{}
	_ transports.DefaultOptioner = transport{}
	_ transports.OptionSpeller   = transport{}
)

// Name returns "unix".
func (transport) Name() string { return Name }

// Description says what unix is (transports.Describer).
func (transport) Description() string {
	return "Unix domain stream socket in a private 0700 directory; options sndbuf, rcvbuf, io=raw"
}

// CheckOptions reports whether Listen and Dial accept opts (sndbuf,
// rcvbuf, io); see transports.OptionChecker.
func (transport) CheckOptions(opts map[string]string) error {
	_, err := sockconn.ParseOptions(Name, false, 0, opts)
	return err
}

// DefaultOptions returns io=netpoll, the default spelled out
// (transports.DefaultOptioner).
func (transport) DefaultOptions() []string { return sockconn.DefaultOptions(false) }

// CanonicalValue returns sndbuf and rcvbuf in one spelling ("256KiB" for
// "262144"), other values as they are (transports.OptionSpeller).
func (transport) CanonicalValue(key, value string) string {
	return sockconn.CanonicalValue(key, value)
}

// Listen makes the private directory and listens on a socket inside it.
func (transport) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	set, err := sockconn.ParseOptions(Name, false, cfg.BufferSize, cfg.Options)
	if err != nil {
		return nil, err
	}
	snd, rcv, raw := set.SndBuf, set.RcvBuf, set.Raw
	var place rendezvous.Place
	if cfg.Address == "" {
		place, err = rendezvous.Private(dirPrefix, socketName)
	} else {
		place, err = rendezvous.Prepare(cfg.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: listen: %w", Name, err)
	}
	path := place.Path
	fail := func(err error) (transports.Listener, error) {
		if rerr := place.Release(); rerr != nil {
			return nil, fmt.Errorf("%w (and removing its directory: %w)", err, rerr)
		}
		return nil, err
	}
	lc := net.ListenConfig{Control: sockconn.Control(snd, rcv)}
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return fail(fmt.Errorf("%s: listen: %w", Name, err))
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		ln.Close()
		return fail(fmt.Errorf("%s: listen: got %T, not a Unix listener", Name, ln))
	}
	// bind made the socket file with the umask's mode; the directory
	// already keeps others out, and the file follows the one rule.
	if err := os.Chmod(path, private.FileMode); err != nil {
		ln.Close()
		return fail(fmt.Errorf("%s: listen: %w", Name, err))
	}
	if err := place.Bound(); err != nil {
		ln.Close()
		return fail(fmt.Errorf("%s: listen: %w", Name, err))
	}
	ul.SetUnlinkOnClose(false) // Release removes the socket, if it is still this one
	return &listener{
		ln:    ul,
		place: place,
		snd:   snd,
		rcv:   rcv,
		raw:   raw,
		ep: transports.Endpoint{
			Transport:  Name,
			Address:    path,
			BufferSize: max(cfg.BufferSize, 0),
			Options:    maps.Clone(cfg.Options),
		},
	}, nil
}

// Dial connects to the socket at ep.Address and refuses (with an error
// wrapping ErrForeignPeer and transports.ErrBadEndpoint) a listener that
// runs as another user. A path nobody listens on fails as
// transports.Transport.Dial says: missing (transports.ErrBadEndpoint and
// fs.ErrNotExist), a stale socket (transports.ErrPeerGone and
// syscall.ECONNREFUSED), not a socket (transports.ErrBadEndpoint), a
// socket of another kind such as the rendezvous of pipe or shm-*
// (transports.ErrBadEndpoint and syscall.EPROTOTYPE).
func (transport) Dial(ctx context.Context, ep transports.Endpoint) (net.Conn, error) {
	if ep.Transport != Name {
		return nil, fmt.Errorf("%s: dial: endpoint is for transport %q: %w", Name, ep.Transport, transports.ErrBadEndpoint)
	}
	set, err := sockconn.ParseOptions(Name, false, ep.BufferSize, ep.Options)
	if err != nil {
		return nil, err
	}
	snd, rcv, raw := set.SndBuf, set.RcvBuf, set.Raw
	switch {
	case ep.Address == "":
		return nil, fmt.Errorf("%s: dial: endpoint has no socket path: %w", Name, transports.ErrBadEndpoint)
	case len(ep.Address) > MaxPath:
		return nil, fmt.Errorf("%s: dial: socket path is %d bytes, longer than the %d sun_path allows: %w",
			Name, len(ep.Address), MaxPath, transports.ErrBadEndpoint)
	}
	d := net.Dialer{Control: sockconn.Control(snd, rcv)}
	c, err := d.DialContext(ctx, "unix", ep.Address)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, connerr.DialPath(ep.Address, err))
	}
	if err := rendezvous.CheckPeer(c.(*net.UnixConn)); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: dial %s: %w: %w", Name, ep.Address, err, transports.ErrBadEndpoint)
	}
	w, err := sockconn.WrapAs(c, "unix", raw)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return w, nil
}

// listener is a unix transports.Listener.
type listener struct {
	ln    *net.UnixListener
	place rendezvous.Place // what Close removes besides the socket file
	snd   int              // SO_SNDBUF of accepted sockets; 0: the system default
	rcv   int              // SO_RCVBUF of accepted sockets; 0: the system default
	raw   bool             // io=raw: connections bypass the network poller
	ep    transports.Endpoint

	once sync.Once // releases place
}

var (
	_ transports.Listener       = (*listener)(nil)
	_ transports.OptionReporter = (*listener)(nil)
)

// Accept waits for the next connection; after Close it returns an error
// wrapping net.ErrClosed. Accepted sockets get Config.BufferSize set
// explicitly (Unix sockets do not inherit it from the listener).
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.ln.AcceptUnix()
	if err != nil {
		return nil, err // a *net.OpError naming the socket, as net.Listener users expect
	}
	if err := rendezvous.CheckPeer(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: accept: %w", Name, err)
	}
	if l.snd > 0 || l.rcv > 0 {
		rc, err := c.SyscallConn()
		if err == nil {
			err = sockconn.SetBuffers(rc, l.snd, l.rcv)
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: accept: %w", Name, err)
		}
	}
	w, err := sockconn.WrapAs(c, "unix", l.raw)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return w, nil
}

// Close stops listening and removes the socket file and the private
// directory; accepted connections stay open. A second Close returns an
// error wrapping net.ErrClosed.
func (l *listener) Close() error {
	err := l.ln.Close()
	l.once.Do(func() {
		if rerr := l.place.Release(); rerr != nil && err == nil {
			err = fmt.Errorf("%s: close: %w", Name, rerr)
		}
	})
	return err
}

// Addr returns the socket's address.
func (l *listener) Addr() net.Addr { return l.ln.Addr() }

// Endpoint returns the socket path and settings a peer dials with. The
// Options map is a copy.
func (l *listener) Endpoint() transports.Endpoint {
	ep := l.ep
	ep.Options = maps.Clone(l.ep.Options)
	return ep
}

// EffectiveOptions reports the listening socket's sndbuf and rcvbuf.
func (l *listener) EffectiveOptions() map[string]string { return sockconn.ListenerOptions(l.ln) }

// MemoryPerConn states what one connection holds
// (transports.MemoryReporter); see the package documentation.
func (transport) MemoryPerConn(cfg transports.Config) transports.Memory {
	return sockconn.Memory(Name, false, cfg)
}
