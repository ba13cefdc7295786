package peer

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestAcceptProven: connections that send junk, too few bytes before
// closing, or nothing are closed and skipped; the one that proves itself
// is returned, with its following bytes intact.
func TestAcceptProven(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSecret()
	var strangers []net.Conn
	dial := func(first []byte, closeAfter bool) net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
		if closeAfter {
			c.(*net.TCPConn).CloseWrite()
		}
		return c
	}
	strangers = append(strangers, dial(other, false), dial(secret[:SecretSize/2], true), dial(nil, false))
	good := dial(append(append([]byte{}, secret...), "hello"...), false)
	defer good.Close()
	var refused []error
	c, err := AcceptProven(ln, secret, 200*time.Millisecond, func(err error) { refused = append(refused, err) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(refused) != 3 {
		t.Errorf("refused %d connections, want 3: %v", len(refused), refused)
	}
	for _, err := range refused {
		if !errors.Is(err, ErrStranger) {
			t.Errorf("refusal %v does not wrap ErrStranger", err)
		}
	}
	buf := make([]byte, 5)
	if _, err := c.Read(buf); err != nil || string(buf) != "hello" {
		t.Errorf("after the secret: %q, %v", buf, err)
	}
	for i, s := range strangers {
		s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := s.Read(buf); n != 0 || err == nil || errors.Is(err, net.ErrClosed) {
			t.Errorf("stranger %d not closed by the listening side: %d, %v", i, n, err)
		}
		s.Close()
	}
}
