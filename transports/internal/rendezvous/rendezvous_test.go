package rendezvous_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// envFetch makes the test binary a helper that fetches from the rendezvous
// in the variable's value and prints the outcome (see TestMain).
const envFetch = "IPCBENCH_RENDEZVOUS_TEST_FETCH"

func TestMain(m *testing.M) {
	if path := os.Getenv(envFetch); path != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ep, err := rendezvous.Fetch(ctx, transports.Endpoint{Transport: "test", Address: path})
		rendezvous.CloseFiles(ep.Files)
		fmt.Println("fetch:", err)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// testServer listens at a fresh path and offers channels that are one pipe
// each: the dialer gets the write end, Await reads one byte from the read
// end and returns a connection that only closes it.
func testServer(t *testing.T) (*rendezvous.Server, *atomic.Int32) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rv", "s")
	var made atomic.Int32
	s, err := rendezvous.Listen(path, 0, func(i int) (*rendezvous.Offer, error) {
		made.Add(1)
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		return &rendezvous.Offer{
			Endpoint: transports.Endpoint{Transport: "test", Files: []*os.File{w}},
			Await: func() (net.Conn, error) {
				_, err := r.Read(make([]byte, 1))
				if err != nil {
					r.Close()
					return nil, err
				}
				c1, c2 := net.Pipe()
				c2.Close()
				r.Close()
				return c1, nil
			},
			Abort: func() { r.SetReadDeadline(time.Unix(1, 0)) },
		}, nil
	})
	if err != nil {
		t.Fatalf("rendezvous.Listen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &made
}

// TestServe fetches channels, attaches to some (writes the byte), drops
// others, and checks that only attached ones come out of Conns.
func TestServe(t *testing.T) {
	s, made := testServer(t)
	ctx := t.Context()
	for i := range 10 {
		ep, err := rendezvous.Fetch(ctx, transports.Endpoint{Transport: "test", Address: s.Path()})
		if err != nil {
			t.Fatalf("rendezvous.Fetch %d: %v", i, err)
		}
		if len(ep.Files) != 1 || ep.NumFiles != 1 || ep.Address != s.Path() {
			t.Fatalf("rendezvous.Fetch %d: %+v", i, ep)
		}
		if i%2 == 1 {
			rendezvous.CloseFiles(ep.Files) // a dialer that gives up before attaching
			continue
		}
		ep.Files[0].Write([]byte{1})
		rendezvous.CloseFiles(ep.Files)
		select {
		case c := <-s.Conns():
			c.Close()
		case <-time.After(10 * time.Second):
			t.Fatalf("dial %d: no connection", i)
		}
	}
	if made.Load() != 10 {
		t.Fatalf("%d channels made, want 10", made.Load())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Lstat(s.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket after Close: %v", err)
	}
	if _, err := os.Lstat(filepath.Dir(s.Path())); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("directory rendezvous.Listen made, after Close: %v", err)
	}
}

// TestClosePending closes the server while a fetched channel is neither
// attached nor dropped: Close must not wait for the dialer.
func TestClosePending(t *testing.T) {
	s, _ := testServer(t)
	ep, err := rendezvous.Fetch(t.Context(), transports.Endpoint{Transport: "test", Address: s.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer rendezvous.CloseFiles(ep.Files)
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a dialer that never attaches")
	}
}

// TestAttachTimeout fetches a channel and never attaches: once the attach
// timeout passed, the listener has dropped the channel (its read end is
// closed, so the dialer's write end meets EPIPE), and a late attach gives
// Conns nothing.
func TestAttachTimeout(t *testing.T) {
	s, _ := testServer(t)
	s.SetAttachTimeout(50 * time.Millisecond)
	ep, err := rendezvous.Fetch(t.Context(), transports.Endpoint{Transport: "test", Address: s.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer rendezvous.CloseFiles(ep.Files)
	// poll, not write: a written byte would be the attach.
	for deadline := time.Now().Add(5 * time.Second); ; {
		fds := []unix.PollFd{{Fd: int32(ep.Files[0].Fd()), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, 20); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		if fds[0].Revents&unix.POLLERR != 0 {
			break // the read end is gone
		}
		if time.Now().After(deadline) {
			t.Fatal("the channel is still open 5s after an attach timeout of 50ms")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ep.Files[0].Write([]byte{1}); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("attaching late: %v, want EPIPE", err)
	}
	select {
	case c := <-s.Conns():
		c.Close()
		t.Fatal("a channel that did not attach in time came out of Conns")
	case <-time.After(100 * time.Millisecond):
	}
}

// TestFetchErrors dials addresses that are not a live rendezvous.
func TestFetchErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	s, _ := testServer(t)
	if err := os.Symlink(s.Path(), link); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "stale")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	// A listener that hangs up on every dialer without a word, as one
	// does when it refuses a dialer or is closing.
	mute := filepath.Join(dir, "mute")
	ml, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: mute, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Close()
	go func() {
		for {
			c, err := ml.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// A unix stream listener, where a rendezvous is a seqpacket socket.
	streamPath := filepath.Join(dir, "stream")
	sl, err := net.Listen("unix", streamPath)
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	tests := []struct {
		name  string
		ep    transports.Endpoint
		want  error
		words string
	}{
		{"stream listener", transports.Endpoint{Transport: "test", Address: streamPath}, transports.ErrBadEndpoint, "another kind"},
		{"stream listener's errno", transports.Endpoint{Transport: "test", Address: streamPath}, syscall.EPROTOTYPE, "protocol wrong type"},
		{"missing", transports.Endpoint{Transport: "test", Address: filepath.Join(dir, "missing")}, fs.ErrNotExist, "no listener"},
		{"not a socket", transports.Endpoint{Transport: "test", Address: file}, transports.ErrBadEndpoint, "not a socket"},
		{"symlink", transports.Endpoint{Transport: "test", Address: link}, transports.ErrBadEndpoint, "not a socket"},
		{"stale", transports.Endpoint{Transport: "test", Address: stale}, transports.ErrPeerGone, "nobody listens"},
		{"hung up", transports.Endpoint{Transport: "test", Address: mute}, transports.ErrPeerGone, "without a channel"},
		{"other transport", transports.Endpoint{Transport: "other", Address: s.Path()}, transports.ErrBadEndpoint, "listener is test"},
		{"too long", transports.Endpoint{Transport: "test", Address: "/" + strings.Repeat("x", rendezvous.MaxPath)}, transports.ErrBadEndpoint, "sun_path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, err := rendezvous.Fetch(t.Context(), tt.ep)
			rendezvous.CloseFiles(ep.Files)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.words) {
				t.Fatalf("rendezvous.Fetch: %v; want %v mentioning %q", err, tt.want, tt.words)
			}
		})
	}
}

// TestFetchListenerDiesBeforeAccept: a listener whose socket closes (its
// process dies) while a dialer's connection still waits to be accepted
// resets that connection; the dial fails with an error wrapping
// ErrPeerGone, as for a listener that accepted and closed.
func TestFetchListenerDiesBeforeAccept(t *testing.T) {
	const testTimeout = 10 * time.Second
	path := filepath.Join(t.TempDir(), "s")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	closeFD := func() {
		if !closed {
			closed = true
			unix.Close(fd)
		}
	}
	defer closeFD()
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		ep, err := rendezvous.Fetch(t.Context(), transports.Endpoint{Transport: "test", Address: path})
		rendezvous.CloseFiles(ep.Files)
		errc <- err
	}()
	// A connection waiting to be accepted makes the listening socket
	// readable: the dialer is connected and waits for its channel.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, int(testTimeout.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("no connection waits at the listener after %v (poll: %v)", testTimeout, err)
		}
		break
	}
	closeFD()
	select {
	case err = <-errc:
	case <-time.After(testTimeout):
		t.Fatalf("Fetch still waits %v after its listener's socket closed", testTimeout)
	}
	if !errors.Is(err, transports.ErrPeerGone) || !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, transports.ErrBadEndpoint) {
		t.Fatalf("Fetch from a listener that died before accepting: %v; want ErrPeerGone and ECONNRESET, not ErrBadEndpoint", err)
	}
	if strings.Count(err.Error(), path) != 1 {
		t.Errorf("%q: want the path named once", err)
	}
}

// TestFetchContextEnded: a dial whose context has ended fails with the
// context's error, not a sentinel that blames the address.
func TestFetchContextEnded(t *testing.T) {
	s, _ := testServer(t)
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, cancel2 := context.WithDeadline(t.Context(), time.Unix(1, 0))
	defer cancel2()
	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"canceled", canceled, context.Canceled}, {"past its deadline", expired, context.DeadlineExceeded}} {
		t.Run(c.name, func(t *testing.T) {
			ep, err := rendezvous.Fetch(c.ctx, transports.Endpoint{Transport: "test", Address: s.Path()})
			rendezvous.CloseFiles(ep.Files)
			if !errors.Is(err, c.want) || errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrPeerGone) {
				t.Fatalf("rendezvous.Fetch with a context %s: %v; want %v, neither ErrBadEndpoint nor ErrPeerGone", c.name, err, c.want)
			}
			if n := strings.Count(err.Error(), s.Path()); n != 1 {
				t.Errorf("%q names the path %d times, want once", err, n)
			}
		})
	}
}

// silentListener listens on a SOCK_SEQPACKET socket at a fresh path and
// accepts every connection but never answers, as a stopped or hung
// rendezvous listener does (the kernel accepts for a stopped one). It
// returns the path and a function that closes the listener and every
// connection it accepted; the test's end calls it too.
func silentListener(t *testing.T) (path string, stop func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	stop = func() {
		ln.Close()
		<-done
	}
	t.Cleanup(stop)
	return path, stop
}

// TestFetchDeadlineAlways dials a listener that never answers, many times,
// with a short context deadline: every dial must fail with an error
// wrapping context.DeadlineExceeded, though the socket's read deadline,
// set to the context's, often fires before the context's own timer.
func TestFetchDeadlineAlways(t *testing.T) {
	path, _ := silentListener(t)
	const dials = 200
	bad := 0
	for i := range dials {
		ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		ep, err := rendezvous.Fetch(ctx, transports.Endpoint{Transport: "test", Address: path})
		cancel()
		rendezvous.CloseFiles(ep.Files)
		if !errors.Is(err, context.DeadlineExceeded) {
			if bad++; bad <= 3 {
				t.Errorf("dial %d: %v; want context.DeadlineExceeded", i, err)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d dials past their context's deadline did not wrap context.DeadlineExceeded", bad, dials)
	}
}

// TestFetchSilentListenerBounded dials a listener that accepts but never
// hands over a channel, with a context without a deadline and with one
// later than the bound: the dial must give up once the bound
// (AttachTimeout, shortened here) has passed, with an error wrapping
// os.ErrDeadlineExceeded, not the context's, that says why.
func TestFetchSilentListenerBounded(t *testing.T) {
	const bound = 100 * time.Millisecond
	rendezvous.SetFetchTimeout(t, bound)
	later, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"no deadline", context.Background()}, {"a later deadline", later}} {
		t.Run(c.name, func(t *testing.T) {
			path, stop := silentListener(t)
			start := time.Now()
			errc := make(chan error, 1)
			go func() {
				ep, err := rendezvous.Fetch(c.ctx, transports.Endpoint{Transport: "test", Address: path})
				rendezvous.CloseFiles(ep.Files)
				errc <- err
			}()
			var err error
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				stop() // the dialer then reads the end
				<-errc
				t.Fatalf("Fetch from a listener that never answers still waits after 10s (the bound is %v)", bound)
			}
			if took := time.Since(start); took < bound {
				t.Errorf("Fetch gave up after %v, before the bound of %v", took, bound)
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, transports.ErrPeerGone) || errors.Is(err, transports.ErrBadEndpoint) {
				t.Fatalf("Fetch: %v; want os.ErrDeadlineExceeded alone", err)
			}
			if !strings.Contains(err.Error(), "handed over no channel within "+bound.String()) || strings.Count(err.Error(), path) != 1 {
				t.Errorf("%q: want it to say the listener handed over no channel within %v, and name the path once", err, bound)
			}
		})
	}
}

// TestListenStale replaces a socket a dead listener left, and refuses a
// live listener's.
func TestListenStale(t *testing.T) {
	s, _ := testServer(t)
	if _, err := rendezvous.Listen(s.Path(), 0, nil); !errors.Is(err, syscall.EADDRINUSE) || !errors.Is(err, transports.ErrBadEndpoint) || errors.Is(err, transports.ErrUnavailable) {
		t.Fatalf("rendezvous.Listen on a live rendezvous: %v; want EADDRINUSE and ErrBadEndpoint, not ErrUnavailable", err)
	}
	// Simulate a killed listener: the socket file stays, nobody listens.
	path := s.Path()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	s.Close()
	s2, err := rendezvous.Listen(path, 0, func(int) (*rendezvous.Offer, error) { return nil, errors.New("no channels today") })
	if err != nil {
		t.Fatalf("rendezvous.Listen over a stale socket: %v", err)
	}
	defer s2.Close()
	_, err = rendezvous.Fetch(t.Context(), transports.Endpoint{Transport: "test", Address: path})
	if err == nil || !strings.Contains(err.Error(), "no channels today") {
		t.Fatalf("rendezvous.Fetch from a listener that cannot make a channel: %v; want its reason", err)
	}
}

// TestForeignDialerRefused fetches as another user (uid 65534) from a
// rendezvous opened up to everyone by mistake: the listener's SO_PEERCRED
// check must refuse it without making a channel. It needs root.
func TestForeignDialerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	exe := transporttest.WorldExecutable(t)
	top := filepath.Dir(exe) // reachable by the other user
	var made atomic.Int32
	path := filepath.Join(top, "rv", "s")
	s, err := rendezvous.Listen(path, 0, func(int) (*rendezvous.Offer, error) {
		made.Add(1)
		return nil, errors.New("unexpected")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range []string{filepath.Dir(path), path} {
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// The socket is root's: the helper's own owner check would stop it
	// first, so hand the file to the helper's user to reach the listener.
	if err := os.Lchown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envFetch+"="+path)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "listener: connection from another user refused") {
		t.Fatalf("helper as uid 65534: %s; want its check of the listener's uid to refuse", out)
	}
	// Our own dial comes after the helper's in the accept queue: once it
	// got its answer, the listener has judged the helper's.
	if err := os.Lchown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := rendezvous.Fetch(t.Context(), transports.Endpoint{Transport: "test", Address: path}); err == nil || !strings.Contains(err.Error(), "unexpected") {
		t.Fatalf("rendezvous.Fetch as the listener's user: %v; want the listener's answer", err)
	}
	if n := made.Load(); n != 1 {
		t.Fatalf("the listener made %d channels, want 1 (ours, none for uid 65534)", n)
	}
}

// TestListenOverOtherKindOfSocket: a live socket of another type at the
// path (a stream listener where a rendezvous is a seqpacket one, or a
// datagram socket) is refused as taken, saying what is there.
func TestListenOverOtherKindOfSocket(t *testing.T) {
	for _, c := range []struct{ network, want string }{
		{"unix", "a live listener is bound there"},
		{"unixgram", "a live datagram socket"},
	} {
		t.Run(c.network, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rv", "s")
			if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			var closer io.Closer
			var err error
			if c.network == "unixgram" {
				closer, err = net.ListenUnixgram(c.network, &net.UnixAddr{Name: path, Net: c.network})
			} else {
				closer, err = net.Listen(c.network, path)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			_, err = rendezvous.Listen(path, 0, nil)
			if !errors.Is(err, syscall.EADDRINUSE) || !errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("rendezvous.Listen over a %s socket: %v; want EADDRINUSE and ErrBadEndpoint, saying %q", c.network, err, c.want)
			}
		})
	}
}

// TestPrepareLeavesLiveListenerAlone: checking whether a socket at the
// path is live must not connect to it. A live stream listener's first
// accepted connection is the one a client made after the refused Prepare,
// not a phantom from the check that closes at once.
func TestPrepareLeavesLiveListenerAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rv", "s")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range 3 {
		if _, err := rendezvous.Prepare(path); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Prepare over a live listener: %v; want EADDRINUSE", err)
		}
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("client")); err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard, not a timing
	buf := make([]byte, 6)
	if n, err := io.ReadFull(a, buf); err != nil || string(buf) != "client" {
		t.Fatalf("the listener's first connection read %q, %v; want the client's \"client\" (the check connected to it)", buf[:n], err)
	}
}

// TestPrepareRefusesHostPort: a host:port given where a socket path
// belongs (serve -t unix -listen 127.0.0.1:5000) is refused whatever the
// directory's mode, saying that it looks like a host:port; a name with a
// colon that is no host:port, or one with a slash, is a path.
func TestPrepareRefusesHostPort(t *testing.T) {
	dir := t.TempDir() // 0700: a relative path in it would be taken
	t.Chdir(dir)
	for _, c := range []struct {
		path    string
		refused bool
	}{{"127.0.0.1:5000", true}, {"localhost:80", true}, {"[::1]:7000", true}, {":5000", true}, {"s:x", false}, {"sock", false}, {"./127.0.0.1:5000", false}} {
		p, err := rendezvous.Prepare(c.path)
		if err == nil {
			p.Release()
		}
		if got := err != nil && strings.Contains(err.Error(), "looks like a host:port"); got != c.refused {
			t.Errorf("Prepare(%q): %v; refused as a host:port %v, want %v", c.path, err, got, c.refused)
		}
		if c.refused && !errors.Is(err, transports.ErrBadEndpoint) {
			t.Errorf("Prepare(%q): %v; want ErrBadEndpoint", c.path, err)
		}
	}
}

// TestPrepareNamesDirectoryModeWithSpecialBits: a directory open to
// others is refused with its mode as ls and chmod spell it, the special
// bits included: 1777 for a sticky /tmp-like directory, not 0777.
func TestPrepareNamesDirectoryModeWithSpecialBits(t *testing.T) {
	for _, c := range []struct {
		mode fs.FileMode
		want string
	}{
		{0o777 | fs.ModeSticky, "has mode 1777,"},
		{0o755, "has mode 0755,"},
		{0o770 | fs.ModeSetgid, "has mode 2770,"},
	} {
		dir := filepath.Join(t.TempDir(), "d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, c.mode); err != nil {
			t.Fatal(err)
		}
		p, err := rendezvous.Prepare(filepath.Join(dir, "s"))
		if err == nil {
			p.Release()
			t.Fatalf("Prepare in a directory of mode %v: no error", c.mode)
		}
		if !strings.Contains(err.Error(), c.want) || !errors.Is(err, transports.ErrBadEndpoint) {
			t.Errorf("Prepare in a directory of mode %v: %v; want ErrBadEndpoint saying %q", c.mode, err, c.want)
		}
	}
}
