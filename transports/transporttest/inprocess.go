// In-process helpers of the suite: connected pairs, a nettest.MakePipe,
// the behaviour cases (Run with RunOptions.Behaviour) and the io=raw check.

package transporttest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

// stepTimeout bounds every blocking step of an in-process check so a broken
// transport fails the test instead of hanging it.
const stepTimeout = 10 * time.Second

// pair listens with cfg, dials the endpoint (channel 0) from a goroutine and
// accepts, then closes the listener. The caller owns both connections.
func pair(tr transports.Transport, cfg transports.Config) (accepted, dialed net.Conn, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	ln, err := tr.Listen(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	dc := make(chan result, 1)
	go func() {
		c, err := tr.Dial(ctx, ln.Endpoint())
		dc <- result{c, err}
	}()
	ac, aerr := ln.Accept()
	d := <-dc
	if aerr != nil || d.err != nil {
		if ac != nil {
			ac.Close()
		}
		if d.c != nil {
			d.c.Close()
		}
		return nil, nil, errors.Join(aerr, d.err)
	}
	return ac, d.c, nil
}

// Pair returns a connected pair made with cfg (accepted side first), closed
// at the end of the test.
func Pair(t testing.TB, tr transports.Transport, cfg transports.Config) (accepted, dialed net.Conn) {
	t.Helper()
	a, d, err := pair(tr, cfg)
	if err != nil {
		t.Fatalf("%s: connect a pair: %v", tr.Name(), err)
	}
	t.Cleanup(func() { a.Close(); d.Close() })
	return a, d
}

// MakePipe returns a nettest.MakePipe over tr with cfg.
func MakePipe(tr transports.Transport, cfg transports.Config) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		a, d, err := pair(tr, cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		return a, d, func() { a.Close(); d.Close() }, nil
	}
}

// checkListenerClose checks that Close unblocks a pending Accept with an
// error wrapping net.ErrClosed, that Accept after Close fails the same way,
// and that a second Close returns an error rather than panicking.
func checkListenerClose(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	ln, err := tr.Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Accept block (not required for correctness)
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("pending Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(stepTimeout):
		t.Fatal("Close did not unblock Accept")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if err := ln.Close(); err == nil {
		t.Fatal("second Close returned nil, want an error")
	}
}

// checkCloseWrite checks that after CloseWrite on one side the other reads
// every byte then io.EOF, while the reverse direction keeps working; both
// ways round.
func checkCloseWrite(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	for _, acceptedCloses := range []bool{true, false} {
		a, d := Pair(t, tr, cfg)
		closer, other := d, a
		if acceptedCloses {
			closer, other = a, d
		}
		cw, ok := closer.(transports.CloseWriter)
		if !ok {
			t.Fatalf("%T does not implement transports.CloseWriter", closer)
		}
		stepDeadline(t, a, d)
		msg := []byte("last words")
		if _, err := closer.Write(msg); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := cw.CloseWrite(); err != nil {
			t.Fatalf("CloseWrite: %v", err)
		}
		got, err := io.ReadAll(other)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("peer read %q, %v; want %q then EOF", got, err, msg)
		}
		if n, err := other.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("read after EOF: %d, %v; want io.EOF", n, err)
		}
		if _, err := closer.Write([]byte("x")); err == nil {
			t.Fatal("Write after CloseWrite succeeded")
		}
		reply := []byte("still listening")
		if _, err := other.Write(reply); err != nil {
			t.Fatalf("reverse Write after CloseWrite: %v", err)
		}
		buf := make([]byte, len(reply))
		if _, err := io.ReadFull(closer, buf); err != nil || !bytes.Equal(buf, reply) {
			t.Fatalf("reverse read after CloseWrite: %q, %v", buf, err)
		}
	}
}

// checkConnClose checks that Close unblocks a pending Read with
// net.ErrClosed, that I/O after Close fails with net.ErrClosed, and that a
// second Close fails rather than panicking.
func checkConnClose(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	a, d := Pair(t, tr, cfg)
	stepDeadline(t, a, d)
	errc := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("pending Read after Close: %v, want net.ErrClosed", err)
	}
	checkOpError(t, "Read after Close", func() error { _, err := a.Read(make([]byte, 1)); return err }, net.ErrClosed)
	checkOpError(t, "Write after Close", func() error { _, err := a.Write([]byte("x")); return err }, net.ErrClosed)
	if err := a.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v, want net.ErrClosed", err)
	}
}

// checkDeadlines checks that a read deadline in the past fails a Read with
// a *net.OpError wrapping os.ErrDeadlineExceeded whose Timeout() is true,
// and that the connection works again once the deadline is cleared.
func checkDeadlines(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	a, d := Pair(t, tr, cfg)
	for _, c := range []net.Conn{a, d} {
		if err := c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
			t.Fatalf("SetReadDeadline: %v", err)
		}
		err := func() error { _, err := c.Read(make([]byte, 1)); return err }
		checkOpError(t, "Read past deadline", err, os.ErrDeadlineExceeded)
		var ne net.Error
		if e := err(); !errors.As(e, &ne) || !ne.Timeout() {
			t.Fatalf("deadline error %v: not a net.Error with Timeout()", e)
		}
		if err := c.SetReadDeadline(time.Time{}); err != nil {
			t.Fatalf("clear deadline: %v", err)
		}
	}
	stepDeadline(t, a, d)
	if _, err := d.Write([]byte("y")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := io.ReadFull(a, make([]byte, 1)); err != nil {
		t.Fatalf("Read after clearing the deadline: %v", err)
	}
}

// checkPeerGone closes one side and writes on the other until the write
// fails: the error must wrap transports.ErrPeerGone. (A kernel may accept
// the first writes after the peer closed; the loop is bounded.)
func checkPeerGone(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	a, d := Pair(t, tr, cfg)
	stepDeadline(t, a, d)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	buf := make([]byte, 4096)
	for i := 0; i < 1000; i++ {
		if _, err := a.Write(buf); err != nil {
			if !errors.Is(err, transports.ErrPeerGone) {
				t.Fatalf("Write to a closed peer: %v, want ErrPeerGone", err)
			}
			var op *net.OpError
			if !errors.As(err, &op) {
				t.Fatalf("Write to a closed peer: %T is not a *net.OpError", err)
			}
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("writes to a closed peer kept succeeding")
}

// checkUnknownOption checks that Listen with an unknown option and Dial of
// an endpoint carrying one both fail with an error wrapping
// transports.ErrBadOption.
func checkUnknownOption(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	bad := transports.Config{Address: cfg.Address, Conns: cfg.Conns, Options: map[string]string{"no-such-option": "1"}}
	ln, err := tr.Listen(context.Background(), bad)
	if !errors.Is(err, transports.ErrBadOption) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen with an unknown option: %v, want ErrBadOption", err)
	}
	ln, err = tr.Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	ep := ln.Endpoint()
	ep.Options = map[string]string{"no-such-option": "1"}
	c, err := tr.Dial(context.Background(), ep)
	if !errors.Is(err, transports.ErrBadOption) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial with an unknown option: %v, want ErrBadOption", err)
	}
}

// checkWrongTransport checks that Dial refuses an endpoint of another
// transport with an error wrapping transports.ErrBadEndpoint.
func checkWrongTransport(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	ln, err := tr.Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	ep := ln.Endpoint()
	ep.Transport = "not-" + tr.Name()
	c, err := tr.Dial(context.Background(), ep)
	if !errors.Is(err, transports.ErrBadEndpoint) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial of another transport's endpoint: %v, want ErrBadEndpoint", err)
	}
}

// checkOpError calls op and checks that its error is a *net.OpError
// wrapping want.
func checkOpError(t *testing.T, what string, op func() error, want error) {
	t.Helper()
	err := op()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("%s: %T is not a *net.OpError", what, err)
	}
}

// stepDeadline bounds the I/O of a check on cs so a broken transport fails
// rather than hangs.
func stepDeadline(t testing.TB, cs ...net.Conn) {
	t.Helper()
	for _, c := range cs {
		if err := c.SetDeadline(time.Now().Add(stepTimeout)); err != nil {
			t.Fatalf("SetDeadline: %v", err)
		}
	}
}

// EffectiveOptions returns the options c reports, failing the test when c
// is not a transports.OptionReporter.
func EffectiveOptions(t testing.TB, c any) map[string]string {
	t.Helper()
	r, ok := c.(transports.OptionReporter)
	if !ok {
		t.Fatalf("%T does not implement transports.OptionReporter", c)
	}
	return r.EffectiveOptions()
}

// behaviourCases are the in-process cases Run adds with
// RunOptions.Behaviour, named behaviour/<name>.
var behaviourCases = []struct {
	name  string
	check func(*testing.T, transports.Transport, transports.Config)
}{
	{"listener-close", checkListenerClose},
	{"close-write", checkCloseWrite},
	{"conn-close", checkConnClose},
	{"deadlines", checkDeadlines},
	{"peer-gone", checkPeerGone},
	{"unknown-option", checkUnknownOption},
	{"wrong-transport", checkWrongTransport},
}

// RunRawIO checks a transport's io option: nettest.TestConn and the
// conformance case close-ends-both pass with io=raw, both ends report io=raw, an unknown io value is refused with
// ErrBadOption, vectored writes (WriteBuffers) work with either io, and
// 64 connections with io=raw stay within MemoryPerConn (the memory case,
// with the leak checks).
func RunRawIO(t *testing.T, tr transports.Transport) {
	for _, io := range []string{"netpoll", "raw"} {
		t.Run("write-buffers/io="+io, func(t *testing.T) {
			checkWriteBuffers(t, tr, transports.Config{Options: map[string]string{"io": io}})
		})
	}
	t.Run("nettest", func(t *testing.T) {
		nettest.TestConn(t, MakePipe(tr, transports.Config{Options: map[string]string{"io": "raw"}}))
	})
	t.Run("close-ends-both", func(t *testing.T) {
		closeEndsBoth(t, tr, transports.Config{Conns: 1, Options: map[string]string{"io": "raw"}})
	})
	t.Run("reported", func(t *testing.T) {
		a, d, err := pair(tr, transports.Config{Options: map[string]string{"io": "raw"}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		defer d.Close()
		for _, c := range []net.Conn{a, d} {
			if got := c.(transports.OptionReporter).EffectiveOptions()["io"]; got != "raw" {
				t.Errorf("%T reports io=%q, want raw", c, got)
			}
		}
	})
	t.Run("memory", func(t *testing.T) {
		NoLeaks(t)
		checkMemory(t, tr, map[string]string{"io": "raw"})
	})
	t.Run("bad-value", func(t *testing.T) {
		_, err := tr.Listen(context.Background(), transports.Config{Options: map[string]string{"io": "telepathy"}})
		if !errors.Is(err, transports.ErrBadOption) {
			t.Fatalf("io=telepathy: %v, want ErrBadOption", err)
		}
	})
}

// buffersWriter is the vectored write the socket and pipe connections offer
// (frame.BuffersWriter).
type buffersWriter interface {
	WriteBuffers(v *net.Buffers) (int64, error)
}

// checkWriteBuffers checks a connection's WriteBuffers: several buffers,
// together larger than any kernel buffer, arrive whole and in order and
// are consumed from the vector; past a write deadline it fails with a
// *net.OpError wrapping os.ErrDeadlineExceeded, after Close with one
// wrapping net.ErrClosed, and once the peer has gone with an error
// wrapping transports.ErrPeerGone.
func checkWriteBuffers(t *testing.T, tr transports.Transport, cfg transports.Config) {
	t.Helper()
	a, d := Pair(t, tr, cfg)
	stepDeadline(t, a, d)
	w, ok := d.(buffersWriter)
	if !ok {
		t.Fatalf("%T has no WriteBuffers", d)
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	parts := [][]byte{[]byte("head"), {}, big, []byte("tail")}
	var want []byte
	for _, p := range parts {
		want = append(want, p...)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(want))
		n, _ := io.ReadFull(a, b)
		got <- b[:n]
	}()
	v := net.Buffers(slices.Clone(parts))
	n, err := w.WriteBuffers(&v)
	if err != nil || n != int64(len(want)) || len(v) != 0 {
		t.Fatalf("WriteBuffers = %d, %v, %d buffers left; want %d, nil, 0", n, err, len(v), len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("read %d bytes that differ from the %d written", len(b), len(want))
	}

	if err := d.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("SetWriteDeadline: %v", err)
	}
	checkOpError(t, "WriteBuffers past deadline", func() error {
		v := net.Buffers{[]byte("x")}
		_, err := w.WriteBuffers(&v)
		return err
	}, os.ErrDeadlineExceeded)
	if err := d.SetWriteDeadline(time.Now().Add(stepTimeout)); err != nil {
		t.Fatalf("SetWriteDeadline: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := 0; ; i++ {
		v := net.Buffers{make([]byte, 4096), []byte("x")}
		_, err := w.WriteBuffers(&v)
		if err != nil {
			if !errors.Is(err, transports.ErrPeerGone) {
				t.Fatalf("WriteBuffers to a closed peer: %v, want ErrPeerGone", err)
			}
			break
		}
		if i == 1000 {
			t.Fatal("WriteBuffers to a closed peer kept succeeding")
		}
		time.Sleep(time.Millisecond)
	}

	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkOpError(t, "WriteBuffers after Close", func() error {
		v := net.Buffers{[]byte("x")}
		_, err := w.WriteBuffers(&v)
		return err
	}, net.ErrClosed)
}

// Names returns the sorted names in dir, failing the test when it cannot
// be read.
func Names(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// StaleSocket leaves a socket file of type sotype (unix.SOCK_STREAM or
// unix.SOCK_SEQPACKET) at path that nobody listens on, as a listener
// killed before its Close leaves one: a connection to it is refused.
func StaleSocket(t testing.TB, path string, sotype int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, sotype|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("binding a stale socket at %s: %v", path, err)
	}
}

// WaitHangUp waits until the other end of f, a socket or a pipe, is
// closed (poll reports POLLHUP), and fails the test when it is still open
// after within: what a listener that drops a channel does to the dialer's
// end.
func WaitHangUp(t testing.TB, f *os.File, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 20); err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		if fds[0].Revents&unix.POLLHUP != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other end of %s is still open after %v", f.Name(), within)
		}
	}
}

// SocketPath returns a socket path for a listener by address, in a
// directory that does not exist yet (under a fresh, short-named private
// directory in os.TempDir(), removed at the end of the test), so that
// Listen makes it 0700 and Close removes it again. t.TempDir's names, made
// of the test's name, can be too long for sun_path.
func SocketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "rv", "s")
}
