package peer_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// standalone runs Serve on a loopback listener until the test ends; the
// returned function stops it and returns its summary.
func standalone(t *testing.T, o peer.ServeOptions) (addr string, stop func() peer.Summary) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		s   peer.Summary
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := peer.Serve(ctx, ln, o)
		ch <- result{s, err}
	}()
	var sum *peer.Summary
	stop = func() peer.Summary {
		if sum == nil {
			cancel()
			r := <-ch
			if r.err != nil {
				t.Errorf("Serve: %v", r.err)
			}
			sum = &r.s
		}
		return *sum
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHelloRoundTrip(t *testing.T) {
	for _, h := range []peer.Hello{
		{Version: peer.ProtocolVersion, Kind: peer.KindControl},
		{Version: peer.ProtocolVersion, Kind: peer.KindData, Session: "00ff", Conn: 7},
	} {
		line := string(h.AppendLine(nil))
		got, err := peer.ParseHello(strings.TrimSuffix(line, "\n"))
		if err != nil || got != h {
			t.Errorf("ParseHello(%q) = %+v, %v; want %+v", line, got, err, h)
		}
	}
	for line, want := range map[string]error{
		"ipcbench-hello/2 control":                peer.ErrVersion,
		"ipcbench-hello/1":                        peer.ErrNotServe,
		"ipcbench-hello/x control":                peer.ErrNotServe,
		"ipcbench-hello/1 data session=a":         peer.ErrNotServe,
		"ipcbench-hello/1 data session= conn=1":   peer.ErrNotServe,
		"ipcbench-hello/1 data session=a conn=-1": peer.ErrNotServe,
		"ipcbench-hello/1 other":                  peer.ErrNotServe,
		"GET / HTTP/1.0":                          peer.ErrNotServe,
	} {
		if _, err := peer.ParseHello(line); !errors.Is(err, want) {
			t.Errorf("ParseHello(%q) = %v, want %v", line, err, want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a log.Logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestServeStopQuietly: stopping a server whose session has a job running
// (Ctrl-C on ipcbench serve during a run) is an ordinary stop: the
// replies the session can no longer send on the control connection it
// closed itself are not logged as failures.
func TestServeStopQuietly(t *testing.T) {
	var logs syncBuffer
	addr, stop := standalone(t, peer.ServeOptions{Tool: "ipcbench test", Log: log.New(&logs, "", 0)})
	ctx := testCtx(t)
	ctl, err := peer.OpenControl(ctx, dial(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	client := peer.NewLinkClient(ctl)
	if err := client.Serve(ctx, peer.Job{Role: peer.RoleEcho, Conns: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c := dial(t, addr)
		if err := ctl.JoinData(ctx, c, i); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if l := logs.String(); strings.Contains(l, "closed network connection") {
		t.Fatalf("an ordinary stop logged:\n%s", l)
	}
}

// TestServeSession drives a session by hand: echo on two connections,
// a sink with its acknowledgement, and a connect job ended by an end job.
func TestServeSession(t *testing.T) {
	addr, stop := standalone(t, peer.ServeOptions{Tool: "ipcbench test", Header: map[string]string{"tool": "ipcbench test"}})
	ctx := testCtx(t)
	ctl, err := peer.OpenControl(ctx, dial(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	if ctl.Tool() != "ipcbench test" || len(ctl.Session()) != 32 {
		t.Fatalf("welcome: tool %q, session %q", ctl.Tool(), ctl.Session())
	}
	client := peer.NewLinkClient(ctl)
	if h, err := client.Header(ctx); err != nil || string(h) != `{"tool":"ipcbench test"}` {
		t.Fatalf("Header = %s, %v", h, err)
	}
	if _, err := client.CPU(ctx); err != nil {
		t.Fatal(err)
	}
	fc := frame.Config{}

	// echo on two connections
	if err := client.Serve(ctx, peer.Job{Role: peer.RoleEcho, Conns: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c := dial(t, addr)
		if err := ctl.JoinData(ctx, c, i); err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 100)
		frame.Fill(msg, uint32(i), 0)
		if err := frame.NewWriter(c, fc).WriteMsg(msg); err != nil {
			t.Fatal(err)
		}
		got, err := frame.NewReader(c, fc).ReadMsg(nil)
		if err != nil || frame.Check(got, uint32(i), 0) != nil {
			t.Fatalf("echo on connection %d: %v", i, err)
		}
		c.Close()
	}
	done, err := client.Done(ctx)
	if err != nil || done.Error != "" || len(done.Conns) != 2 || done.Conns[1].Messages != 1 {
		t.Fatalf("done = %+v, %v", done, err)
	}

	// a sink acknowledges its segment
	if err := client.Serve(ctx, peer.Job{Role: peer.RoleSink}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr)
	if err := ctl.JoinData(ctx, c, 0); err != nil {
		t.Fatal(err)
	}
	w := frame.NewWriter(c, fc)
	for seq := range uint64(3) {
		msg := make([]byte, 64)
		frame.Fill(msg, 0, seq)
		w.WriteMsg(msg)
	}
	w.WriteMsg(nil)
	ackMsg, err := frame.NewReader(c, fc).ReadMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := peer.DecodeAck(ackMsg); err != nil || ack.Messages != 3 || ack.Errors != 0 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	c.Close()
	if done, err := client.Done(ctx); err != nil || done.Error != "" {
		t.Fatalf("sink done = %+v, %v", done, err)
	}

	// connect: any number of connections until end
	if err := client.Serve(ctx, peer.Job{Role: peer.RoleConnect}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c := dial(t, addr)
		if err := ctl.JoinData(ctx, c, 0); err != nil {
			t.Fatal(err)
		}
		frame.NewWriter(c, fc).WriteMsg([]byte("x"))
		if _, err := frame.NewReader(c, fc).ReadMsg(nil); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if err := client.End(); err != nil {
		t.Fatal(err)
	}
	if done, err := client.Done(ctx); err != nil || done.Error != "" || done.Conns[0].Messages != 3 {
		t.Fatalf("connect done = %+v, %v", done, err)
	}
	client.Exit()
	ctl.Close()
	if s := stop(); s.Sessions != 1 || s.Probes != 0 || s.Messages != 2+3+3 || s.Errors != 0 {
		t.Fatalf("summary %+v", s)
	}
}

// TestServeCountsProbes: a control connection that asks for no serve job
// (a run's probe before its first case: the header, then exit) is counted
// as a probe, not as a session, so that the sessions a run leaves are its
// cases; one still open when the server stops counts as a probe too.
func TestServeCountsProbes(t *testing.T) {
	addr, stop := standalone(t, peer.ServeOptions{Tool: "ipcbench test", Header: map[string]string{"tool": "ipcbench test"}})
	ctx := testCtx(t)
	for range 2 {
		ctl, err := peer.OpenControl(ctx, dial(t, addr))
		if err != nil {
			t.Fatal(err)
		}
		client := peer.NewLinkClient(ctl)
		if _, err := client.Header(ctx); err != nil {
			t.Fatal(err)
		}
		client.Exit()
		ctl.Close()
	}
	open, err := peer.OpenControl(ctx, dial(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	s := stop()
	if s.Sessions != 0 || s.Probes != 3 || s.Errors != 0 {
		t.Fatalf("summary %+v; want no session and 3 probes", s)
	}
	if got, want := s.String(), "sessions=0 probes=3 echo_clients=0 "; !strings.HasPrefix(got, want) {
		t.Errorf("summary line %q; want it to start %q", got, want)
	}
}

// TestServeRefusesStrangers: data connections that name no session, a
// connection index twice or outside the job are refused with a line.
func TestServeRefusesStrangers(t *testing.T) {
	addr, stop := standalone(t, peer.ServeOptions{})
	ctx := testCtx(t)
	ctl, err := peer.OpenControl(ctx, dial(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	join := func(session string, i int) error {
		_, err := peer.Handshake(ctx, dial(t, addr), peer.Hello{Kind: peer.KindData, Session: session, Conn: i})
		return err
	}
	if err := join("0123", 0); !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), "no such session") {
		t.Fatalf("unknown session: %v", err)
	}
	if err := join(ctl.Session(), 0); !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), "no serve job") {
		t.Fatalf("no job: %v", err)
	}
	client := peer.NewLinkClient(ctl)
	if err := client.Serve(ctx, peer.Job{Role: peer.RoleEcho, Conns: 2}); err != nil {
		t.Fatal(err)
	}
	if err := ctl.JoinData(ctx, dial(t, addr), 0); err != nil {
		t.Fatal(err)
	}
	if err := join(ctl.Session(), 0); !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), "arrived twice") {
		t.Fatalf("twice: %v", err)
	}
	if err := join(ctl.Session(), 2); !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("outside: %v", err)
	}
	ctl.Close() // ends the session and closes its connection
	if s := stop(); s.Errors != 4 {
		t.Fatalf("summary %+v, want 4 errors (refusals)", s)
	}
}

// TestServeLateConnections: a job whose connections do not all arrive
// ends with an error in its done reply.
func TestServeLateConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("waits peer.DialTimeout")
	}
	addr, _ := standalone(t, peer.ServeOptions{})
	ctx := testCtx(t)
	ctl, err := peer.OpenControl(ctx, dial(t, addr))
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	client := peer.NewLinkClient(ctl)
	if err := client.Serve(ctx, peer.Job{Role: peer.RoleEcho, Conns: 2}); err != nil {
		t.Fatal(err)
	}
	if err := ctl.JoinData(ctx, dial(t, addr), 0); err != nil {
		t.Fatal(err)
	}
	done, err := client.Done(ctx)
	if err != nil || !strings.Contains(done.Error, "only 1 of 2 connections arrived") {
		t.Fatalf("done = %+v, %v", done, err)
	}
}

// TestServePlainEcho: a client that sends no hello is echoed, and a stop
// closes it; the summary counts it.
func TestServePlainEcho(t *testing.T) {
	addr, stop := standalone(t, peer.ServeOptions{Echo: frame.Config{Mode: frame.Delimited}})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for _, line := range []string{"i\n", "ipcbench\n", "hello\n"} { // a prefix of the hello, then not
		io.WriteString(c, line)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := br.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("echo of %q = %q, %v", line, got, err)
		}
	}
	s := stop() // with the client still connected
	if s.EchoClients != 1 || s.Messages != 3 || s.Bytes != int64(len("i")+len("ipcbench")+len("hello")) || s.Errors != 0 {
		t.Fatalf("summary %+v", s)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("connection still open after Serve returned")
	}
}

// TestServeDataConnectionEnds: a session's data connection that the
// client resets is a client gone, not a failure, whether the reset comes
// before or after that of its control connection (a client whose process
// ended resets whichever the server writes to next, so the count must not
// depend on the order); a data connection that fails is counted and
// logged, once.
func TestServeDataConnectionEnds(t *testing.T) {
	reset := func(c net.Conn) {
		c.(*net.TCPConn).SetLinger(0) // Close sends a reset
		c.Close()
	}
	// start opens a session with an echo job of one connection, and
	// echoes one message on it.
	start := func(t *testing.T, addr string) (net.Conn, *peer.Client, net.Conn) {
		ctx := testCtx(t)
		cc := dial(t, addr)
		ctl, err := peer.OpenControl(ctx, cc)
		if err != nil {
			t.Fatal(err)
		}
		client := peer.NewLinkClient(ctl)
		if err := client.Serve(ctx, peer.Job{Role: peer.RoleEcho, Conns: 1}); err != nil {
			t.Fatal(err)
		}
		c := dial(t, addr)
		if err := ctl.JoinData(ctx, c, 0); err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 100)
		frame.Fill(msg, 0, 0)
		if err := frame.NewWriter(c, frame.Config{}).WriteMsg(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := frame.NewReader(c, frame.Config{}).ReadMsg(nil); err != nil {
			t.Fatal(err)
		}
		return cc, client, c
	}
	t.Run("reset, data first", func(t *testing.T) {
		var logs syncBuffer
		addr, stop := standalone(t, peer.ServeOptions{Tool: "ipcbench test", Log: log.New(&logs, "", 0)})
		ctl, client, c := start(t, addr)
		reset(c)
		// The job is done once its connection ended: the server has seen
		// the reset before the control connection's.
		if done, err := client.Done(testCtx(t)); err != nil || done.Error != "" {
			t.Errorf("done = %+v, %v; want no error for a connection the client reset", done, err)
		}
		reset(ctl)
		if s := stop(); s.Errors != 0 || logs.String() != "" {
			t.Errorf("summary %+v, log %q; want no error and no line", s, logs.String())
		}
	})
	t.Run("reset, control first", func(t *testing.T) {
		var logs syncBuffer
		addr, stop := standalone(t, peer.ServeOptions{Tool: "ipcbench test", Log: log.New(&logs, "", 0)})
		ctl, _, c := start(t, addr)
		reset(ctl)
		time.Sleep(50 * time.Millisecond) // the order is the point, not a bound: either way no error
		reset(c)
		if s := stop(); s.Errors != 0 || logs.String() != "" {
			t.Errorf("summary %+v, log %q; want no error and no line", s, logs.String())
		}
	})
	t.Run("failed", func(t *testing.T) {
		var logs syncBuffer
		addr, stop := standalone(t, peer.ServeOptions{Tool: "ipcbench test", Log: log.New(&logs, "", 0)})
		ctl, client, c := start(t, addr)
		if _, err := c.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil { // a length over any maximum
			t.Fatal(err)
		}
		done, err := client.Done(testCtx(t))
		if err != nil || !strings.Contains(done.Error, "connection 0: ") || !strings.Contains(done.Error, "too large") {
			t.Errorf("done = %+v, %v; want connection 0's error", done, err)
		}
		client.Exit()
		ctl.Close()
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if s := stop(); s.Errors != 1 || len(lines) != 1 || !strings.Contains(lines[0], "connection 0: ") || !strings.Contains(lines[0], "too large") {
			t.Errorf("summary %+v, log %q; want the failure counted and logged once", s, logs.String())
		}
	})
}
