package peer_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// standaloneWithControl runs Serve on a loopback listener with a second
// loopback listener as its control socket, logging into the returned
// buffer, until the test ends; stop stops it and returns its summary.
func standaloneWithControl(t *testing.T, o peer.ServeOptions) (addr, ctlAddr string, logs *syncBuffer, stop func() peer.Summary) {
	t.Helper()
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	o.Control = cl
	o.Log = log.New(logs, "", 0)
	addr, stop = standalone(t, o)
	return addr, cl.Addr().String(), logs, stop
}

// TestServeControlSocketHelloDue: a connection to the control socket that
// sends nothing is refused and closed once HelloTimeout passed since its
// accept, with one line logged; one to the transport's listener that
// sends nothing may be an echo client that waits before its first
// message, and stays.
func TestServeControlSocketHelloDue(t *testing.T) {
	addr, ctlAddr, logs, stop := standaloneWithControl(t, peer.ServeOptions{Echo: frame.Config{Mode: frame.Delimited}})
	start := time.Now() // before the accept, where the server's time starts
	silentCtl := dial(t, ctlAddr)
	silentData := dial(t, addr)
	silentCtl.SetReadDeadline(time.Now().Add(peer.HelloTimeout + 5*time.Second))
	got, err := io.ReadAll(silentCtl)
	if err != nil {
		t.Fatalf("silent control connection: %v after %v (read %q), want closed within %v", err, time.Since(start), got, peer.HelloTimeout)
	}
	if want := peer.ErrorPrefix + "no hello within " + peer.HelloTimeout.String(); !strings.HasPrefix(string(got), want) {
		t.Errorf("silent control connection got %q, want %q...", got, want)
	}
	if d := time.Since(start); d < peer.HelloTimeout-time.Second {
		t.Errorf("silent control connection closed after %v, before HelloTimeout %v", d, peer.HelloTimeout)
	}
	if n := strings.Count(logs.String(), "no hello within"); n != 1 {
		t.Errorf("%d log lines about the silent control connection, want 1:\n%s", n, logs)
	}
	// The silent data-side connection is still served: as an echo client.
	io.WriteString(silentData, "late\n")
	silentData.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(silentData).ReadString('\n'); err != nil || line != "late\n" {
		t.Fatalf("echo client silent for %v: got %q, %v", time.Since(start), line, err)
	}
	if s := stop(); s.Errors != 1 || s.EchoClients != 1 {
		t.Fatalf("summary %+v, want 1 error (the silent control connection) and 1 echo client", s)
	}
}

// TestServeStopDuringHellos: stopping a server while connections are in
// the middle of their hellos is an ordinary stop: nothing is logged and
// nothing counted as an error.
func TestServeStopDuringHellos(t *testing.T) {
	addr, ctlAddr, logs, stop := standaloneWithControl(t, peer.ServeOptions{})
	for i := range 40 {
		a := addr
		if i%2 == 1 {
			a = ctlAddr
		}
		c := dial(t, a)
		switch i % 4 {
		case 0, 1:
			io.WriteString(c, peer.HelloPrefix[:5]) // within the prefix
		default:
			io.WriteString(c, peer.HelloPrefix+"1 cont") // before the newline
		}
	}
	time.Sleep(200 * time.Millisecond) // let the server read what came
	if s := stop(); s.Errors != 0 {
		t.Errorf("summary %+v, want no errors", s)
	}
	if l := logs.String(); l != "" {
		t.Errorf("a stop during hellos logged:\n%s", l)
	}
}

// TestServeHelloTooSlow: a hello begun but not finished in time is
// refused with a reason that says so, not with the read's error.
func TestServeHelloTooSlow(t *testing.T) {
	addr, _, logs, stop := standaloneWithControl(t, peer.ServeOptions{})
	c := dial(t, addr)
	io.WriteString(c, peer.HelloPrefix+"1 da")
	c.SetReadDeadline(time.Now().Add(peer.HelloTimeout + 5*time.Second))
	got, err := bufio.NewReader(c).ReadString('\n')
	want := peer.ErrorPrefix + "the hello did not finish within " + peer.HelloTimeout.String() + "\n"
	if err != nil || got != want {
		t.Fatalf("slow hello: got %q, %v; want %q", got, err, want)
	}
	stop()
	if l := logs.String(); strings.Contains(l, "i/o timeout") || !strings.Contains(l, "the hello did not finish within") {
		t.Errorf("log:\n%s", l)
	}
}

// failingListener fails its first fails Accepts as a listener out of
// descriptors does, then hands out one end of a net.Pipe, then waits for
// Close.
type failingListener struct {
	fails  int
	calls  int
	peer   net.Conn      // the other end of the one connection handed out
	handed chan struct{} // closed once it is
	closed chan struct{}
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls++
	switch {
	case l.calls <= l.fails:
		return nil, fmt.Errorf("accept4: %w", syscall.EMFILE)
	case l.calls == l.fails+1:
		c, p := net.Pipe()
		l.peer = p
		close(l.handed)
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *failingListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *failingListener) Addr() net.Addr { return &net.UnixAddr{Name: "failing", Net: "unix"} }

// TestServeAcceptFailuresRateLimited: an Accept that fails again and
// again (out of descriptors) is retried, each failure counted, but logged
// once, not once per failure.
func TestServeAcceptFailuresRateLimited(t *testing.T) {
	const fails = 30 // 300ms of failures, well within the 5s between lines
	ln := &failingListener{fails: fails, handed: make(chan struct{}), closed: make(chan struct{})}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan peer.Summary, 1)
	go func() {
		s, err := peer.Serve(ctx, ln, peer.ServeOptions{Log: log.New(&logs, "", 0)})
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		done <- s
	}()
	select {
	case <-ln.handed:
	case <-time.After(10 * time.Second):
		t.Errorf("Accept never recovered; log:\n%s", logs.String())
	}
	cancel()
	s := <-done
	if ln.peer != nil {
		ln.peer.Close()
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "too many open files") {
		t.Errorf("log of %d failed Accepts within 5s, want one line:\n%s", fails, logs.String())
	}
	if s.Errors != fails {
		t.Errorf("summary %+v, want %d errors", s, fails)
	}
}

// TestServeReplyWriteFailureEndsSession: a client that queues many jobs
// and goes away without reading the replies is a client gone: its session
// ends at the first reply that cannot be written, with no error counted
// and no line logged for it (nor one per queued job).
func TestServeReplyWriteFailureEndsSession(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan peer.Summary, 1)
	go func() {
		s, err := peer.Serve(ctx, ln, peer.ServeOptions{Log: log.New(&logs, "", 0), Header: strings.Repeat("h", 4<<10)})
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		done <- s
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.OpenControl(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	var jobs strings.Builder
	for i := range 500 {
		fmt.Fprintf(&jobs, `{"op":"header","id":%d}`+"\n", i+1)
	}
	if _, err := io.WriteString(c, jobs.String()); err != nil {
		t.Fatal(err)
	}
	c.Close() // with the replies unread
	// The session ends once a reply fails; a second client then finds the
	// server as before.
	c2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.OpenControl(testCtx(t), c2); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	time.Sleep(200 * time.Millisecond) // time for lines, if any came
	cancel()
	sum := <-done
	if sum.Errors != 0 || strings.Contains(logs.String(), "writing") {
		t.Errorf("summary %+v, log:\n%.2000s\nwant no error and no line for a client gone", sum, logs.String())
	}
}

// TestServeLongControlInput: an unknown job op is echoed in the error
// reply clipped, not whole; a control line over the limit ends the
// session with one line logged.
func TestServeLongControlInput(t *testing.T) {
	var logs syncBuffer
	addr, stop := standalone(t, peer.ServeOptions{Log: log.New(&logs, "", 0)})
	c := dial(t, addr)
	if _, err := peer.OpenControl(testCtx(t), c); err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	long := strings.Repeat("x", 900<<10)
	if _, err := fmt.Fprintf(c, `{"op":%q,"id":1}`+"\n", long); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || len(line) > 1000 || !strings.Contains(line, "unknown job op") {
		t.Fatalf("reply to a 900 KiB op: %d bytes %.300q, %v; want an error under 1000 bytes", len(line), line, err)
	}
	go io.WriteString(c, strings.Repeat("y", 1<<20+10)+"\n") // the server may stop reading it halfway
	line, err = br.ReadString('\n')
	if err != nil || !strings.Contains(line, "longer than 1048576 bytes") {
		t.Fatalf("reply to a line over 1 MiB: %.300q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("the session goes on after a line over 1 MiB")
	}
	stop()
	if n := strings.Count(logs.String(), "longer than 1048576 bytes"); n != 1 {
		t.Fatalf("%d log lines about the line over 1 MiB, want 1; log:\n%.2000s", n, logs.String())
	}
}

// TestMainUnknownOpClipped: the spawned peer's reply to an unknown job op
// is clipped too.
func TestMainUnknownOpClipped(t *testing.T) {
	in, out, _ := mainInProcess(t, context.Background())
	if _, err := out.ReadString('\n'); err != nil { // the handshake
		t.Fatal(err)
	}
	go fmt.Fprintf(in, `{"op":%q,"id":1}`+"\n", strings.Repeat("x", 900<<10))
	line, err := out.ReadString('\n')
	if err != nil || len(line) > 1000 || !strings.Contains(line, "unknown job op") {
		t.Fatalf("reply to a 900 KiB op: %d bytes %.300q, %v; want an error under 1000 bytes", len(line), line, err)
	}
}

// TestServeRefusalReadsFromServerSide: a server refuses a line that is no
// hello saying that the client's hello is not one, not that it is "not an
// ipcbench serve" (the client's words for the same mismatch); ParseHello's
// error still wraps ErrNotServe.
func TestServeRefusalReadsFromServerSide(t *testing.T) {
	if _, err := peer.ParseHello("ipcbench-hello/1 other"); !errors.Is(err, peer.ErrNotServe) || !strings.HasPrefix(err.Error(), "not an ipcbench hello: ") {
		t.Errorf("ParseHello of a bad kind: %v; want \"not an ipcbench hello: ...\" wrapping ErrNotServe", err)
	}
	addr, _, logs, stop := standaloneWithControl(t, peer.ServeOptions{})
	for _, send := range []string{
		peer.HelloPrefix + "1 other\n",
		peer.HelloPrefix + "1 control\nmore",
		peer.HelloPrefix + strings.Repeat("x", peer.MaxHelloLen),
	} {
		c := dial(t, addr)
		io.WriteString(c, send)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, peer.ErrorPrefix) || !strings.Contains(line, "not an ipcbench hello") || strings.Contains(line, peer.ErrNotServe.Error()) {
			t.Errorf("answer to %.40q: %q, %v; want a refusal saying the hello is not one", send, line, err)
		}
	}
	stop()
	if l := logs.String(); strings.Contains(l, peer.ErrNotServe.Error()) {
		t.Errorf("the server's log speaks of the client's side:\n%s", l)
	}
}
