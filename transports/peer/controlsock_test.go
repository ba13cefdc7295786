package peer_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	xunix "golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rawio"
	"github.com/ipcbench/ipcbench/transports/peer"
	"github.com/ipcbench/ipcbench/transports/pipe"
	"github.com/ipcbench/ipcbench/transports/shmring"
	"github.com/ipcbench/ipcbench/transports/tcplocal"
	"github.com/ipcbench/ipcbench/transports/unix"
)

// TestControlAddress: a rendezvous transport's control connections go to
// a socket next to the rendezvous; a socket transport's stay on it.
func TestControlAddress(t *testing.T) {
	for _, tc := range []struct {
		tr   transports.Transport
		addr string
		want string
	}{
		{pipe.New(), "/tmp/d/s", "/tmp/d/s" + peer.ControlSuffix},
		{shmring.New(), "/tmp/d/s", "/tmp/d/s" + peer.ControlSuffix},
		{pipe.New(), "", ""},
		{unix.New(), "/tmp/d/s", ""},
		{tcplocal.New(), "127.0.0.1:5000", ""},
	} {
		if got := peer.ControlAddress(tc.tr, tc.addr); got != tc.want {
			t.Errorf("ControlAddress(%s, %q) = %q, want %q", tc.tr.Name(), tc.addr, got, tc.want)
		}
	}
	ln, err := peer.ListenControl(testCtx(t), unix.New(), filepath.Join(t.TempDir(), "s"))
	if ln != nil || err != nil {
		t.Fatalf("ListenControl(unix) = %v, %v; want nothing", ln, err)
	}
}

// TestServeControlSocket: over pipe and shm-ring, a session's control
// connection goes to the control socket and its data connection through
// the rendezvous; each listener refuses the other's connections with the
// reason; both socket files and their directory are gone once Serve
// stopped.
func TestServeControlSocket(t *testing.T) {
	for _, tr := range []transports.Transport{pipe.New(), shmring.New()} {
		t.Run(tr.Name(), func(t *testing.T) {
			ctx := testCtx(t)
			dir := filepath.Join(t.TempDir(), "rv")
			path := filepath.Join(dir, "s")
			ln, err := tr.Listen(ctx, transports.Config{Address: path})
			if err != nil {
				t.Fatal(err)
			}
			cl, err := peer.ListenControl(ctx, tr, path)
			if err != nil {
				ln.Close()
				t.Fatal(err)
			}
			ctlPath := path + peer.ControlSuffix
			if got := cl.Endpoint().Address; got != ctlPath {
				t.Errorf("control socket at %q, want %q", got, ctlPath)
			}
			if fi, err := os.Lstat(ctlPath); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Errorf("control socket %s: %v, %v; want a socket, mode 0600", ctlPath, fi, err)
			}
			sctx, cancel := context.WithCancel(ctx)
			done := make(chan peer.Summary, 1)
			go func() {
				sum, err := peer.Serve(sctx, ln, peer.ServeOptions{Control: cl})
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
				done <- sum
			}()
			ep := ln.Endpoint()

			c, err := peer.DialControl(ctx, tr, ep)
			if err != nil {
				t.Fatal(err)
			}
			if c.LocalAddr().Network() != "unix" {
				t.Errorf("control connection over %s, want a unix socket", c.LocalAddr().Network())
			}
			ctl, err := peer.OpenControl(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			client := peer.NewLinkClient(ctl)
			if err := client.Serve(ctx, peer.Job{Role: peer.RoleEcho, Conns: 1}); err != nil {
				t.Fatal(err)
			}
			dc, err := tr.Dial(ctx, ep)
			if err != nil {
				t.Fatal(err)
			}
			if err := ctl.JoinData(ctx, dc, 0); err != nil {
				t.Fatal(err)
			}
			msg := make([]byte, 64)
			frame.Fill(msg, 0, 0)
			var fc frame.Config
			if err := frame.NewWriter(dc, fc).WriteMsg(msg); err != nil {
				t.Fatal(err)
			}
			got, err := frame.NewReader(dc, fc).ReadMsg(make([]byte, 64))
			if err != nil || frame.Check(got, 0, 0) != nil {
				t.Fatalf("echo over %s: %v", tr.Name(), err)
			}
			dc.Close()
			if r, err := client.Done(ctx); err != nil || r.Error != "" {
				t.Fatalf("done: %+v, %v", r, err)
			}

			// The session is idle now, the server reading its control
			// connection: a background read, never counted as a wait that
			// would keep the data connections' reads from yielding.
			time.Sleep(50 * time.Millisecond)
			if n := rawio.ParkedReads(); n != 0 {
				t.Errorf("an idle session's control connection counts as %d parked read(s), want 0", n)
			}

			// A control hello over the transport: refused, naming the socket.
			tc, err := tr.Dial(ctx, ep)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := peer.Handshake(ctx, tc, peer.Hello{Kind: peer.KindControl}); !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), ctlPath) {
				t.Errorf("control hello over %s: %v; want a refusal naming %s", tr.Name(), err, ctlPath)
			}
			tc.Close()
			// A data hello on the control socket: refused.
			uc, err := net.Dial("unix", ctlPath)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := peer.Handshake(ctx, uc, peer.Hello{Kind: peer.KindData, Session: ctl.Session(), Conn: 0}); !errors.Is(err, peer.ErrRefused) || !strings.Contains(err.Error(), "not the control socket") {
				t.Errorf("data hello on the control socket: %v", err)
			}
			uc.Close()
			// Echo bytes on the control socket: one error line, then closed.
			ec, err := net.Dial("unix", ctlPath)
			if err != nil {
				t.Fatal(err)
			}
			ec.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(ec, "\x00\x00\x00\x02hi")
			line, _ := bufio.NewReader(ec).ReadString('\n')
			if !strings.HasPrefix(line, peer.ErrorPrefix) || !strings.Contains(line, "control socket") {
				t.Errorf("echo client on the control socket got %q", line)
			}
			ec.Close()
			_ = client.Exit()
			ctl.Close()

			cancel()
			sum := <-done
			if sum.Sessions != 1 || sum.EchoClients != 0 || sum.Errors != 3 {
				t.Errorf("summary %+v, want 1 session, no echo client and 3 refusals", sum)
			}
			for _, p := range []string{ctlPath, path, dir} {
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind after Serve (%v)", p, err)
				}
			}
		})
	}
}

// TestListenControlRefuses: a symbolic link or another user's socket at
// the control path is refused; a stale socket a killed server left there
// is replaced.
func TestListenControlRefuses(t *testing.T) {
	ctx := testCtx(t)
	tr := pipe.New()
	dir := filepath.Join(t.TempDir(), "rv")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s")
	ctlPath := path + peer.ControlSuffix

	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, ctlPath); err != nil {
		t.Fatal(err)
	}
	if ln, err := peer.ListenControl(ctx, tr, path); err == nil || !errors.Is(err, transports.ErrBadEndpoint) {
		if ln != nil {
			ln.Close()
		}
		t.Errorf("symlinked control path: %v; want refused", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the symlink's target was made (%v)", err)
	}
	os.Remove(ctlPath)

	foreign, err := net.Listen("unix", ctlPath)
	if err != nil {
		t.Fatal(err)
	}
	foreign.(*net.UnixListener).SetUnlinkOnClose(false)
	foreign.Close() // stale: nobody listens
	if err := os.Chown(ctlPath, 65534, 65534); err != nil {
		t.Skipf("cannot give the socket to uid 65534: %v", err)
	}
	if ln, err := peer.ListenControl(ctx, tr, path); err == nil {
		ln.Close()
		t.Errorf("another user's socket at the control path: listened; want refused")
	}
	if err := os.Chown(ctlPath, os.Geteuid(), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	ln, err := peer.ListenControl(ctx, tr, path)
	if err != nil {
		t.Fatalf("stale control socket not replaced: %v", err)
	}
	ln.Close()
	if _, err := os.Lstat(ctlPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left after Close (%v)", err)
	}
}

// TestDialControlStaleSocket: a control socket its server left behind
// when it was killed (nobody listens there) is called stale, not a sign
// of an older server.
func TestDialControlStaleSocket(t *testing.T) {
	ctx := testCtx(t)
	tr := pipe.New()
	ln, err := tr.Listen(ctx, transports.Config{Address: filepath.Join(t.TempDir(), "rv", "s")})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := peer.ControlAddress(tr, ln.Endpoint().Address)
	fd, err := xunix.Socket(xunix.AF_UNIX, xunix.SOCK_STREAM|xunix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := xunix.Bind(fd, &xunix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	xunix.Close(fd) // bound, never listening, closed: what a killed server leaves
	c, err := peer.DialControl(ctx, tr, ln.Endpoint())
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, peer.ErrNoControlSocket) || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "stale") || strings.Contains(err.Error(), "older") {
		t.Fatalf("DialControl with a stale control socket: %v; want ErrNoControlSocket and ECONNREFUSED, saying stale, not older", err)
	}
}

// TestDialControlOlderServer: against a rendezvous with no control socket
// next to it (a server of an older ipcbench), DialControl says so.
func TestDialControlOlderServer(t *testing.T) {
	ctx := testCtx(t)
	tr := pipe.New()
	ln, err := tr.Listen(ctx, transports.Config{Address: filepath.Join(t.TempDir(), "rv", "s")})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := peer.DialControl(ctx, tr, ln.Endpoint())
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, peer.ErrNoControlSocket) || !strings.Contains(err.Error(), "same version") {
		t.Fatalf("DialControl without a control socket: %v", err)
	}
}
