package tcppublic

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"golang.org/x/net/nettest"
)

// hermetic skips the test unless this process runs inside a private network
// namespace (made by internal/netns; TestMain re-execs into one where it
// can), so that no test ever listens on or dials this machine's real
// interfaces. It makes sure the namespace's veth pair is set up.
func hermetic(t *testing.T) {
	t.Helper()
	if !netns.Inside() {
		t.Skip("needs a private network namespace and this process is not inside one (internal/netns re-exec unavailable or not done)")
	}
	if err := netns.Setup(); err != nil {
		if errors.Is(err, netns.ErrUnsupported) {
			t.Skipf("private network namespace without its veth pair: %v", err)
		}
		t.Fatalf("netns.Setup: %v", err)
	}
	// Belt and braces: whatever address the default selection picks must
	// be one of the namespace's own.
	a, err := resolve("")
	if err != nil {
		t.Fatalf("resolve inside the namespace: %v", err)
	}
	if a != netip.MustParseAddr(netns.Addr0) && a != netip.MustParseAddr(netns.Addr1) {
		t.Fatalf("default address %v is not on the private veth pair; refusing to go on", a)
	}
}

var hermeticConfigs = []struct {
	name string
	cfg  transports.Config
	want string // address the listener must use
}{
	{"default", transports.Config{}, ""},
	{"interface ipc1", transports.Config{Address: netns.Link1}, netns.Addr1},
	{"address", transports.Config{Address: netns.Addr0}, netns.Addr0},
	{"nodelay=false small buffers", transports.Config{Address: netns.Link0, BufferSize: 4096, Options: map[string]string{"nodelay": "false"}}, netns.Addr0},
}

func TestNetConn(t *testing.T) {
	hermetic(t)
	for _, tt := range hermeticConfigs {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, transporttest.MakePipe(New(), tt.cfg))
		})
	}
}

func TestListenAddress(t *testing.T) {
	hermetic(t)
	for _, tt := range hermeticConfigs {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := New().Listen(context.Background(), tt.cfg)
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			defer ln.Close()
			ap, err := netip.ParseAddrPort(ln.Endpoint().Address)
			if err != nil {
				t.Fatalf("Endpoint.Address: %v", err)
			}
			if ap.Addr().IsLoopback() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
				t.Fatalf("listening on %v", ap)
			}
			if tt.want != "" && ap.Addr().String() != tt.want {
				t.Fatalf("listening on %v, want %s", ap, tt.want)
			}
			a, d := transporttest.Pair(t, New(), tt.cfg)
			for _, c := range []net.Conn{a, d} {
				opts := transporttest.EffectiveOptions(t, c)
				if opts["multipath"] != "false" || opts["nodelay"] == "" {
					t.Errorf("options %v", opts)
				}
			}
		})
	}
}

// TestListenBadAddress runs anywhere: every case fails before a socket is
// made, with ErrBadEndpoint (a mistake in the address), not
// ErrUnavailable (this host cannot run the transport).
func TestListenBadAddress(t *testing.T) {
	tests := []struct{ name, address string }{
		{"no such interface", "ipcbench-nope0"},
		{"wildcard v4", "0.0.0.0"},
		{"wildcard v6", "::"},
		{"loopback v4", "127.0.0.1"},
		{"loopback v6", "::1"},
		{"loopback interface", "lo"},
		{"address not on this host", "192.0.2.77"},
		{"bad port", "192.0.2.77:99999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := New().Listen(context.Background(), transports.Config{Address: tt.address})
			if !errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrUnavailable) {
				if ln != nil {
					ln.Close()
				}
				t.Fatalf("Listen(%q): %v, want ErrBadEndpoint and not ErrUnavailable", tt.address, err)
			}
		})
	}
}

func TestUnknownOption(t *testing.T) {
	// Listen checks options before choosing an address, so this runs anywhere.
	ln, err := New().Listen(context.Background(), transports.Config{Options: map[string]string{"bogus": "1"}})
	if !errors.Is(err, transports.ErrBadOption) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen with an unknown option: %v, want ErrBadOption", err)
	}
}

func TestDialBadEndpoint(t *testing.T) {
	tests := []struct {
		name string
		ep   transports.Endpoint
	}{
		{"loopback", transports.Endpoint{Transport: Name, Address: "127.0.0.1:80"}},
		{"wildcard", transports.Endpoint{Transport: Name, Address: "[::]:80"}},
		{"garbage", transports.Endpoint{Transport: Name, Address: "ipc0"}},
		{"other transport", transports.Endpoint{Transport: "tcp-localhost", Address: "10.77.0.1:80"}},
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
		})
	}
}

func TestPick(t *testing.T) {
	up := net.FlagUp
	lo := iface{"lo", net.FlagUp | net.FlagLoopback, addrs("127.0.0.1", "::1")}
	down := iface{"eth9", 0, addrs("198.51.100.9")}
	v4 := iface{"eth0", up, addrs("fe80::1", "2001:db8::1", "198.51.100.1", "198.51.100.2")}
	v6 := iface{"eth1", up, addrs("fe80::2", "2001:db8::2")}
	linkLocal := iface{"eth2", up, addrs("fe80::3")}
	tests := []struct {
		name    string
		ifaces  []iface
		address string
		want    string // "" means an error wrapping wantErr
		wantMsg string // substring of the error
		wantErr error  // ErrBadEndpoint for a mistake in the address, else ErrUnavailable
	}{
		{"first up non-loopback, IPv4 preferred", []iface{lo, down, v4, v6}, "", "198.51.100.1", "", nil},
		{"IPv6 when no IPv4", []iface{lo, linkLocal, v6, v4}, "", "2001:db8::2", "", nil},
		{"only loopback", []iface{lo}, "", "", "no non-loopback interface: lo is loopback", transports.ErrUnavailable},
		{"loopback and down", []iface{lo, down}, "", "", "eth9 is down", transports.ErrUnavailable},
		{"link-local only", []iface{lo, linkLocal}, "", "", "eth2 has no IPv4 or global IPv6 address", transports.ErrUnavailable},
		{"no interfaces", nil, "", "", "no non-loopback interface: no interfaces", transports.ErrUnavailable},
		{"by name", []iface{lo, v4, v6}, "eth1", "2001:db8::2", "", nil},
		{"by name down", []iface{lo, down}, "eth9", "", "eth9 is down", transports.ErrUnavailable},
		{"by name loopback", []iface{lo}, "lo", "", "loopback", transports.ErrBadEndpoint},
		{"by name link-local only", []iface{linkLocal}, "eth2", "", "no IPv4 or global IPv6", transports.ErrUnavailable},
		{"unknown name", []iface{lo, v4}, "wlan0", "", `no interface or address "wlan0" (interfaces: lo, eth0)`, transports.ErrBadEndpoint},
		{"by address", []iface{lo, v4}, "198.51.100.2", "198.51.100.2", "", nil},
		{"by v6 address", []iface{lo, v4}, "2001:db8::1", "2001:db8::1", "", nil},
		{"v4-mapped address", []iface{lo, v4}, "::ffff:198.51.100.2", "198.51.100.2", "", nil},
		{"address on a down interface", []iface{down}, "198.51.100.9", "", "down", transports.ErrUnavailable},
		{"address not here", []iface{lo, v4}, "203.0.113.1", "", "not on any interface", transports.ErrBadEndpoint},
		{"wildcard", []iface{v4}, "0.0.0.0", "", "wildcard", transports.ErrBadEndpoint},
		{"loopback address", []iface{lo}, "127.0.0.1", "", "loopback", transports.ErrBadEndpoint},
		{"link-local address", []iface{v4}, "fe80::1", "", "link-local", transports.ErrBadEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pick(tt.ifaces, tt.address)
			if tt.want != "" {
				if err != nil || got.String() != tt.want {
					t.Fatalf("pick = %v, %v; want %s", got, err, tt.want)
				}
				return
			}
			other := transports.ErrUnavailable
			if tt.wantErr == transports.ErrUnavailable {
				other = transports.ErrBadEndpoint
			}
			if !errors.Is(err, tt.wantErr) || errors.Is(err, other) {
				t.Fatalf("pick = %v, %v; want %v and not %v", got, err, tt.wantErr, other)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}
