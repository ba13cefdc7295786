package peer_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

// Two small transports for testing the peer without the real ones: TCP on
// 127.0.0.1 (an address to dial) and socket pairs handed over as inherited
// files (descriptors to dial).

func lookupTest(name string) (transports.Transport, error) {
	switch name {
	case tcpTransport{}.Name():
		return tcpTransport{}, nil
	case pairTransport{}.Name():
		return pairTransport{}, nil
	}
	return all.Lookup(name) // the real ones, for the server models' tests
}

type tcpTransport struct{}

func (tcpTransport) Name() string { return "test-tcp" }

func (t tcpTransport) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return tcpListener{ln, transports.Endpoint{Transport: t.Name(), Address: ln.Addr().String()}}, nil
}

func (tcpTransport) Dial(ctx context.Context, ep transports.Endpoint) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", ep.Address)
}

type tcpListener struct {
	net.Listener
	ep transports.Endpoint
}

func (l tcpListener) Endpoint() transports.Endpoint { return l.ep }

type pairTransport struct{}

func (pairTransport) Name() string { return "test-pair" }

func (t pairTransport) Listen(_ context.Context, cfg transports.Config) (transports.Listener, error) {
	l := &pairListener{closed: make(chan struct{})}
	for i := 0; i < cfg.ConnCount(); i++ {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.local = append(l.local, os.NewFile(uintptr(fds[0]), "local"))
		l.remote = append(l.remote, os.NewFile(uintptr(fds[1]), "remote"))
	}
	return l, nil
}

func (pairTransport) Dial(_ context.Context, ep transports.Endpoint) (net.Conn, error) {
	if ep.Index < 0 || ep.Index >= len(ep.Files) {
		return nil, fmt.Errorf("%w: index %d of %d files", transports.ErrBadEndpoint, ep.Index, len(ep.Files))
	}
	return net.FileConn(ep.Files[ep.Index]) // duplicates the descriptor
}

// pairListener hands out the local ends in order; the remote ends are the
// endpoint's files.
type pairListener struct {
	mu     sync.Mutex
	local  []*os.File
	remote []*os.File
	next   int
	closed chan struct{}
	once   sync.Once
}

func (l *pairListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	if l.next == len(l.local) {
		return nil, fmt.Errorf("all %d connections accepted", len(l.local))
	}
	f := l.local[l.next]
	l.local[l.next] = nil
	l.next++
	defer f.Close()
	return net.FileConn(f)
}

func (l *pairListener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, f := range append(l.local, l.remote...) {
			if f != nil {
				f.Close()
			}
		}
	})
	return nil
}

func (l *pairListener) Addr() net.Addr { return pairAddr{} }

func (l *pairListener) Endpoint() transports.Endpoint {
	return transports.Endpoint{Transport: pairTransport{}.Name(), Files: l.remote, NumFiles: len(l.remote)}
}

type pairAddr struct{}

func (pairAddr) Network() string { return "pair" }
func (pairAddr) String() string  { return "pair" }
