package pipe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rawio"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
	"github.com/ipcbench/ipcbench/transports/transporttest"
	"go.uber.org/goleak"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
)

func TestNetConn(t *testing.T) {
	tests := []struct {
		name string
		cfg  transports.Config
	}{
		{"default", transports.Config{}},
		{"one conn", transports.Config{Conns: 1}},
		{"small pipes", transports.Config{Conns: 1, BufferSize: 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, transporttest.MakePipe(New(), tt.cfg))
		})
	}
}

func TestName(t *testing.T) {
	if got := New().Name(); got != "pipe" {
		t.Fatalf("Name() = %q", got)
	}
}

func listen(t *testing.T, cfg transports.Config) transports.Listener {
	t.Helper()
	ln, err := New().Listen(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func dial(t *testing.T, ep transports.Endpoint, index int) net.Conn {
	t.Helper()
	ep.Index = index
	c, err := New().Dial(context.Background(), ep)
	if err != nil {
		t.Fatalf("Dial channel %d: %v", index, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestChannels dials several channels out of order and checks that Accept
// returns them in attach order, each wired to its own dialer.
func TestChannels(t *testing.T) {
	noLeaks(t)
	ln := listen(t, transports.Config{Conns: 3})
	ep := ln.Endpoint()
	if ep.NumFiles != 6 || len(ep.Files) != 6 || ep.Transport != Name {
		t.Fatalf("Endpoint = %+v, want 6 files", ep)
	}
	for _, idx := range []int{2, 0, 1} {
		d := dial(t, ep, idx)
		a, err := ln.Accept()
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		t.Cleanup(func() { a.Close() })
		if got, want := a.RemoteAddr().String(), fmt.Sprintf("pipe:dialer/%d", idx); got != want {
			t.Fatalf("accepted %s, want %s (attach order)", got, want)
		}
		if got, want := d.LocalAddr().String(), fmt.Sprintf("pipe:dialer/%d", idx); got != want {
			t.Fatalf("dialer LocalAddr %s, want %s", got, want)
		}
		if a.LocalAddr().Network() != "pipe" || d.RemoteAddr().String() != a.LocalAddr().String() {
			t.Fatalf("addresses: accepted %v<-%v, dialed %v->%v", a.LocalAddr(), a.RemoteAddr(), d.LocalAddr(), d.RemoteAddr())
		}
		echo(t, a, d, idx)
	}
	if ln.Addr().String() != "pipe:listener" {
		t.Fatalf("listener Addr %v", ln.Addr())
	}
}

// echo sends a message each way over the pair and checks it arrives whole.
func echo(t *testing.T, a, d net.Conn, idx int) {
	t.Helper()
	for _, dir := range []struct{ from, to net.Conn }{{a, d}, {d, a}} {
		msg := []byte(fmt.Sprintf("channel %d from %v", idx, dir.from.LocalAddr()))
		if err := dir.to.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := dir.from.Write(msg); err != nil {
			t.Fatalf("Write: %v", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(dir.to, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %q, %v; want %q", got, err, msg)
		}
	}
}

// TestAcceptClosesPeerEnds checks that after Accept the endpoint's files of
// that channel are closed (so the peer's death would show) while the other
// channels' stay open.
func TestAcceptClosesPeerEnds(t *testing.T) {
	ln := listen(t, transports.Config{Conns: 2})
	ep := ln.Endpoint()
	dial(t, ep, 1)
	a, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer a.Close()
	for i, f := range ep.Files {
		open := isOpen(f)
		if want := i < 2; open != want {
			t.Errorf("Files[%d] open = %v, want %v", i, open, want)
		}
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, f := range ep.Files {
		if isOpen(f) {
			t.Errorf("Files[%d] still open after Listener.Close", i)
		}
	}
}

// TestDialTakesChannelFiles checks that a Dial closes the endpoint's two
// files of the channel it dialed, and only once it succeeded: the other
// channel's files, and those of a failed dial, stay open; and that the
// listener closes cleanly with a dialed channel it never accepted, whose
// files the Dial in this process closed under it.
func TestDialTakesChannelFiles(t *testing.T) {
	noLeaks(t)
	ln, err := New().Listen(context.Background(), transports.Config{Conns: 2})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ep := ln.Endpoint()
	ep.Index = 1
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := New().Dial(cancelled, ep); err == nil {
		c.Close()
		t.Fatal("Dial with a cancelled context succeeded")
	}
	for i, f := range ep.Files {
		if !isOpen(f) {
			t.Errorf("Files[%d] closed by a Dial that failed", i)
		}
	}
	d := dial(t, ep, 1)
	for i, f := range ep.Files {
		if open, want := isOpen(f), i < 2; open != want {
			t.Errorf("after dialing channel 1: Files[%d] open = %v, want %v", i, open, want)
		}
	}
	for i, f := range ep.Files[2:] {
		if err := f.Close(); !errors.Is(err, os.ErrClosed) {
			t.Errorf("closing Files[%d] again: %v, want os.ErrClosed", 2+i, err)
		}
	}
	if err := ln.Close(); err != nil {
		t.Fatalf("Close with a dialed channel not accepted: %v", err)
	}
	if err := d.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the listener closed: %d, %v; want io.EOF", n, err)
	}
}

func isOpen(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(func(uintptr) {}) == nil
}

// TestListenerCloseBeforeAccept checks that a dialer whose channel was never
// accepted sees the listener go: io.EOF on read, ErrPeerGone on write.
func TestListenerCloseBeforeAccept(t *testing.T) {
	noLeaks(t)
	ln, err := New().Listen(context.Background(), transports.Config{})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	d := dial(t, ln.Endpoint(), 0)
	if err := ln.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read: %d, %v; want io.EOF", n, err)
	}
	_, err = d.Write([]byte("x"))
	var op *net.OpError
	if !errors.Is(err, transports.ErrPeerGone) || !errors.Is(err, unix.EPIPE) || !errors.As(err, &op) || op.Net != "pipe" {
		t.Fatalf("Write: %v, want a pipe *net.OpError wrapping ErrPeerGone and EPIPE", err)
	}
	// Dialling the closed listener's endpoint fails cleanly.
	c, err := New().Dial(context.Background(), ln.Endpoint())
	if !errors.Is(err, transports.ErrBadEndpoint) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial after Close: %v, want ErrBadEndpoint", err)
	}
}

func TestBadHello(t *testing.T) {
	noLeaks(t)
	ln := listen(t, transports.Config{})
	if _, err := ln.Endpoint().Files[1].Write([]byte{'X'}); err != nil {
		t.Fatalf("write: %v", err)
	}
	c, err := ln.Accept()
	if err == nil {
		c.Close()
		t.Fatal("Accept of a channel with a bad hello succeeded")
	}
	if errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "bad hello") {
		t.Fatalf("Accept: %v, want a bad-hello error", err)
	}
}

func TestDialBadEndpoint(t *testing.T) {
	ln := listen(t, transports.Config{Conns: 1})
	files := ln.Endpoint().Files
	regular, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	tests := []struct {
		name  string
		index int
		files []*os.File
		msg   string
	}{
		{"no files", 0, nil, "has 0 files"},
		{"negative index", -1, files, "channel -1"},
		{"index out of range", 1, files, "channel 1"},
		{"swapped ends", 0, []*os.File{files[1], files[0]}, "wrong direction"},
		{"not a pipe", 0, []*os.File{regular, files[1]}, "not a pipe"},
		{"nil file", 0, []*os.File{files[0], nil}, "no file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := transports.Endpoint{Transport: Name, Index: tt.index, Files: tt.files}
			c, err := New().Dial(context.Background(), ep)
			if !errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), tt.msg) {
				if c != nil {
					c.Close()
				}
				t.Fatalf("Dial: %v; want ErrBadEndpoint saying %q", err, tt.msg)
			}
		})
	}
	// The failed dials wrote no hello: a good one still attaches.
	d := dial(t, ln.Endpoint(), 0)
	a, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer a.Close()
	echo(t, a, d, 0)
}

func TestDialCancelled(t *testing.T) {
	ln := listen(t, transports.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := New().Dial(ctx, ln.Endpoint())
	if !errors.Is(err, context.Canceled) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial: %v, want context.Canceled", err)
	}
}

func TestPipeSize(t *testing.T) {
	tests := []struct {
		name string
		size int
		want int // 0: only check it is positive
	}{
		{"default", 0, 0},
		{"one page", 1, os.Getpagesize()},
		{"128 KiB", 128 << 10, 128 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, d := transporttest.Pair(t, New(), transports.Config{BufferSize: tt.size})
			for side, c := range map[string]net.Conn{"accepted": a, "dialed": d} {
				opts := transporttest.EffectiveOptions(t, c)
				for _, k := range []string{"pipe_rx_bytes", "pipe_tx_bytes"} {
					v, err := strconv.Atoi(opts[k])
					if err != nil || v <= 0 || (tt.want > 0 && v != tt.want) {
						t.Errorf("%s: %s=%q, want %d", side, k, opts[k], tt.want)
					}
				}
			}
		})
	}
}

func TestPipeSizeTooLarge(t *testing.T) {
	b, err := os.ReadFile(pipeMaxSize)
	if err != nil {
		t.Skipf("no %s: %v", pipeMaxSize, err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("parse %s: %v", pipeMaxSize, err)
	}
	// Capabilities are per thread: drop CAP_SYS_RESOURCE from this locked
	// thread's effective set so the limit applies even to root.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	restore := dropCap(t, unix.CAP_SYS_RESOURCE)
	ln, err := New().Listen(context.Background(), transports.Config{BufferSize: 2 * limit})
	restore()
	if err == nil {
		ln.Close()
		t.Fatalf("Listen with BufferSize %d above pipe-max-size %d succeeded", 2*limit, limit)
	}
	if !errors.Is(err, transports.ErrUnavailable) || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), pipeMaxSize) {
		t.Fatalf("Listen: %v; want ErrUnavailable naming %s", err, pipeMaxSize)
	}
	// A size the kernel cannot represent at all is the caller's mistake,
	// as it is in the pipe_size option.
	t.Run("over C int", func(t *testing.T) {
		// A variable: on a 32-bit platform BufferSize, an int, cannot
		// hold it, and there is nothing to refuse.
		unrepresentable := int64(1<<31 + 1)
		if unrepresentable > math.MaxInt {
			t.Skipf("BufferSize is an int: 2^31+1 does not fit on a %d-bit platform", strconv.IntSize)
		}
		ln, err := New().Listen(context.Background(), transports.Config{BufferSize: int(unrepresentable)})
		if !errors.Is(err, transports.ErrBadOption) || errors.Is(err, transports.ErrUnavailable) {
			if ln != nil {
				ln.Close()
			}
			t.Fatalf("Listen with BufferSize 2^31+1: %v, want ErrBadOption", err)
		}
	})
}

// dropCap removes capability c from the calling thread's effective set and
// returns a function that puts it back. The caller has locked the thread.
func dropCap(t *testing.T, c int) (restore func()) {
	t.Helper()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatalf("capget: %v", err)
	}
	orig := data
	data[c/32].Effective &^= 1 << (c % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Fatalf("capset: %v", err)
	}
	return func() {
		if err := unix.Capset(&hdr, &orig[0]); err != nil {
			t.Errorf("restore capabilities: %v", err)
		}
	}
}

// TestNoFDLeak runs every lifecycle (accepted and closed, dialled but not
// accepted, never dialled) and checks that the process holds no more
// descriptors afterwards.
func TestNoFDLeak(t *testing.T) {
	before := countFDs(t)
	for range 3 {
		ln, err := New().Listen(context.Background(), transports.Config{Conns: 3, BufferSize: 8192})
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		ep := ln.Endpoint()
		var conns []net.Conn
		for _, idx := range []int{0, 1} {
			ep.Index = idx
			c, err := New().Dial(context.Background(), ep)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			conns = append(conns, c)
		}
		a, err := ln.Accept()
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		conns = append(conns, a)
		if err := ln.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, c := range conns {
			if err := c.Close(); err != nil {
				t.Fatalf("conn Close: %v", err)
			}
		}
	}
	if after := countFDs(t); after != before {
		t.Fatalf("descriptors: %d before, %d after", before, after)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}

// noLeaks checks, after every other cleanup of t has run, that t left no
// goroutines behind.
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// TestPipeSizeOption checks that pipe_size sets both pipes' capacity, read
// back through EffectiveOptions, and that a bad value is refused.
func TestPipeSizeOption(t *testing.T) {
	mk := transporttest.MakePipe(New(), transports.Config{BufferSize: 4096, Options: map[string]string{OptPipeSize: "256k"}})
	c1, c2, stop, err := mk()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, c := range []net.Conn{c1, c2} {
		m := c.(transports.OptionReporter).EffectiveOptions()
		if m["pipe_rx_bytes"] != "262144" || m["pipe_tx_bytes"] != "262144" {
			t.Errorf("effective options %v; want both pipes at 262144 bytes", m)
		}
	}
	for _, bad := range []string{"huge", "0", "1.5k"} {
		_, err := New().Listen(context.Background(), transports.Config{Options: map[string]string{OptPipeSize: bad}})
		if !errors.Is(err, transports.ErrBadOption) || !strings.Contains(err.Error(), "pipe_size") {
			t.Errorf("pipe_size=%s: %v; want ErrBadOption naming the option", bad, err)
		}
	}
}

// TestRawIO checks the io=raw variant (see transporttest.RunRawIO).
func TestRawIO(t *testing.T) { transporttest.RunRawIO(t, New()) }

// TestReadsGoThroughPollReader: the default (io=netpoll) connection's idle
// Read parks through rawio.PollReader (counted there), io=raw's does not.
func TestReadsGoThroughPollReader(t *testing.T) {
	for _, raw := range []bool{false, true} {
		cfg := transports.Config{Conns: 1}
		if raw {
			cfg.Options = map[string]string{"io": "raw"}
		}
		ln := listen(t, cfg)
		ep := ln.Endpoint()
		d := dial(t, ep, 0)
		a, err := ln.Accept()
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := a.Read(make([]byte, 8))
			done <- err
		}()
		if !raw {
			for i := 0; rawio.ParkedReads() != 1; i++ {
				if i == 10000 {
					t.Fatalf("an idle Read is not parked through the PollReader (parked reads %d)", rawio.ParkedReads())
				}
				time.Sleep(time.Millisecond)
			}
		} else {
			time.Sleep(20 * time.Millisecond) // let it sleep; were it a PollReader read, it would be counted
			if n := rawio.ParkedReads(); n != 0 {
				t.Fatalf("an io=raw Read is counted as a PollReader read (%d)", n)
			}
		}
		d.Write([]byte("x"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
}

// TestRendezvousAttachTimeout fetches a channel through the rendezvous and
// never attaches: once the attach timeout passed, the listener has closed
// its ends (the dialer's read end sees the writer gone, and the process
// holds no more descriptors than before), and a late attach fails.
func TestRendezvousAttachTimeout(t *testing.T) {
	ln := listen(t, transports.Config{Address: transporttest.SocketPath(t)})
	ln.(*listener).rv.SetAttachTimeout(50 * time.Millisecond)
	before := countFDs(t)
	ep, err := rendezvous.Fetch(t.Context(), ln.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	transporttest.WaitHangUp(t, ep.Files[0], 5*time.Second) // the listener's write end is closed
	if c, err := New().Dial(t.Context(), ep); err == nil {
		c.Close()
		t.Fatal("a late attach succeeded")
	}
	rendezvous.CloseFiles(ep.Files)
	if after := countFDs(t); after != before {
		t.Fatalf("descriptors: %d before the dial, %d after its channel was dropped", before, after)
	}
}

// TestDialByAddressWithoutFiles: a rendezvous listener that hands over an
// endpoint without files (none that this package makes does) is refused
// with an error wrapping transports.ErrBadEndpoint, after one fetch; the
// dial used to take the endpoint's address for one to fetch from again,
// and fetched for as long as such a listener answered.
func TestDialByAddressWithoutFiles(t *testing.T) {
	var offers atomic.Int32
	rv, err := rendezvous.Listen(transporttest.SocketPath(t), 0, func(int) (*rendezvous.Offer, error) {
		offers.Add(1)
		return &rendezvous.Offer{
			Endpoint: transports.Endpoint{Transport: Name},
			Await:    func() (net.Conn, error) { return nil, errors.New("no channel to attach to") },
			Abort:    func() {},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := New().Dial(ctx, transports.Endpoint{Transport: Name, Address: rv.Path()})
	if err == nil {
		c.Close()
		t.Fatal("Dial by address succeeded without a channel")
	}
	if !errors.Is(err, transports.ErrBadEndpoint) {
		t.Errorf("Dial: %v, want an error wrapping transports.ErrBadEndpoint", err)
	}
	if n := offers.Load(); n != 1 {
		t.Errorf("the dial fetched %d times, want once", n)
	}
}
