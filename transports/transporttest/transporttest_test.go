package transporttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/connerr"
	"github.com/ipcbench/ipcbench/transports/internal/sockconn"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// The suite is checked on a small, correct TCP transport, and on broken
// variants of it, each of which must make the suite fail.

// brokenEnv selects the broken transport TestBroken runs the suite on; it
// is set only in the child test processes TestSuiteCatches starts.
const brokenEnv = "TRANSPORTTEST_BROKEN"

func TestMain(m *testing.M) {
	transporttest.Main(m, transporttest.MainOptions{Transports: []transports.Transport{
		tcpTest{name: "test-tcp"},
		tcpTest{name: "corrupt", corrupt: true},
		tcpTest{name: "leaky", leak: true},
		tcpTest{name: "no-eof", noEOF: true},
		tcpTest{name: "hog", hog: true},
		tcpTest{name: "any-address", anyAddress: true},
		tcpTest{name: "bare-refusal", bareRefusal: true},
	}})
}

// tcpTest is TCP over 127.0.0.1 with Config.BufferSize applied, listening
// on Config.Address when it is a loopback host:port and refusing any other
// address with ErrBadEndpoint, optionally broken: corrupt flips a bit of
// the 100th write of every dialed connection; leak leaves a descriptor and
// a goroutine behind per Listen; noEOF reports the end of the stream as
// io.ErrUnexpectedEOF; hog keeps hogBytes of heap per dialed connection
// that its MemoryPerConn does not state; anyAddress ignores
// Config.Address; bareRefusal returns a refused dial's error as the
// kernel gave it, without transports.ErrPeerGone.
type tcpTest struct {
	name                                               string
	corrupt, leak, noEOF, hog, anyAddress, bareRefusal bool
}

// hogBytes is what each connection of the hog transport keeps.
const hogBytes = 256 << 10

// MemoryPerConn states what the stream-socket transports state for TCP.
func (t tcpTest) MemoryPerConn(cfg transports.Config) transports.Memory {
	return sockconn.Memory(t.name, true, cfg)
}

func (t tcpTest) Name() string { return t.name }

func bufferControl(size int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		if size <= 0 {
			return nil
		}
		var serr error
		err := rc.Control(func(fd uintptr) {
			for _, opt := range []int{syscall.SO_SNDBUF, syscall.SO_RCVBUF} {
				if e := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, size); e != nil {
					serr = e
				}
			}
		})
		return errors.Join(err, serr)
	}
}

func (t tcpTest) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	addr := "127.0.0.1:0"
	if cfg.Address != "" && !t.anyAddress {
		ap, err := netip.ParseAddrPort(cfg.Address)
		if err != nil || !ap.Addr().IsLoopback() {
			return nil, fmt.Errorf("%s: listen: %q is not a loopback host:port: %w", t.name, cfg.Address, transports.ErrBadEndpoint)
		}
		addr = ap.String()
	}
	lc := net.ListenConfig{Control: bufferControl(cfg.BufferSize)}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s: listen on %s: %w: %w", t.name, addr, err, transports.ErrBadEndpoint)
	}
	if err != nil {
		return nil, err
	}
	l := &listener{Listener: ln, t: t, ep: transports.Endpoint{Transport: t.name, Address: ln.Addr().String(), BufferSize: cfg.BufferSize}}
	if t.leak {
		// A raw descriptor: an *os.File would be closed by its finalizer.
		if _, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err != nil {
			return nil, err
		}
		go func() { select {} }()
	}
	return l, nil
}

func (t tcpTest) Dial(ctx context.Context, ep transports.Endpoint) (net.Conn, error) {
	d := net.Dialer{Control: bufferControl(ep.BufferSize)}
	c, err := d.DialContext(ctx, "tcp", ep.Address)
	if err != nil && t.bareRefusal {
		return nil, err
	}
	if err != nil {
		return nil, connerr.Dial(err)
	}
	if t.corrupt {
		return &corruptConn{TCPConn: c.(*net.TCPConn)}, nil
	}
	if t.hog {
		h := &hogConn{TCPConn: c.(*net.TCPConn), hoard: make([]byte, hogBytes)}
		for i := range h.hoard {
			h.hoard[i] = byte(i)
		}
		return h, nil
	}
	return c, nil
}

type listener struct {
	net.Listener
	t  tcpTest
	ep transports.Endpoint
}

func (l *listener) Endpoint() transports.Endpoint { return l.ep }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || !l.t.noEOF {
		return c, err
	}
	return &noEOFConn{TCPConn: c.(*net.TCPConn)}, nil
}

type corruptConn struct {
	*net.TCPConn
	writes atomic.Int64
}

func (c *corruptConn) Write(p []byte) (int, error) {
	if c.writes.Add(1) == 100 && len(p) > 0 {
		q := append([]byte(nil), p...)
		q[len(q)/2] ^= 1
		p = q
	}
	return c.TCPConn.Write(p)
}

type noEOFConn struct{ *net.TCPConn }

type hogConn struct {
	*net.TCPConn
	hoard []byte
}

func (c *noEOFConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, tcpTest{name: "test-tcp"})
}

// TestBroken runs the suite on the broken transport named by brokenEnv; it
// is meant to fail, and runs only in the child processes of
// TestSuiteCatches.
func TestBroken(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatches")
	}
	tr := map[string]tcpTest{
		"corrupt":      {name: "corrupt", corrupt: true},
		"leaky":        {name: "leaky", leak: true},
		"no-eof":       {name: "no-eof", noEOF: true},
		"hog":          {name: "hog", hog: true},
		"any-address":  {name: "any-address", anyAddress: true},
		"bare-refusal": {name: "bare-refusal", bareRefusal: true},
	}[name]
	transporttest.Run(t, tr)
}

// TestSuiteCatches runs the suite on each broken transport in a child test
// process and checks that it fails, for the right reason.
func TestSuiteCatches(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in a child")
	}
	tests := []struct {
		broken  string
		subtest string
		want    []string
	}{
		{"corrupt", "echo", []string{"--- FAIL: TestBroken/echo", "payload check failed"}},
		{"leaky", "peer-closes/exit", []string{"--- FAIL: TestBroken/peer-closes/exit", "file descriptors left open", "/dev/null", "goroutines left running"}},
		{"no-eof", "peer-closes/closewrite", []string{"--- FAIL: TestBroken/peer-closes/closewrite", "want io.EOF"}},
		{"hog", "memory", []string{"--- FAIL: TestBroken/memory", "Go heap and stack bytes per end: measured", "above the"}},
		{"any-address", "address/bad-listen", []string{"--- FAIL: TestBroken/address/bad-listen", "succeeded, want ErrBadEndpoint"}},
		{"bare-refusal", "address/nobody-listens", []string{"--- FAIL: TestBroken/address/nobody-listens", `want it to wrap "peer gone"`}},
	}
	for _, tt := range tests {
		t.Run(tt.broken, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBroken$/^"+tt.subtest+"$", "-test.v", "-test.short")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tt.broken)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("suite on the %s transport: %v, want exit status 1; output:\n%s", tt.broken, err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}
