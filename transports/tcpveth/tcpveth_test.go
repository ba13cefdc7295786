package tcpveth

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// inside skips the test outside the private namespace TestMain enters.
func inside(t *testing.T) {
	t.Helper()
	if !netns.Inside() {
		t.Skip("needs a private network namespace and this process is not inside one")
	}
}

// TestConformance runs the conformance suite, the in-process behaviour
// cases included.
func TestConformance(t *testing.T) {
	transporttest.RunWith(t, New(), transporttest.RunOptions{
		Behaviour: true,
		NoAddress: "the dialer needs the endpoint's namespace file",
		Setup: func(t *testing.T) transports.Config {
			inside(t)
			return transports.Config{}
		},
	})
}

// TestCrossesTheLink checks that the two ends are in different namespaces
// and talk over the veth pair: the accepted connection comes from the B
// end's address, and neither veth end is visible in this process's own
// namespace. Once everything is closed, no descriptor holds a namespace.
func TestCrossesTheLink(t *testing.T) {
	inside(t)
	t.Cleanup(func() {
		if held := namespaceFDs(t); len(held) > 0 {
			t.Errorf("descriptors still hold network namespaces after every close: %v", held)
		}
	})
	tr := New()
	ln, err := tr.Listen(t.Context(), transports.Config{})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	ep := ln.Endpoint()
	if ap := netip.MustParseAddrPort(ep.Address); ap.Addr().String() != netns.LinkAddrA {
		t.Fatalf("listening on %v, want %s", ap, netns.LinkAddrA)
	}
	if len(ep.Files) != 1 || ep.NumFiles != 1 {
		t.Fatalf("endpoint has %d files (NumFiles %d), want its namespace", len(ep.Files), ep.NumFiles)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("Accept: %v", err)
		}
		accepted <- c
	}()
	c, err := tr.Dial(t.Context(), ep)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		return
	}
	defer s.Close()
	if got := s.RemoteAddr().(*net.TCPAddr).IP.String(); got != netns.LinkAddrB {
		t.Fatalf("accepted a connection from %s, want %s (the veth end in namespace B)", got, netns.LinkAddrB)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	buf := make([]byte, 1)
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("Read: %q %v", buf, err)
	}
	for _, name := range []string{netns.LinkA, netns.LinkB} {
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("%s is visible in the bench's own namespace", name)
		}
	}
}

// TestUnavailableOutside checks that outside a private namespace (as with
// -network host) Listen changes nothing and says why.
func TestUnavailableOutside(t *testing.T) {
	t.Setenv(netns.EnvMarker, "")
	_, err := New().Listen(context.Background(), transports.Config{})
	if !errors.Is(err, transports.ErrUnavailable) {
		t.Fatalf("Listen outside a private namespace: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "private network namespace") {
		t.Fatalf("error %q does not say why", err)
	}
}

// TestBadAddresses checks the explicit-address rules.
func TestBadAddresses(t *testing.T) {
	for _, addr := range []string{"0.0.0.0", "10.78.0.2", "10.78.0.1:99999"} {
		if _, err := New().Listen(context.Background(), transports.Config{Address: addr}); !errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrUnavailable) {
			t.Errorf("Listen on %s: %v, want ErrBadEndpoint and not ErrUnavailable", addr, err)
		}
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, ep := range []transports.Endpoint{
		{Transport: Name, Address: "127.0.0.1:80", Files: []*os.File{f}},
		{Transport: Name, Address: netns.LinkAddrA + ":80"},
	} {
		if _, err := New().Dial(context.Background(), ep); !errors.Is(err, transports.ErrBadEndpoint) {
			t.Errorf("Dial %+v: %v, want ErrBadEndpoint", ep, err)
		}
	}
}

// namespaceFDs lists this process's descriptors that refer to a network
// namespace.
func namespaceFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "net:[") {
			out = append(out, e.Name()+" -> "+l)
		}
	}
	return out
}
