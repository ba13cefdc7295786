package peer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/internal/testpeer"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// modelTransports are the socket and pipe transports every server model
// is tested over; and their io=raw variants: the pipe's reader sets
// O_NONBLOCK on the open file the models' descriptors share, and the
// sockets' receive and send timeouts hold for those descriptors too.
var modelTransports = []string{"unix", "tcp-localhost", "pipe", "pipe[io=raw]", "unix[io=raw]", "tcp-localhost[io=raw]"}

// lookupReal returns the transport a spec names; a variant's options go
// to its listener, and through the endpoint to the peer.
func lookupReal(t *testing.T, spec string) transports.Transport {
	t.Helper()
	sp, err := transports.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := all.Lookup(sp.Name)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Options != nil {
		return variant{tr, sp.Options}
	}
	return tr
}

// variant is a transport listening with options.
type variant struct {
	transports.Transport
	options map[string]string
}

func (v variant) Listen(ctx context.Context, cfg transports.Config) (transports.Listener, error) {
	cfg.Options = v.options
	return v.Transport.Listen(ctx, cfg)
}

// serveModel is serve with a server model.
func serveModel(t *testing.T, tr transports.Transport, conns int, role, model string) (*peer.Client, []net.Conn) {
	t.Helper()
	return serveJob(t, tr, peer.Job{Conns: conns, Role: role, Model: model})
}

// drive serves role with model over the transport called name on conns
// connections, runs each bench end through fn at once (each closed
// after), fails the test for fn's errors, and returns the peer's done
// reply.
func drive(t *testing.T, model, name, role string, conns int, fn func(i int, conn net.Conn) error) peer.Reply {
	t.Helper()
	c, cs := serveModel(t, lookupReal(t, name), conns, role, model)
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i, conn := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			errs[i] = fn(i, conn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("conn %d: %v", i, err)
		}
	}
	done, err := c.Done(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(done.Conns) != conns {
		t.Fatalf("done = %+v, want %d connections", done, conns)
	}
	return done
}

// TestServerModelsEcho drives four connections at once through every
// server model over unix, tcp-localhost and pipe (both io modes): messages of up to
// 100 KiB (partial reads and writes, a full pipe) come back byte for
// byte, and the peer counts them.
func TestServerModelsEcho(t *testing.T) {
	for _, model := range peer.Models() {
		for _, name := range modelTransports {
			t.Run(model+"/"+name, func(t *testing.T) {
				const conns, msgs = 4, 40
				done := drive(t, model, name, peer.RoleEcho, conns, func(i int, conn net.Conn) error {
					w, r := frame.NewWriter(conn, frame.Config{}), frame.NewReader(conn, frame.Config{})
					for seq := range uint64(msgs) {
						size := 1 + int(seq*seq*61)%(100<<10)
						out := make([]byte, size)
						frame.Fill(out, uint32(i), seq)
						if err := w.WriteMsg(out); err != nil {
							return err
						}
						in, err := r.ReadMsg(nil)
						if err == nil && len(in) != size {
							err = fmt.Errorf("%d bytes back, want %d", len(in), size)
						}
						if err == nil {
							err = frame.Check(in, uint32(i), seq)
						}
						if err != nil {
							return fmt.Errorf("message %d: %w", seq, err)
						}
					}
					return nil
				})
				if done.Error != "" {
					t.Fatalf("done = %+v", done)
				}
				for i, st := range done.Conns {
					if st.Messages != msgs || st.Error != "" {
						t.Errorf("conn %d stats %+v, want %d messages", i, st, msgs)
					}
				}
			})
		}
	}
}

// TestServerModelsSlowReader echoes messages far larger than any socket
// or pipe buffer through every model while the bench reads each echo
// late, so that the peer's writes wait for space and its reads for data
// far longer than an io=raw socket's 1 ms timeouts.
func TestServerModelsSlowReader(t *testing.T) {
	for _, model := range peer.Models() {
		for _, name := range modelTransports {
			t.Run(model+"/"+name, func(t *testing.T) {
				const msgs, size = 3, 2 << 20
				done := drive(t, model, name, peer.RoleEcho, 1, func(i int, conn net.Conn) error {
					w, r := frame.NewWriter(conn, frame.Config{}), frame.NewReader(conn, frame.Config{})
					out := make([]byte, size)
					for seq := range uint64(msgs) {
						frame.Fill(out, uint32(i), seq)
						if err := w.WriteMsg(out); err != nil {
							return err
						}
						time.Sleep(20 * time.Millisecond)
						in, err := r.ReadMsg(nil)
						if err == nil {
							err = frame.Check(in, uint32(i), seq)
						}
						if err != nil {
							return fmt.Errorf("message %d: %w", seq, err)
						}
					}
					return nil
				})
				if st := done.Conns[0]; done.Error != "" || st.Error != "" || st.Messages != msgs {
					t.Fatalf("done = %+v, want %d messages and no error", done, msgs)
				}
			})
		}
	}
}

// TestServerModelsSink checks every payload through every model: one
// message per connection is stamped wrong and is counted as an error.
func TestServerModelsSink(t *testing.T) {
	for _, model := range peer.Models() {
		for _, name := range modelTransports {
			t.Run(model+"/"+name, func(t *testing.T) {
				const conns, n = 4, 30
				done := drive(t, model, name, peer.RoleSink, conns, func(i int, conn net.Conn) error {
					w, r := frame.NewWriter(conn, frame.Config{}), frame.NewReader(conn, frame.Config{})
					var bytes int64
					for seq := range uint64(n) {
						out := make([]byte, 1+int(seq*977)%(70<<10))
						id := uint32(i)
						if seq == 7 {
							id++
						}
						frame.Fill(out, id, seq)
						bytes += int64(len(out))
						if err := w.WriteMsg(out); err != nil {
							return err
						}
					}
					if err := w.WriteMsg(nil); err != nil {
						return err
					}
					msg, err := r.ReadMsg(nil)
					if err != nil {
						return err
					}
					ack, err := peer.DecodeAck(msg)
					if want := (peer.Ack{Messages: n, Bytes: bytes, Errors: 1}); err == nil && ack != want {
						err = fmt.Errorf("ack %+v, want %+v", ack, want)
					}
					return err
				})
				for i, st := range done.Conns {
					if st.Messages != n || st.Errors != 1 || !strings.Contains(st.CheckError, "conn") || st.Error != "" {
						t.Errorf("conn %d: stats %+v, want %d messages, 1 error", i, st, n)
					}
				}
			})
		}
	}
}

// TestServerModelsTruncated checks that a model reports a frame cut short
// by the bench side as the connection's error.
func TestServerModelsTruncated(t *testing.T) {
	for _, model := range peer.Models() {
		t.Run(model, func(t *testing.T) {
			c, cs := serveModel(t, lookupReal(t, "unix"), 1, peer.RoleEcho, model)
			if _, err := cs[0].Write([]byte{0, 0, 1, 0, 'x'}); err != nil {
				t.Fatal(err)
			}
			cs[0].Close()
			done, err := c.Done(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(done.Error, "truncated") {
				t.Fatalf("done error %q, want a truncated frame", done.Error)
			}
		})
	}
}

// TestServerModelNotApplicable checks that models needing a descriptor
// refuse shared memory with ErrNotApplicable, and that a bad model or a
// framing the poll loop cannot follow is a plain error.
func TestServerModelNotApplicable(t *testing.T) {
	for _, model := range peer.Models()[1:] {
		t.Run(model, func(t *testing.T) {
			err := serveErr(t, lookupReal(t, "shm-ring"), peer.Job{Conns: 2, Role: peer.RoleEcho, Model: model})
			if !errors.Is(err, peer.ErrNotApplicable) {
				t.Fatalf("Serve over shm-ring: %v, want ErrNotApplicable", err)
			}
			if strings.Count(err.Error(), "not applicable") != 1 {
				t.Fatalf("error %q repeats itself", err)
			}
		})
	}
	for _, job := range []peer.Job{
		{Role: peer.RoleEcho, Model: "fork"},
		{Role: peer.RoleEcho, Model: peer.ModelPoll, Frame: peer.FrameSpec{Mode: "delimited"}},
	} {
		err := serveErr(t, lookupReal(t, "unix"), job)
		if err == nil || errors.Is(err, peer.ErrNotApplicable) {
			t.Errorf("Serve %+v: %v, want a failure", job, err)
		}
	}
	if err := peer.CheckModel("fork"); err == nil {
		t.Error("CheckModel(fork) = nil")
	}
}

// TestProcessModelChildrenDieWithPeer kills a peer serving with the process
// model: its connection children (one per connection) die with it
// (Pdeathsig), and none is left.
func TestProcessModelChildrenDieWithPeer(t *testing.T) {
	const conns = 3
	ctx := testCtx(t)
	ln, err := lookupReal(t, "unix").Listen(ctx, transports.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// Not startPeer: this peer is killed, so its Close reports that.
	p, err := proc.Start(ctx, proc.Spec{Attach: ln.Endpoint().AttachTo})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := peer.NewClient(p).Serve(ctx, peer.Job{Op: peer.OpServe, Endpoint: ln.Endpoint(), Conns: conns, Role: peer.RoleEcho, Model: peer.ModelProcess}); err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	for range conns {
		a, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		held = append(held, a)
	}
	// One echo per connection proves each child is serving.
	for i, a := range held {
		a.SetDeadline(time.Now().Add(10 * time.Second))
		w, r := frame.NewWriter(a, frame.Config{}), frame.NewReader(a, frame.Config{})
		out := make([]byte, 64)
		frame.Fill(out, uint32(i), 0)
		if err := w.WriteMsg(out); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadMsg(nil); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
	}
	pid := p.PID()
	kids := testpeer.Children(pid)
	if len(kids) != conns {
		t.Fatalf("peer %d has %d children %v, want %d (one per connection)", pid, len(kids), kids, conns)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, k := range kids {
		for {
			if s, _ := testpeer.State(k); s == 0 || s == 'Z' {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection child %d outlived its killed peer", k)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
