package sockconn

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports/internal/rawio"
)

// tcp4Pair returns a Conn over a tcp4 loopback connection and its peer.
func tcp4Pair(t *testing.T) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	w, err := Wrap(c, "tcp4")
	if err != nil {
		c.Close()
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(); p.Close() })
	return w, p
}

// TestReadErrorsAsTheSocketsOwn: a read error has the shape the socket's
// own Read gives it, as its Write errors do: Op "read", the network it was
// dialed on, both addresses.
func TestReadErrorsAsTheSocketsOwn(t *testing.T) {
	c, _ := tcp4Pair(t)
	c.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := c.Read(make([]byte, 8))
	_, want := c.s.Read(make([]byte, 8))
	var got, std *net.OpError
	if !errors.As(err, &got) || !errors.As(want, &std) {
		t.Fatalf("Read past the deadline = %v; the socket's own = %v; want *net.OpError both", err, want)
	}
	if got.Op != std.Op || got.Net != std.Net || got.Source.String() != std.Source.String() || got.Addr.String() != std.Addr.String() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read error %#v, want it as the socket's own %#v", got, std)
	}
}

// TestReadsGoThroughPollReader: an idle Read parks counted in the
// PollReader's count, unless the connection is in the background.
func TestReadsGoThroughPollReader(t *testing.T) {
	for _, bg := range []bool{false, true} {
		c, p := tcp4Pair(t)
		if bg {
			c.SetBackground()
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 8))
			done <- err
		}()
		if bg {
			// Give the read time to park: were it counted, it would show.
			time.Sleep(20 * time.Millisecond)
			if n := rawio.ParkedReads(); n != 0 {
				t.Fatalf("a background connection's idle read is counted (%d)", n)
			}
		} else {
			for i := 0; rawio.ParkedReads() != 1; i++ {
				if i == 10000 {
					t.Fatalf("an idle read is not parked through the PollReader (parked reads %d)", rawio.ParkedReads())
				}
				time.Sleep(time.Millisecond)
			}
		}
		p.Write([]byte("x"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
