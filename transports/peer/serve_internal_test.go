package peer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// TestFailureLog: of a run of failures, the first is logged, then one per
// acceptLogEvery with the count of those in between; a success is logged,
// with the count since the last line, only when failures went unlogged and
// the last line is acceptLogEvery old, so that a listener that fails and
// works by turns is rate-limited too.
func TestFailureLog(t *testing.T) {
	var f failureLog
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	step := acceptBackoff
	check := func(what string, gotOK bool, gotMore int, ok bool, more int) {
		t.Helper()
		if gotOK != ok || gotMore != more {
			t.Fatalf("%s = %v, %d; want %v, %d", what, gotOK, gotMore, ok, more)
		}
	}
	note := func(d time.Duration, ok bool, more int) {
		t.Helper()
		got, n := f.note(at(d))
		check("note at +"+d.String(), got, n, ok, more)
	}
	recovered := func(d time.Duration, ok bool, more int) {
		t.Helper()
		got, n := f.recovered(at(d))
		check("recovered at +"+d.String(), got, n, ok, more)
	}
	recovered(0, false, 0) // nothing failed
	note(0, true, 0)
	n := int(acceptLogEvery/step) - 1
	for i := 1; i <= n; i++ {
		note(time.Duration(i)*step, false, 0)
	}
	note(acceptLogEvery, true, n)
	// Failing and working by turns: quiet until acceptLogEvery passed.
	e := acceptLogEvery
	note(e+step, false, 0)
	recovered(e+2*step, false, 0)
	note(e+3*step, false, 0)
	recovered(e+4*step, false, 0)
	recovered(2*e, true, 2)
	recovered(2*e+step, false, 0) // nothing unsaid
	note(2*e+2*step, false, 0)    // within acceptLogEvery of the last line
	note(3*e+2*step, true, 1)
}

// deadConn is a control connection whose client vanished without closing
// it (a partition): the welcome goes out, then every read fails as TCP
// does when its retransmissions run out, and every later write fails as
// one on a dead connection does.
type deadConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *deadConn) Read([]byte) (int, error) {
	return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}
}

func (c *deadConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.writes > 1 {
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	}
	return len(b), nil
}

// TestSessionOfVanishedClient: a session whose control connection dies
// (the read fails) is one error, logged once, and nothing more is written
// to it: an error reply could not reach the client, and its failure was
// counted and logged a second time.
func TestSessionOfVanishedClient(t *testing.T) {
	var logged bytes.Buffer
	sv := &standalone{
		o:        ServeOptions{Tool: "test", Log: log.New(&logged, "", 0)},
		header:   json.RawMessage(`{"tool":"test"}`),
		sessions: map[string]*session{},
		conns:    map[net.Conn]struct{}{},
	}
	a, b := socketPair(t)
	defer a.Close()
	c := &deadConn{Conn: b}
	sv.control(c)
	b.Close()
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	if got := sv.errors.Load(); got != 1 || len(lines) != 1 || !strings.Contains(lines[0], "connection timed out; the session ends") {
		t.Errorf("%d errors, log %q; want one error, logged once, that the read timed out", got, logged.String())
	}
	if c.writes != 1 {
		t.Errorf("%d writes; want the welcome alone", c.writes)
	}
}

// TestClientGone: the errors a connection ends with when its client went
// away (a reset, a dead peer, a write to a closed one) are told from
// failures, wrapped as the transports wrap them.
func TestClientGone(t *testing.T) {
	for _, c := range []struct {
		err  error
		gone bool
	}{
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{fmt.Errorf("reading message 1: %w", transports.ErrPeerGone), true},
		{fmt.Errorf("writing message 1: %w", &net.OpError{Op: "write", Net: "unix", Err: os.NewSyscallError("write", syscall.EPIPE)}), true},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}, false},
		{fmt.Errorf("reading message 1: %w", os.ErrDeadlineExceeded), false},
		{errors.New("frame: message too large"), false},
	} {
		if got := clientGone(c.err); got != c.gone {
			t.Errorf("clientGone(%v) = %v, want %v", c.err, got, c.gone)
		}
	}
}

// TestReplyToClientGone: a reply written to a client that closed or died
// (a job's done on its way as the client exits) ends the session without
// counting or logging an error. (One that times out, a client that
// stopped reading, is one: TestSessionOfVanishedClient.)
func TestReplyToClientGone(t *testing.T) {
	var logged bytes.Buffer
	sv := &standalone{o: ServeOptions{Tool: "test", Log: log.New(&logged, "", 0)}, sessions: map[string]*session{}, conns: map[net.Conn]struct{}{}}
	a, b := socketPair(t)
	defer a.Close()
	s := &session{sv: sv, id: "s1", out: a}
	b.Close()
	s.reply(Reply{Op: OpDone, ID: 1})
	if !s.broken.Load() || sv.errors.Load() != 0 || logged.Len() != 0 {
		t.Errorf("reply to a closed client: broken %v, %d errors, log %q; want the session over, no error, no line", s.broken.Load(), sv.errors.Load(), logged.String())
	}
}
