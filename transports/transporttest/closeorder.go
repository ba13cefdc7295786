package transporttest

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
)

// closeRounds is how many pairs closeEndsBoth closes: enough for a
// race between the two directions' ends to show.
const closeRounds = 50

// testCloseEndsBoth closes a connection while a Read of it is blocked,
// closeRounds times over fresh in-process pairs: once that Read has
// returned net.ErrClosed, a Write (and a WriteBuffers where the
// connection has one) that its goroutine makes at once must fail with
// net.ErrClosed too and deliver nothing, even while Close is still at
// work: a Close that ends its two directions one after the other must not
// leave the second working once the first has failed.
func testCloseEndsBoth(t *testing.T, tr transports.Transport) {
	skipUnavailable(t, tr)
	closeEndsBoth(t, tr, transports.Config{Conns: 1})
}

// closeEndsBoth runs testCloseEndsBoth's rounds over pairs made with cfg.
func closeEndsBoth(t *testing.T, tr transports.Transport, cfg transports.Config) {
	for i := range closeRounds {
		closeRound(t, tr, cfg, i)
	}
}

// closeRound is round i of closeEndsBoth.
func closeRound(t *testing.T, tr transports.Transport, cfg transports.Config, i int) {
	a, d, err := pair(tr, cfg)
	if err != nil {
		t.Fatalf("round %d: connect a pair: %v", i, err)
	}
	defer d.Close()
	defer a.Close() // a second Close: its error is not this test's
	// The Read's goroutine writes as soon as its Read returns, while
	// Close may still be at work on the other direction.
	type result struct {
		what string
		n    int64
		err  error
	}
	results := make(chan []result, 1)
	go func() {
		var rs []result
		_, err := a.Read(make([]byte, 1))
		rs = append(rs, result{"the Read blocked at Close", 0, err})
		n, err := a.Write([]byte("x"))
		rs = append(rs, result{"Write after that Read", int64(n), err})
		if bw, ok := a.(frame.BuffersWriter); ok {
			v := net.Buffers{[]byte("x")}
			n, err := bw.WriteBuffers(&v)
			rs = append(rs, result{"WriteBuffers after that Read", n, err})
		}
		results <- rs
	}()
	time.Sleep(time.Millisecond) // most rounds: the Read is blocked by now (a late one must fail the same)
	if err := a.Close(); err != nil {
		t.Fatalf("round %d: Close: %v", i, err)
	}
	for _, r := range <-results {
		if r.n != 0 || !errors.Is(r.err, net.ErrClosed) {
			t.Fatalf("round %d: %s: %d, %v; want 0 and net.ErrClosed", i, r.what, r.n, r.err)
		}
	}
	d.SetReadDeadline(time.Now().Add(hang))
	if n, err := d.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("round %d: the peer read %d bytes (%v) after Close; want none", i, n, err)
	}
}
