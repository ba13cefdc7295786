package peer_test

import (
	"bufio"
	"context"
	"io"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports/peer"
	"golang.org/x/sys/unix"
)

// capRefusal is how the refusal of a connection over MaxConns 2 begins.
const capRefusal = peer.ErrorPrefix + "this server serves at most 2 connections at once (ipcbench serve -max-conns) and 2 are open"

// readRefusal reads what the server sends c until it closes c, and fails
// the test unless that is the refusal at the cap, one line.
func readRefusal(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(got), capRefusal) || strings.Count(string(got), "\n") != 1 || !strings.HasSuffix(string(got), "\n") {
		t.Fatalf("%s: got %q, %v; want the line %q... and the connection closed", what, got, err, capRefusal)
	}
}

// TestServeMaxConns: with MaxConns 2, a session's control connection and
// an echo client held open are served; a connection more, on either
// listener, gets the refusal line and is closed, also when it never reads
// (the accept loop goes on) and when it is a client that sent its hello
// (it gets the reason as its error); refusals do not count against the
// cap, so once the echo client closed a new one is served; every refusal
// counts as an error, and a flood of them is not logged one line each.
func TestServeMaxConns(t *testing.T) {
	addr, ctlAddr, logs, stop := standaloneWithControl(t, peer.ServeOptions{MaxConns: 2, Echo: frame.Config{Mode: frame.Delimited}})
	ctx := testCtx(t)
	ctl, err := peer.OpenControl(ctx, dial(t, ctlAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	echo := dial(t, addr)
	if got := echoLine(t, echo, "first\n"); got != "first\n" {
		t.Fatalf("echo client: got %q, want its line back", got)
	}
	refused := 0
	// Clients that never read: their refusals must not hold up the
	// accept loop.
	for range 5 {
		dial(t, addr)
		refused++
	}
	for i := range 10 {
		a := addr
		if i%2 == 1 {
			a = ctlAddr
		}
		readRefusal(t, dial(t, a), "a connection over the cap")
		refused++
	}
	if _, err := peer.OpenControl(ctx, dial(t, ctlAddr)); err == nil || !strings.Contains(err.Error(), "at most 2 connections at once") {
		t.Fatalf("a control client over the cap: %v; want the refusal's reason", err)
	}
	refused++
	// The session still works.
	if _, err := peer.NewLinkClient(ctl).Header(ctx); err != nil {
		t.Fatalf("the session served before the cap was reached: %v", err)
	}
	echo.Close()
	// The server sees the close in its own time: until then, new ones
	// are refused.
	for {
		c := dial(t, addr)
		if got := echoLine(t, c, "again\n"); got == "again\n" {
			break
		}
		refused++
		if ctx.Err() != nil {
			t.Fatalf("no connection served once the echo client closed; log:\n%s", logs)
		}
		c.Close()
	}
	s := stop()
	if s.Errors != int64(refused) {
		t.Errorf("summary %+v, want %d errors, one per refusal", s, refused)
	}
	if n := strings.Count(logs.String(), "refused: this server serves at most 2"); n < 1 || n >= refused {
		t.Errorf("%d log lines about %d refusals; want them rate-limited:\n%s", n, refused, logs)
	}
}

// echoLine writes line on c and returns the line read back, or what came
// instead: a refusal's line, or "" with the error's text after it.
func echoLine(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line); err != nil {
		return "write: " + err.Error()
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return got + " read: " + err.Error()
	}
	return got
}

// TestServeMaxConnsNegative: a negative MaxConns is an error, and the
// listeners are closed.
func TestServeMaxConnsNegative(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = peer.Serve(context.Background(), ln, peer.ServeOptions{MaxConns: -1})
	if err == nil || !strings.Contains(err.Error(), "max conns -1") {
		t.Fatalf("Serve with MaxConns -1: %v, want an error naming it", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the listener is still open")
	}
}

// TestDefaultMaxConns: the default cap gives the connections every
// descriptor of the limit but the process's own, and is never 0; a limit
// of 2,048 serves ipcbench run's largest fanin (1,024 connections and a
// control connection) over a socket, where the cap was once halved and
// refused connection 992.
func TestDefaultMaxConns(t *testing.T) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	limit := int(min(rl.Cur, math.MaxInt32))
	for _, d := range []int{1, 2, peer.MaxDescriptorsPerConn} {
		if got, want := peer.DefaultMaxConns(d), max((limit-peer.ReservedDescriptors)/d, 1); got != want {
			t.Errorf("DefaultMaxConns(%d) = %d with a limit of %d, want %d", d, got, limit, want)
		}
	}
	if peer.DefaultMaxConns(0) != peer.DefaultMaxConns(1) {
		t.Errorf("DefaultMaxConns(0) = %d, want DefaultMaxConns(1) = %d", peer.DefaultMaxConns(0), peer.DefaultMaxConns(1))
	}
	if rl.Max >= 2048 {
		lowered := unix.Rlimit{Cur: 2048, Max: rl.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
			t.Fatal(err)
		}
		defer unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
		if got := peer.DefaultMaxConns(1); got < 1024+1 {
			t.Errorf("DefaultMaxConns(1) = %d with a limit of 2048, want room for 1,024 connections and a control connection", got)
		}
	}
}
