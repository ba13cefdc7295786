package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// checkLink makes a Link, listens in A, dials from B, and checks that the
// connection crosses the veth pair and that neither end is visible in
// this process's own namespace.
func checkLink() error {
	l, err := NewLink()
	if err != nil {
		return fmt.Errorf("NewLink: %w", err)
	}
	defer l.Close()
	var ln net.Listener
	if err := l.Do(SideA, func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(netip.MustParseAddr(LinkAddrA), 0).String())
		return err
	}); err != nil {
		return fmt.Errorf("listen in A: %w", err)
	}
	defer ln.Close()
	var c net.Conn
	if err := l.Do(SideB, func() (err error) {
		c, err = net.DialTimeout("tcp4", ln.Addr().String(), 10*time.Second)
		return err
	}); err != nil {
		return fmt.Errorf("dial from B: %w", err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer s.Close()
	if got := s.RemoteAddr().(*net.TCPAddr).IP.String(); got != LinkAddrB {
		return fmt.Errorf("connection from %s, want %s", got, LinkAddrB)
	}
	for _, name := range []string{LinkA, LinkB} {
		if _, err := net.InterfaceByName(name); err == nil {
			return fmt.Errorf("%s visible outside its namespace", name)
		}
	}
	// From this namespace, B's address is unreachable: only B's sockets
	// reach A.
	if c, err := net.DialTimeout("tcp4", ln.Addr().String(), 200*time.Millisecond); err == nil {
		c.Close()
		return errors.New("dialed the link's address from outside the link")
	}
	return nil
}

func TestNewLinkRefusesOutside(t *testing.T) {
	if Inside() {
		t.Skip("inside a private namespace")
	}
	if _, err := NewLink(); !errors.Is(err, ErrOutside) {
		t.Fatalf("NewLink outside: %v, want ErrOutside", err)
	}
}

func TestSideString(t *testing.T) {
	if SideA.String() != "A" || SideB.String() != "B" {
		t.Fatalf("sides: %s %s", SideA, SideB)
	}
}
