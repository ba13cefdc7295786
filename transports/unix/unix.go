// Package unix is the "unix" transport: a Unix domain stream socket between
// two processes.
//
// Listen makes a fresh private (0700) directory, named
// "ipcbench-unix-PID-*" (PID in base 36), in Config.Address (default os.TempDir()) and
// listens on a socket file (0600) inside it; Listener.Close removes both the
// socket file and the directory. A process killed before its Close leaves
// its directory behind: the next Listen in the same place removes the
// directories of processes that no longer exist (owned by the same user,
// never following symlinks).
//
// Accept refuses (closes, and returns an error wrapping ErrForeignPeer) a
// connection whose peer runs as another user, read with SO_PEERCRED.
// The socket path must fit in sun_path (107 bytes plus the NUL): a longer
// one is refused with a clear error (transports.ErrUnavailable from Listen,
// transports.ErrBadEndpoint from Dial), never truncated. Config.BufferSize
// sets SO_SNDBUF and SO_RCVBUF on both ends; the options sndbuf and rcvbuf
// (binary units: "256k") set each on its own and override it; io=raw makes
// connections bypass Go's network poller (see sockconn.RawConn).
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
	"path/filepath"
	"sync"

	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/sockconn"
)

// Name is the transport's stable name.
const Name = "unix"

// MaxPath is the longest socket path the kernel accepts: sun_path is 108
// bytes including the terminating NUL.
const MaxPath = 107

// socketName is the socket file's name inside the private directory.
const socketName = "s"

// New returns the unix transport.
func New() transports.Transport { return transport{} }

type transport struct{}

var (
	_ transports.Transport     = transport{}
	_ transports.OptionChecker = transport{}
)

// Name returns "unix".
func (transport) Name() string { return Name }

// CheckOptions reports whether Listen and Dial accept opts (sndbuf,
// rcvbuf, io); see transports.OptionChecker.
func (transport) CheckOptions(opts map[string]string) error {
	_, err := sockconn.ParseOptions(Name, false, 0, opts)
	return err
}

// Listen makes the private directory and listens on a socket inside it.
func (transport) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	set, err := sockconn.ParseOptions(Name, false, cfg.BufferSize, cfg.Options)
	if err != nil {
		return nil, err
	}
	snd, rcv, raw := set.SndBuf, set.RcvBuf, set.Raw
	base := cfg.Address
	if base == "" {
		base = os.TempDir()
	}
	dir, err := makeDir(base)
	if err != nil {
		return nil, fmt.Errorf("%s: make private directory in %s: %w: %w", Name, base, transports.ErrUnavailable, err)
	}
	path := filepath.Join(dir, socketName)
	fail := func(err error) (transports.Listener, error) {
		if rerr := os.RemoveAll(dir); rerr != nil {
			return nil, fmt.Errorf("%w (and removing %s: %w)", err, dir, rerr)
		}
		return nil, err
	}
	if len(path) > MaxPath {
		return fail(fmt.Errorf("%s: socket path %s is %d bytes, longer than the %d sun_path allows; choose a shorter directory: %w",
			Name, path, len(path), MaxPath, transports.ErrUnavailable))
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
	ul.SetUnlinkOnClose(true)
	return &listener{
		ln:  ul,
		dir: dir,
		snd: snd,
		rcv: rcv,
		raw: raw,
		ep: transports.Endpoint{
			Transport:  Name,
			Address:    path,
			BufferSize: max(cfg.BufferSize, 0),
			Options:    maps.Clone(cfg.Options),
		},
	}, nil
}

// Dial connects to the socket at ep.Address.
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
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	w, err := sockconn.WrapAs(c, raw)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return w, nil
}

// listener is a unix transports.Listener.
type listener struct {
	ln  *net.UnixListener
	dir string
	snd int  // SO_SNDBUF of accepted sockets; 0: the system default
	rcv int  // SO_RCVBUF of accepted sockets; 0: the system default
	raw bool // io=raw: connections bypass the network poller
	ep  transports.Endpoint

	once sync.Once // removes dir
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
	if err := checkPeer(c); err != nil {
		c.Close()
		return nil, err
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
	w, err := sockconn.WrapAs(c, l.raw)
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
		if rerr := os.RemoveAll(l.dir); rerr != nil && err == nil {
			err = fmt.Errorf("%s: remove %s: %w", Name, l.dir, rerr)
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
