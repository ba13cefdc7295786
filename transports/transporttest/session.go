package transporttest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// session is a listener, a peer process serving a role on its connections,
// and the bench ends of those connections.
type session struct {
	t      *testing.T
	ctx    context.Context
	ln     transports.Listener
	peer   *proc.Peer
	client *peer.Client
	conns  []net.Conn
	// killed is set by tests that kill the peer: its exit status is then
	// not checked.
	killed bool
}

// startSession listens on tr with cfg, starts a peer serving role on
// cfg.ConnCount() connections and accepts them. Everything is closed at
// the end of the test; the peer must then exit with status 0 unless the
// test set killed. Connections get a deadline of limit from now, so a
// broken transport fails the test instead of hanging it.
func startSession(t *testing.T, tr transports.Transport, cfg transports.Config, role string, limit time.Duration) *session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	s := &session{t: t, ctx: ctx}
	ln, err := tr.Listen(ctx, cfg)
	if err != nil {
		if errors.Is(err, transports.ErrUnavailable) {
			t.Skipf("transport unavailable here: %v", err)
		}
		t.Fatalf("Listen: %v", err)
	}
	s.ln = ln
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Errorf("closing the listener: %v", err)
		}
	})
	ep := ln.Endpoint()
	p, err := proc.Start(ctx, proc.Spec{Attach: ep.AttachTo})
	if err != nil {
		t.Fatalf("starting the peer: %v", err)
	}
	s.peer = p
	t.Cleanup(func() {
		err := p.Close()
		if err != nil && !s.killed {
			t.Errorf("peer did not end cleanly: %v", err)
		}
	})
	s.client = peer.NewClient(p)
	n := cfg.ConnCount()
	if err := s.client.Serve(ctx, peer.Job{Endpoint: ep, Conns: n, Role: role, Frame: peer.FrameSpecOf(frame.Config{})}); err != nil {
		t.Fatalf("peer could not dial: %v", err)
	}
	s.conns = acceptN(t, ctx, ln, n)
	deadline := time.Now().Add(limit)
	for _, c := range s.conns {
		if err := c.SetDeadline(deadline); err != nil {
			t.Fatalf("SetDeadline: %v", err)
		}
	}
	return s
}

// acceptN accepts n connections, closing them at the end of the test. It
// fails the test when ctx ends first.
func acceptN(t *testing.T, ctx context.Context, ln net.Listener, n int) []net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, n)
	go func() {
		defer close(ch)
		for range n {
			c, err := ln.Accept()
			ch <- result{c, err}
			if err != nil {
				return
			}
		}
	}()
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for len(conns) < n {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("Accept %d of %d: %v", len(conns)+1, n, r.err)
			}
			conns = append(conns, r.c)
		case <-ctx.Done():
			ln.Close() // ends the accepting goroutine
			for r := range ch {
				if r.c != nil {
					conns = append(conns, r.c)
				}
				if r.err != nil {
					break
				}
			}
			t.Fatalf("Accept: %d of %d connections after %v", len(conns), n, ctx.Err())
		}
	}
	return conns
}

// done waits for the peer's done reply and checks that every connection
// ended without an error.
func (s *session) done() peer.Reply {
	s.t.Helper()
	r, err := s.client.Done(s.ctx)
	if err != nil {
		s.t.Fatalf("waiting for the peer to finish: %v (peer log: %s)", err, s.peer.Logs())
	}
	if r.Error != "" {
		s.t.Fatalf("peer: %s", r.Error)
	}
	return r
}
