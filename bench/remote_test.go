package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	xunix "golang.org/x/sys/unix"
)

// probe runs ProbeRemote against a server of transport name at addr.
func probe(t *testing.T, name, addr string) error {
	t.Helper()
	return remoteRunner(t, name, addr, 0).ProbeRemote(context.Background(), &Header{})
}

// listenUnix listens on a unix socket at path and closes every connection
// it accepts at once, until the test ends.
func listenUnix(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// TestProbeRemoteRelativePaths: a relative -connect path, and the control
// path beside it, are refused as absolute ones are when they are a
// symbolic link or another user's socket; a tcp address is no path.
func TestProbeRemoteRelativePaths(t *testing.T) {
	dir := t.TempDir()
	sd := filepath.Join(dir, "sd")
	if err := os.Mkdir(sd, 0o700); err != nil {
		t.Fatal(err)
	}
	listenUnix(t, filepath.Join(sd, "s"))
	listenUnix(t, filepath.Join(dir, "rv")) // a rendezvous, as far as the check sees
	for _, l := range []string{"link.sock", "rv.control"} {
		if err := os.Symlink(filepath.Join("sd", "s"), filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	for _, tc := range []struct{ transport, addr, want string }{
		{"unix", "link.sock", "link.sock: the path is a symbolic link"},
		{"pipe", "rv", "rv.control: the path is a symbolic link"},
		{"shm-ring", "rv", "rv.control: the path is a symbolic link"},
	} {
		err := probe(t, tc.transport, tc.addr)
		if !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("-t %s -connect %s: %v; want ErrRemote saying %q", tc.transport, tc.addr, err, tc.want)
		}
	}
	if err := probe(t, "tcp-localhost", "127.0.0.1:1"); !errors.Is(err, ErrRemote) || strings.Contains(err.Error(), "nothing listens there") {
		t.Errorf("-t tcp-localhost -connect 127.0.0.1:1: %v; want ErrRemote from the dial, not a path check", err)
	}

	foreign := filepath.Join(dir, "foreign.sock")
	listenUnix(t, foreign)
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Skipf("cannot give the socket to uid 65534 (only root can): %v", err)
	}
	if err := probe(t, "unix", "foreign.sock"); !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), "belongs to user 65534") {
		t.Errorf("-t unix -connect foreign.sock: %v; want ErrRemote naming the socket's owner", err)
	}
}

// TestProbeRemoteControlSocketGiven: -connect with a pipe server's control
// socket, which a unix client reaches, tells to run with -t pipe and the
// server's own address, and that command works.
func TestProbeRemoteControlSocketGiven(t *testing.T) {
	transporttest.NoLeaks(t)
	ctx, cancel := context.WithCancel(context.Background())
	addr := filepath.Join(t.TempDir(), "rv", "p")
	ln, err := all.Listen(ctx, "pipe", addr)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := all.Lookup("pipe")
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := peer.ListenControl(ctx, tr, addr)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctlAddr := ctl.Endpoint().Address
	hdr := Header{Options: map[string]string{"transport": "pipe", "listen": addr, "control": ctlAddr}}
	done := make(chan error, 1)
	go func() {
		_, err := peer.Serve(ctx, ln, peer.ServeOptions{Control: ctl, Header: hdr})
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	want := "the server serves pipe, not unix, and this is its control socket (run with -t pipe -connect " + addr + ")"
	if err := probe(t, "unix", ctlAddr); !errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), want) {
		t.Errorf("-t unix -connect %s: %v; want ErrRemote saying %q", ctlAddr, err, want)
	}
	if err := probe(t, "pipe", addr); err != nil {
		t.Errorf("-t pipe -connect %s, as the hint says: %v", addr, err)
	}
}

// remoteRunner returns a runner of pingpong over transport name against
// a server at addr, two repeats of testOptions' two sizes (four case
// runs), with caseTimeout (0: the default).
func remoteRunner(t *testing.T, name, addr string, caseTimeout time.Duration) *Runner {
	t.Helper()
	tr, err := all.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Transports = []TransportSpec{{Transport: tr}}
	o.Workloads = []string{"pingpong"}
	o.Repeats = 2
	o.CaseTimeout = caseTimeout
	o.Remote = &Remote{Address: addr}
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunStopsWhenServerSilent: a run against a server that takes
// connections but never answers them (a stopped server's listener: the
// kernel queues the connect, nobody reads) records the case that waited
// out its timeout and runs no other, every one of which would wait alike;
// the error says the server does not answer.
func TestRunStopsWhenServerSilent(t *testing.T) {
	transporttest.NoLeaks(t)
	addr := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", addr) // never accepted from
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs, err := remoteRunner(t, "unix", addr, time.Second).Run(context.Background(), Header{}, io.Discard)
	if !errors.Is(err, ErrCasesFailed) || !strings.Contains(err.Error(), "the server at "+addr+" does not answer") || !strings.Contains(err.Error(), "the 3 case runs left were not run") {
		t.Fatalf("Run against a silent server: %v; want ErrCasesFailed saying the server does not answer and 3 case runs were not run", err)
	}
	if len(recs.Results) != 1 || recs.Results[0].Status != StatusFailed {
		t.Fatalf("results %+v; want the one failed case that found the server silent", recs.Results)
	}
}

// TestRunStopsWhenServerGone: a run against a server that nobody answers
// for any more (stopped or killed: its socket is stale) records the case
// that found out and runs no other, every one of which would fail alike.
func TestRunStopsWhenServerGone(t *testing.T) {
	transporttest.NoLeaks(t)
	for _, name := range []string{"unix", "pipe"} {
		t.Run(name, func(t *testing.T) {
			addr := filepath.Join(t.TempDir(), "s")
			fd, err := xunix.Socket(xunix.AF_UNIX, xunix.SOCK_STREAM|xunix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := xunix.Bind(fd, &xunix.SockaddrUnix{Name: addr}); err != nil {
				t.Fatal(err)
			}
			xunix.Close(fd) // a socket file nobody listens on: a killed server's
			recs, err := remoteRunner(t, name, addr, 0).Run(context.Background(), Header{}, io.Discard)
			if !errors.Is(err, ErrCasesFailed) || !strings.Contains(err.Error(), "gone") || !strings.Contains(err.Error(), "the 3 case runs left were not run") {
				t.Fatalf("Run against a stale socket: %v; want ErrCasesFailed saying the server is gone and 3 case runs were not run", err)
			}
			if len(recs.Results) != 1 || recs.Results[0].Status != StatusFailed {
				t.Fatalf("results %+v; want the one failed case that found the server gone", recs.Results)
			}
		})
	}
}

// TestMarkGone: which connect errors stop a run against a remote server.
// Nobody listening is gone; no route, a timeout, an unanswered hello and
// a connect the case's time ran out on (in count mode a cancel with that
// cause) are silent; a momentary refusal (EAGAIN, a full backlog, which
// net.Error's Timeout calls a timeout) and an interrupt are neither.
func TestMarkGone(t *testing.T) {
	live := context.Background()
	interrupted, cancel := context.WithCancel(live)
	cancel()
	outOfTime, cancelCause := context.WithCancelCause(live)
	cancelCause(context.DeadlineExceeded) // count mode's case timeout
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want error // errServerGone, errServerSilent, or nil
	}{
		{"no such socket", live, fs.ErrNotExist, errServerGone},
		{"refused", live, opErr(syscall.ECONNREFUSED), errServerGone},
		{"backlog full", live, opErr(syscall.EAGAIN), nil},
		{"no route", live, opErr(syscall.EHOSTUNREACH), errServerSilent},
		{"no network", live, opErr(syscall.ENETUNREACH), errServerSilent},
		{"timed out", live, opErr(syscall.ETIMEDOUT), errServerSilent},
		{"deadline", live, os.ErrDeadlineExceeded, errServerSilent},
		{"hello unanswered", live, fmt.Errorf("%w: %w within 5s", peer.ErrNotServe, peer.ErrHelloUnanswered), errServerSilent},
		{"count mode's time ran out", outOfTime, context.Canceled, errServerSilent},
		{"interrupted", interrupted, context.Canceled, nil},
		{"interrupted, not refused", interrupted, opErr(syscall.ETIMEDOUT), nil},
		{"something else", live, errors.New("bad answer"), nil},
	} {
		got := markGone(c.ctx, c.err)
		for _, mark := range []error{errServerGone, errServerSilent} {
			if errors.Is(got, mark) != (mark == c.want) {
				t.Errorf("%s: markGone(%v) = %v: errors.Is %v is %v", c.name, c.err, got, mark, errors.Is(got, mark))
			}
		}
		if !errors.Is(got, c.err) {
			t.Errorf("%s: markGone(%v) = %v, which does not wrap the error", c.name, c.err, got)
		}
	}
}

// TestFailReasonNamesTransportOnce: a case's reason names its transport
// once, though the transport's own error starts with its name too.
func TestFailReasonNamesTransportOnce(t *testing.T) {
	cr := &caseRun{name: "unix[io=raw]", res: Result{Transport: "unix"}, opts: &Options{CaseTimeout: time.Second}}
	err := errors.New("unix: dial unix /run/s: connect: resource temporarily unavailable")
	if got, want := cr.fail(err, false).Reason, "unix[io=raw]: dial unix /run/s: connect: resource temporarily unavailable"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if got, want := cr.fail(err, true).Reason, "unix[io=raw]: timeout: case did not finish within 1s (peer stuck or too slow): dial unix /run/s"; !strings.HasPrefix(got, want) {
		t.Errorf("reason %q, want it to start %q", got, want)
	}
}
