package peer_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
	"github.com/ipcbench/ipcbench/transports/pipe"
)

// TestMain runs the test binary as a peer serving the test transports when
// proc.Start re-executes it (peer.RunIfPeer), otherwise the tests.
func TestMain(m *testing.M) {
	peer.RunIfPeer(lookupTest)
	goleak.VerifyTestMain(m)
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// startPeer starts the test binary as a peer inheriting files.
func startPeer(tb testing.TB, files []*os.File) (*proc.Peer, *peer.Client) {
	tb.Helper()
	p, err := proc.Start(testCtx(tb), proc.Spec{Attach: transports.Endpoint{Transport: "test", Files: files}.AttachTo})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("closing peer: %v", err)
		}
	})
	return p, peer.NewClient(p)
}

// serve listens on tr, starts a peer and makes it serve role on conns
// connections; it returns the bench ends in index order.
func serve(tb testing.TB, tr transports.Transport, conns int, role string, fc frame.Config) (*peer.Client, []net.Conn) {
	tb.Helper()
	return serveJob(tb, tr, peer.Job{Conns: conns, Role: role, Frame: peer.FrameSpecOf(fc)})
}

// startJob listens on tr, starts a peer and sends it job (its endpoint
// filled in); it returns the listener, the client and Serve's error.
func startJob(tb testing.TB, tr transports.Transport, job peer.Job) (transports.Listener, *peer.Client, error) {
	tb.Helper()
	ctx := testCtx(tb)
	ln, err := tr.Listen(ctx, transports.Config{Conns: max(job.Conns, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	job.Op = peer.OpServe
	job.Endpoint = ln.Endpoint()
	_, c := startPeer(tb, job.Endpoint.Files)
	return ln, c, c.Serve(ctx, job)
}

// pipeIndex is the channel index of a pipe connection, 0 for others.
func pipeIndex(c net.Conn) int {
	if a, ok := c.RemoteAddr().(pipe.Addr); ok {
		return a.Index
	}
	return 0
}

// serveErr is the error of Serve for job.
func serveErr(tb testing.TB, tr transports.Transport, job peer.Job) error {
	tb.Helper()
	_, _, err := startJob(tb, tr, job)
	return err
}

// serveJob runs job (see startJob) and returns the bench ends of its
// connections in index order.
func serveJob(tb testing.TB, tr transports.Transport, job peer.Job) (*peer.Client, []net.Conn) {
	tb.Helper()
	ln, c, err := startJob(tb, tr, job)
	if err != nil {
		tb.Fatalf("Serve: %v", err)
	}
	var out []net.Conn
	for range max(job.Conns, 1) {
		conn, err := ln.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		out = append(out, conn)
	}
	// A pipe listener accepts in the order the peer's hellos arrive.
	slices.SortStableFunc(out, func(a, b net.Conn) int { return cmp.Compare(pipeIndex(a), pipeIndex(b)) })
	return c, out
}

var testTransports = []transports.Transport{tcpTransport{}, pairTransport{}}

func TestServeEcho(t *testing.T) {
	for _, tr := range testTransports {
		for _, fc := range []frame.Config{{}, {Mode: frame.Delimited}, {Mode: frame.Fixed, Size: 100}} {
			t.Run(tr.Name()+"/"+fc.Mode.String(), func(t *testing.T) {
				const conns, msgs = 3, 50
				c, cs := serve(t, tr, conns, peer.RoleEcho, fc)
				for i, conn := range cs {
					w, r := frame.NewWriter(conn, fc), frame.NewReader(conn, fc)
					for seq := range uint64(msgs) {
						size := 1 + int(seq)*37%200
						if fc.Mode == frame.Fixed {
							size = fc.Size
						}
						out := make([]byte, size)
						frame.Fill(out, uint32(i), seq)
						if err := w.WriteMsg(out); err != nil {
							t.Fatal(err)
						}
						in, err := r.ReadMsg(nil)
						if err != nil {
							t.Fatalf("conn %d message %d: %v", i, seq, err)
						}
						if err := frame.Check(in, uint32(i), seq); err != nil || len(in) != size {
							t.Fatalf("conn %d message %d: %d bytes back, %v", i, seq, len(in), err)
						}
					}
					conn.Close()
				}
				done, err := c.Done(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				if done.Op != peer.OpDone || done.Error != "" || len(done.Conns) != conns {
					t.Fatalf("done = %+v", done)
				}
				for i, st := range done.Conns {
					if st.Messages != msgs || st.Errors != 0 || st.Error != "" {
						t.Errorf("conn %d stats %+v, want %d messages", i, st, msgs)
					}
				}
			})
		}
	}
}

func TestServeSink(t *testing.T) {
	for _, tr := range testTransports {
		t.Run(tr.Name(), func(t *testing.T) {
			const conns = 2
			c, cs := serve(t, tr, conns, peer.RoleSink, frame.Config{})
			for i, conn := range cs {
				w := frame.NewWriter(conn, frame.Config{})
				rd := frame.NewReader(conn, frame.Config{})
				// Two segments; the second has one message stamped with the
				// wrong connection id.
				for segment, n := range []int{20, 5} {
					var bytes int64
					for seq := range uint64(n) {
						out := make([]byte, 30+int(seq))
						id := uint32(i)
						if segment == 1 && seq == 3 {
							id++
						}
						frame.Fill(out, id, seq)
						bytes += int64(len(out))
						if err := w.WriteMsg(out); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.WriteMsg(nil); err != nil {
						t.Fatal(err)
					}
					msg, err := rd.ReadMsg(nil)
					if err != nil {
						t.Fatal(err)
					}
					ack, err := peer.DecodeAck(msg)
					if err != nil {
						t.Fatal(err)
					}
					want := peer.Ack{Messages: int64(n), Bytes: bytes, Errors: int64(segment)}
					if ack != want {
						t.Fatalf("conn %d segment %d: ack %+v, want %+v", i, segment, ack, want)
					}
				}
				conn.Close()
			}
			done, err := c.Done(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range done.Conns {
				if st.Messages != 25 || st.Errors != 1 || !strings.Contains(st.CheckError, "conn") || st.Error != "" {
					t.Errorf("conn %d: stats %+v, want 25 messages, 1 error", i, st)
				}
			}
		})
	}
}

func TestServeErrors(t *testing.T) {
	tests := []struct {
		name string
		job  func(ep transports.Endpoint) peer.Job
		want string
	}{
		{"unknown transport", func(ep transports.Endpoint) peer.Job {
			ep.Transport = "carrier-pigeon"
			return peer.Job{Endpoint: ep, Role: peer.RoleEcho}
		}, `"carrier-pigeon"`},
		{"unknown role", func(ep transports.Endpoint) peer.Job {
			return peer.Job{Endpoint: ep, Role: "source"}
		}, `unknown role "source"`},
		{"sink with fixed frames", func(ep transports.Endpoint) peer.Job {
			return peer.Job{Endpoint: ep, Role: peer.RoleSink, Frame: peer.FrameSpec{Mode: "fixed", Size: 8}}
		}, "fixed framing cannot"},
		{"bad framing", func(ep transports.Endpoint) peer.Job {
			return peer.Job{Endpoint: ep, Role: peer.RoleEcho, Frame: peer.FrameSpec{Mode: "smoke"}}
		}, "unknown framing mode"},
		{"too many conns", func(ep transports.Endpoint) peer.Job {
			return peer.Job{Endpoint: ep, Role: peer.RoleEcho, Conns: peer.MaxConns + 1}
		}, "outside 1..1024"},
		{"files not inherited", func(ep transports.Endpoint) peer.Job {
			ep.NumFiles = 3
			return peer.Job{Endpoint: ep, Role: peer.RoleEcho}
		}, "endpoint has 3 files, but the peer inherited 0"},
		{"dial fails", func(ep transports.Endpoint) peer.Job {
			ep.Address = "127.0.0.1:1"
			return peer.Job{Endpoint: ep, Role: peer.RoleEcho}
		}, "dialing test-tcp connection 0 of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			ln, err := tcpTransport{}.Listen(ctx, transports.Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			p, c := startPeer(t, nil)
			err = c.Serve(ctx, tt.job(ln.Endpoint()))
			if !errors.Is(err, peer.ErrFailed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Serve = %v, want ErrFailed containing %q", err, tt.want)
			}
			// The peer is still usable.
			if _, err := c.CPU(ctx); err != nil {
				t.Fatalf("CPU after a failed serve: %v", err)
			}
			if !strings.Contains(p.Logs(), tt.want) {
				t.Errorf("peer log %q does not mention %q", p.Logs(), tt.want)
			}
		})
	}
}

func TestDoneReportsConnectionError(t *testing.T) {
	c, cs := serve(t, tcpTransport{}, 2, peer.RoleEcho, frame.Config{})
	// Connection 1 ends inside a frame: a length prefix promising 100
	// bytes, then 3.
	if _, err := cs[1].Write([]byte{0, 0, 0, 100, 'a', 'b', 'c'}); err != nil {
		t.Fatal(err)
	}
	cs[0].Close()
	cs[1].Close()
	done, err := c.Done(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(done.Error, "test-tcp connection 1:") || !strings.Contains(done.Error, "truncated") {
		t.Fatalf("done.Error = %q, want connection 1 truncated", done.Error)
	}
	if done.Conns[0].Error != "" || done.Conns[1].Error == "" {
		t.Fatalf("per-connection errors %q, %q", done.Conns[0].Error, done.Conns[1].Error)
	}
}

func TestCPUWhileWaitingForDone(t *testing.T) {
	ctx := testCtx(t)
	c, cs := serve(t, tcpTransport{}, 1, peer.RoleEcho, frame.Config{})
	type result struct {
		r   peer.Reply
		err error
	}
	doneC := make(chan result, 1)
	go func() {
		r, err := c.Done(ctx)
		doneC <- result{r, err}
	}()
	var last time.Duration
	for i := range 20 {
		cpu, err := c.CPU(ctx)
		if err != nil {
			t.Fatalf("CPU %d while Done waits: %v", i, err)
		}
		if cpu.Total() <= 0 || cpu.Total() < last {
			t.Fatalf("CPU %d = %+v after %v", i, cpu, last)
		}
		last = cpu.Total()
	}
	select {
	case r := <-doneC:
		t.Fatalf("Done returned before the connection ended: %+v, %v", r.r, r.err)
	default:
	}
	cs[0].Close()
	r := <-doneC
	if r.err != nil || r.r.Op != peer.OpDone {
		t.Fatalf("Done = %+v, %v", r.r, r.err)
	}
}

func TestServeAgainAfterDone(t *testing.T) {
	ctx := testCtx(t)
	_, c := startPeer(t, nil)
	for round := range 2 {
		ln, err := tcpTransport{}.Listen(ctx, transports.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := c.Serve(ctx, peer.Job{Endpoint: ln.Endpoint(), Role: peer.RoleEcho}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := c.Serve(ctx, peer.Job{Endpoint: ln.Endpoint(), Role: peer.RoleEcho}); !errors.Is(err, peer.ErrFailed) || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("round %d: second Serve = %v, want already running", round, err)
		}
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if _, err := c.Done(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExitClosesConnections(t *testing.T) {
	p, c := func() (*proc.Peer, *peer.Client) {
		ctx := testCtx(t)
		ln, err := tcpTransport{}.Listen(ctx, transports.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		p, c := startPeer(t, nil)
		if err := c.Serve(ctx, peer.Job{Endpoint: ln.Endpoint(), Role: peer.RoleEcho}); err != nil {
			t.Fatal(err)
		}
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := c.Exit(); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("read after the peer's exit = %v, want io.EOF", err)
		}
		return p, c
	}()
	<-p.Exited()
	if err := p.Close(); err != nil {
		t.Fatalf("peer did not exit 0: %v", err)
	}
	if _, err := c.Done(testCtx(t)); !errors.Is(err, proc.ErrClosed) && !errors.Is(err, proc.ErrPeerExited) {
		t.Fatalf("Done after exit = %v, want the peer gone", err)
	}
}

func TestDoneWithoutServe(t *testing.T) {
	_, c := startPeer(t, nil)
	if _, err := c.Done(testCtx(t)); !errors.Is(err, peer.ErrProtocol) {
		t.Fatalf("Done without Serve = %v, want ErrProtocol", err)
	}
}

func TestMainNotByHand(t *testing.T) {
	t.Setenv(proc.CookieEnv, "")
	var out, errb strings.Builder
	code := peer.Main(context.Background(), strings.NewReader(""), &out, &errb, lookupTest)
	if code != 2 || out.Len() != 0 || strings.TrimSpace(errb.String()) != peer.NotByHand {
		t.Fatalf("Main without cookie = %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// mainInProcess runs Main in this process as if started as a peer, with
// the control channel on pipes.
func mainInProcess(t *testing.T, ctx context.Context) (in io.WriteCloser, out *bufio.Reader, code <-chan int) {
	t.Setenv(proc.CookieEnv, proc.CookieValue)
	t.Setenv(proc.ParentEnv, fmt.Sprint(os.Getppid()))
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := make(chan int, 1)
	go func() {
		c <- peer.Main(ctx, inR, outW, io.Discard, lookupTest)
		outW.Close()
	}()
	t.Cleanup(func() {
		inW.Close()
		io.Copy(io.Discard, outR)
	})
	return inW, bufio.NewReader(outR), c
}

func TestMainInProcess(t *testing.T) {
	in, out, code := mainInProcess(t, context.Background())
	line, err := out.ReadString('\n')
	if want := proc.HandshakeLine(os.Getpid()) + "\n"; err != nil || line != want {
		t.Fatalf("handshake %q, %v; want %q", line, err, want)
	}
	tests := []struct {
		send string
		want peer.Reply
	}{
		{`{"op":"fly","id":4}`, peer.Reply{Op: peer.OpError, ID: 4, Error: `unknown job op "fly" (want serve, cpu or exit)`}},
		{`not json`, peer.Reply{Op: peer.OpError}},
		{`{"op":"cpu","id":5}`, peer.Reply{Op: peer.OpCPU, ID: 5}},
	}
	for _, tt := range tests {
		if _, err := io.WriteString(in, tt.send+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := out.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var r peer.Reply
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Op != tt.want.Op || r.ID != tt.want.ID || (tt.want.Error != "" && r.Error != tt.want.Error) {
			t.Errorf("reply to %s = %+v, want %+v", tt.send, r, tt.want)
		}
		if r.Op == peer.OpError && r.Error == "" {
			t.Errorf("error reply to %s has no reason", tt.send)
		}
		if r.Op == peer.OpCPU && r.UserNS+r.SysNS <= 0 {
			t.Errorf("cpu reply %+v has no CPU time", r)
		}
	}
	in.Close()
	if c := <-code; c != 0 {
		t.Fatalf("Main returned %d at control EOF, want 0", c)
	}
}

func TestMainContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	_, out, code := mainInProcess(t, ctx)
	if _, err := out.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	if c := <-code; c != 1 {
		t.Fatalf("Main returned %d when ctx ended, want 1", c)
	}
}
