package tcplocal

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"golang.org/x/net/nettest"
)

func TestNetConn(t *testing.T) {
	tests := []struct {
		name string
		cfg  transports.Config
	}{
		{"default", transports.Config{}},
		{"nodelay=false", transports.Config{Options: map[string]string{"nodelay": "false"}}},
		{"small buffers", transports.Config{BufferSize: 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, transporttest.MakePipe(New(), tt.cfg))
		})
	}
}

func TestName(t *testing.T) {
	if got := New().Name(); got != "tcp-localhost" {
		t.Fatalf("Name() = %q", got)
	}
}

// TestListenRefusesNonLoopback: a wildcard or non-loopback host, or a bad
// port, is a mistake in the address (ErrBadEndpoint), not a transport
// that cannot run here (ErrUnavailable).
func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0", "0.0.0.0:0", "[::]:0", "192.0.2.1:5000", "127.0.0.1:notaport", "127.0.0.1:99999", "/tmp/s"} {
		ln, err := New().Listen(context.Background(), transports.Config{Address: addr})
		if err == nil {
			ln.Close()
			t.Fatalf("Listen(%q) succeeded, want a refusal", addr)
		}
		if !errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrUnavailable) {
			t.Fatalf("Listen(%q) = %v, want ErrBadEndpoint and not ErrUnavailable", addr, err)
		}
	}
}

func TestListenOnPort(t *testing.T) {
	probe, err := New().Listen(context.Background(), transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Endpoint().Address
	probe.Close()
	ln, err := New().Listen(context.Background(), transports.Config{Address: addr})
	if err != nil {
		t.Skipf("port of %s taken again meanwhile: %v", addr, err)
	}
	defer ln.Close()
	if got := ln.Endpoint().Address; got != addr {
		t.Fatalf("Listen(%q).Endpoint().Address = %q", addr, got)
	}
}

func TestEndpointIsLoopback(t *testing.T) {
	ln, err := New().Listen(context.Background(), transports.Config{BufferSize: -1})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	ep := ln.Endpoint()
	ap, err := netip.ParseAddrPort(ep.Address)
	if err != nil {
		t.Fatalf("Endpoint.Address %q: %v", ep.Address, err)
	}
	if ap.Addr() != netip.MustParseAddr("127.0.0.1") || ap.Port() == 0 {
		t.Fatalf("Endpoint.Address = %q, want 127.0.0.1:<port>", ep.Address)
	}
	if ln.Addr().String() != ep.Address {
		t.Fatalf("Addr() = %v, Endpoint.Address = %q", ln.Addr(), ep.Address)
	}
	if ep.Transport != Name || ep.BufferSize != 0 {
		t.Fatalf("Endpoint = %+v", ep)
	}
}

func TestEffectiveOptions(t *testing.T) {
	tests := []struct {
		name        string
		cfg         transports.Config
		wantNoDelay string
		minBuf      int // both buffers at least this (0: not checked)
	}{
		{"default", transports.Config{}, "true", 0},
		{"nodelay=true", transports.Config{Options: map[string]string{"nodelay": "true"}}, "true", 0},
		{"nodelay=false", transports.Config{Options: map[string]string{"nodelay": "false"}}, "false", 0},
		{"buffers", transports.Config{BufferSize: 65536}, "true", 65536},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := New().Listen(context.Background(), tt.cfg)
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			lopts := transporttest.EffectiveOptions(t, ln)
			ln.Close()
			if lopts["nodelay"] != tt.wantNoDelay || lopts["multipath"] != "false" {
				t.Errorf("listener: options %v, want nodelay=%s multipath=false", lopts, tt.wantNoDelay)
			}
			a, d := transporttest.Pair(t, New(), tt.cfg)
			for side, c := range map[string]net.Conn{"accepted": a, "dialed": d} {
				opts := transporttest.EffectiveOptions(t, c)
				if opts["nodelay"] != tt.wantNoDelay || opts["multipath"] != "false" {
					t.Errorf("%s: options %v, want nodelay=%s multipath=false", side, opts, tt.wantNoDelay)
				}
				for _, k := range []string{"sndbuf", "rcvbuf"} {
					v, err := strconv.Atoi(opts[k])
					if err != nil || v <= 0 || v < tt.minBuf {
						t.Errorf("%s: %s=%q, want a number >= %d", side, k, opts[k], max(tt.minBuf, 1))
					}
				}
			}
		})
	}
}

func TestBadOptionValue(t *testing.T) {
	for _, v := range []string{"", "yes", "1", "TRUE"} {
		cfg := transports.Config{Options: map[string]string{"nodelay": v}}
		ln, err := New().Listen(context.Background(), cfg)
		if !errors.Is(err, transports.ErrBadOption) {
			if ln != nil {
				ln.Close()
			}
			t.Errorf("nodelay=%q: %v, want ErrBadOption", v, err)
		}
	}
}

func TestDialBadEndpoint(t *testing.T) {
	tests := []struct {
		name string
		ep   transports.Endpoint
		text string // the error must say this
	}{
		{"empty address", transports.Endpoint{Transport: Name}, "is not a host:port"},
		{"no port", transports.Endpoint{Transport: Name, Address: "127.0.0.1"}, "is not a host:port (missing port in address)"},
		{"empty port", transports.Endpoint{Transport: Name, Address: "127.0.0.1:"}, "has no port"},
		{"port 0", transports.Endpoint{Transport: Name, Address: "127.0.0.1:0"}, "has port 0"},
		{"bad port", transports.Endpoint{Transport: Name, Address: "127.0.0.1:99999"}, `bad port "99999"`},
		{"a name", transports.Endpoint{Transport: Name, Address: "example.com:80"}, "not a loopback address"},
		{"wildcard", transports.Endpoint{Transport: Name, Address: "0.0.0.0:80"}, "not a loopback address"},
		{"not loopback", transports.Endpoint{Transport: Name, Address: "192.0.2.1:80"}, "not a loopback address"},
		{"other transport", transports.Endpoint{Transport: "unix", Address: "127.0.0.1:80"}, "endpoint is for transport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New().Dial(context.Background(), tt.ep)
			if !errors.Is(err, transports.ErrBadEndpoint) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Dial(%+v): %v, want ErrBadEndpoint", tt.ep, err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.text) || strings.Count(msg, Name+": ") != 1 {
				t.Errorf("Dial(%+v): %q; want %q in it and the transport named once", tt.ep, msg, tt.text)
			}
			if tt.ep.Address != "" && strings.Count(err.Error(), tt.ep.Address) > 1 {
				t.Errorf("Dial(%+v): %q names the address more than once", tt.ep, err)
			}
		})
	}
}

// TestDialTakesListenHosts: Dial takes the host forms Listen takes:
// "localhost" and an empty host (127.0.0.1), and a loopback address.
func TestDialTakesListenHosts(t *testing.T) {
	ln, err := New().Listen(context.Background(), transports.Config{Address: "localhost"})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Endpoint().Address)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, host := range []string{"localhost", "", "127.0.0.1"} {
		addr := net.JoinHostPort(host, port)
		c, err := New().Dial(context.Background(), transports.Endpoint{Transport: Name, Address: addr})
		if err != nil {
			t.Errorf("Dial(%q) of a listener on localhost: %v", addr, err)
			continue
		}
		c.Close()
	}
}

func TestDialCancelled(t *testing.T) {
	ln, err := New().Listen(context.Background(), transports.Config{})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := New().Dial(ctx, ln.Endpoint())
	if !errors.Is(err, context.Canceled) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestRawIO checks the io=raw variant (see transporttest.RunRawIO).
func TestRawIO(t *testing.T) { transporttest.RunRawIO(t, New()) }

// TestDialRefused dials a port nobody listens on: the error must wrap
// transports.ErrPeerGone and syscall.ECONNREFUSED, as the rendezvous
// transports' does for a stale socket (transports.Transport.Dial), keep a
// *net.OpError and name the address once.
func TestDialRefused(t *testing.T) {
	ln, err := New().Listen(context.Background(), transports.Config{})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ep := ln.Endpoint()
	ln.Close()
	c, err := New().Dial(context.Background(), ep)
	if err == nil {
		c.Close()
		t.Fatalf("Dial of a closed listener's %s succeeded", ep.Address)
	}
	if !errors.Is(err, transports.ErrPeerGone) || !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, transports.ErrBadEndpoint) {
		t.Errorf("Dial: %v; want ErrPeerGone and ECONNREFUSED, not ErrBadEndpoint", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("Dial: %v is no *net.OpError", err)
	}
	if n := strings.Count(err.Error(), ep.Address); n != 1 {
		t.Errorf("Dial: %q names the address %d times, want once", err, n)
	}
}
