package shm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

func TestNettestConn(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  transports.Config
	}{
		{"default-ring", transports.Config{}},
		{"min-ring", transports.Config{BufferSize: MinRing}},
		{"file-mapping", transports.Config{BufferSize: 64 << 10, Options: map[string]string{OptionMapping: mappingFile}}},
		{"by-address", transports.Config{BufferSize: 64 << 10, Address: transporttest.SocketPath(t)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				l, err := New(Lock).Listen(context.Background(), tt.cfg)
				if err != nil {
					return nil, nil, nil, err
				}
				type result struct {
					c   net.Conn
					err error
				}
				dialed := make(chan result, 1)
				go func() {
					c, err := New(Lock).Dial(context.Background(), l.Endpoint())
					dialed <- result{c, err}
				}()
				d := <-dialed
				if d.err != nil {
					l.Close()
					return nil, nil, nil, d.err
				}
				c2 = d.c
				c1, err = l.Accept()
				if err != nil {
					c2.Close()
					l.Close()
					return nil, nil, nil, err
				}
				stop = func() {
					c1.Close()
					c2.Close()
					l.Close()
				}
				return c1, c2, stop, nil
			})
		})
	}
}

// TestStreamWrapAround sends messages of many sizes, most larger than the
// ring, through a 4 KiB ring, reading with buffers of several sizes, and
// checks every byte in both directions at once.
func TestStreamWrapAround(t *testing.T) {
	allSizes := []int{1, 7, MinRing - 1, MinRing, MinRing + 1, 3*MinRing + 17, 100_000, 1 << 20}
	for _, readSize := range []int{1, 13, 1000, MinRing, 64 << 10} {
		t.Run("read="+itoa(readSize), func(t *testing.T) {
			sizes := allSizes
			if readSize < 100 {
				sizes = allSizes[:6] // tiny reads: still many wraps, fewer calls
			}
			total := 0
			for _, s := range sizes {
				total += s
			}
			a, d := pairT(t, transports.Config{BufferSize: MinRing})
			a.SetDeadline(time.Now().Add(testTimeout))
			d.SetDeadline(time.Now().Add(testTimeout))
			var wg sync.WaitGroup
			for _, dir := range []struct {
				name string
				w, r *Conn
			}{{"listen->dial", a, d}, {"dial->listen", d, a}} {
				wg.Add(2)
				go func() {
					defer wg.Done()
					pos := 0
					for _, s := range sizes {
						msg := make([]byte, s)
						fillPattern(msg, pos)
						n, err := dir.w.Write(msg)
						if err != nil || n != s {
							t.Errorf("%s: Write(%d bytes) = %d, %v", dir.name, s, n, err)
							return
						}
						pos += s
					}
				}()
				go func() {
					defer wg.Done()
					buf := make([]byte, readSize)
					pos := 0
					for pos < total {
						n, err := dir.r.Read(buf)
						if n > MinRing {
							t.Errorf("%s: Read returned %d bytes from a %d-byte ring", dir.name, n, MinRing)
						}
						if at, ok := checkPattern(buf[:n], pos); !ok {
							t.Errorf("%s: byte %d differs", dir.name, at)
							return
						}
						pos += n
						if err != nil {
							t.Errorf("%s: Read at byte %d: %v", dir.name, pos, err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestPartialRead checks that Read returns what the ring holds rather than
// waiting to fill its buffer, and never more than the ring's capacity.
func TestPartialRead(t *testing.T) {
	a, d := pairT(t, transports.Config{BufferSize: MinRing})
	if _, err := a.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	d.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 100)
	n, err := d.Read(buf)
	if err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("Read = %q, %v; want \"abc\"", buf[:n], err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, 3*MinRing))
		done <- err
	}()
	big := make([]byte, 10*MinRing)
	got := 0
	for got < 3*MinRing {
		n, err := d.Read(big)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if n > MinRing {
			t.Fatalf("Read returned %d bytes from a %d-byte ring", n, MinRing)
		}
		got += n
	}
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// TestConcurrentWritesDoNotInterleave has several goroutines each write
// messages larger than the ring (so every Write takes many rounds) and
// checks that each message arrives contiguous.
func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	const (
		writers = 4
		msgs    = 10
		msgSize = 3*MinRing + 100
	)
	a, d := pairT(t, transports.Config{BufferSize: MinRing})
	d.SetDeadline(time.Now().Add(testTimeout))
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('A' + w)}, msgSize)
			for range msgs {
				if _, err := a.Write(msg); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	got := make([]byte, writers*msgs*msgSize)
	if _, err := io.ReadFull(d, got); err != nil {
		t.Fatalf("ReadFull: %v", err)
	}
	wg.Wait()
	for i := 0; i < len(got); i += msgSize {
		m := got[i : i+msgSize]
		if bytes.Count(m, m[:1]) != msgSize {
			t.Fatalf("message at byte %d is interleaved with another", i)
		}
	}
}

// TestCloseWrite checks half-close: the peer reads the bytes and io.EOF, the
// other direction keeps working, and later Writes fail with EPIPE.
func TestCloseWrite(t *testing.T) {
	a, d := pairT(t, transports.Config{BufferSize: MinRing})
	a.SetDeadline(time.Now().Add(testTimeout))
	d.SetDeadline(time.Now().Add(testTimeout))
	if _, err := d.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := d.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if err := d.CloseWrite(); err != nil {
		t.Fatalf("second CloseWrite: %v", err)
	}
	got, err := io.ReadAll(a)
	if err != nil || string(got) != "request" {
		t.Fatalf("ReadAll = %q, %v; want \"request\"", got, err)
	}
	if _, err := a.Write([]byte("response")); err != nil {
		t.Fatalf("Write back: %v", err)
	}
	buf := make([]byte, len("response"))
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "response" {
		t.Fatalf("read back = %q, %v", buf, err)
	}
	_, err = d.Write([]byte("x"))
	wantOpErr(t, "Write after CloseWrite", err, syscall.EPIPE)
}

// TestCloseWriteUnblocksWrite checks that CloseWrite makes a Write blocked
// on a full ring return.
func TestCloseWriteUnblocksWrite(t *testing.T) {
	a, _ := pairT(t, transports.Config{BufferSize: MinRing})
	done := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, 2*MinRing))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := a.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantOpErr(t, "blocked Write after CloseWrite", err, syscall.EPIPE)
	case <-time.After(testTimeout):
		t.Fatal("Write still blocked after CloseWrite")
	}
}

// TestClose checks the errors after Close on both sides.
func TestClose(t *testing.T) {
	a, d := pairT(t, transports.Config{BufferSize: MinRing})
	if _, err := a.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	local := []struct {
		name string
		op   func() error
	}{
		{"Read", func() error { _, err := a.Read(make([]byte, 1)); return err }},
		{"Write", func() error { _, err := a.Write([]byte("x")); return err }},
		{"SetDeadline", func() error { return a.SetDeadline(time.Now()) }},
		{"SetReadDeadline", func() error { return a.SetReadDeadline(time.Now()) }},
		{"SetWriteDeadline", func() error { return a.SetWriteDeadline(time.Now()) }},
		{"CloseWrite", func() error { return a.CloseWrite() }},
		{"Close", func() error { return a.Close() }},
	}
	for _, tt := range local {
		wantOpErr(t, "local "+tt.name+" after Close", tt.op(), net.ErrClosed)
	}

	d.SetDeadline(time.Now().Add(testTimeout))
	got, err := io.ReadAll(d)
	if err != nil || string(got) != "last words" {
		t.Errorf("peer ReadAll = %q, %v; want \"last words\"", got, err)
	}
	_, err = d.Write([]byte("x"))
	wantOpErr(t, "peer Write after Close", err, syscall.EPIPE)
	if err := d.Close(); err != nil {
		t.Errorf("peer Close: %v", err)
	}
}

// TestCloseUnblocks checks that Close makes the local blocked Read and Write
// return net.ErrClosed, and the peer's blocked Write return EPIPE.
func TestCloseUnblocks(t *testing.T) {
	tests := []struct {
		name  string
		local bool // the blocked call is on the closing side
		call  func(closing, peer *Conn) error
		want  error
	}{
		{"local-read", true, func(c, _ *Conn) error { _, err := c.Read(make([]byte, 10)); return err }, net.ErrClosed},
		{"local-write", true, func(c, _ *Conn) error { _, err := c.Write(make([]byte, 2*MinRing)); return err }, net.ErrClosed},
		{"peer-write", false, func(_, p *Conn) error { _, err := p.Write(make([]byte, 2*MinRing)); return err }, syscall.EPIPE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, d := pairT(t, transports.Config{BufferSize: MinRing})
			done := make(chan error, 1)
			go func() { done <- tt.call(a, d) }()
			time.Sleep(20 * time.Millisecond)
			if err := a.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-done:
				wantOpErr(t, tt.name, err, tt.want)
			case <-time.After(testTimeout):
				t.Fatal("the call is still blocked after Close")
			}
		})
	}
}

// TestDeadlineChangeWhileBlocked checks that clearing a deadline while a
// Read is blocked takes effect: the Read then waits for data instead of
// timing out.
func TestDeadlineChangeWhileBlocked(t *testing.T) {
	a, d := pairT(t, transports.Config{BufferSize: MinRing})
	// The clearing comes 20 ms into a 2 s deadline, whose margin is for a
	// loaded machine that runs the goroutine late; the write comes after
	// the deadline would have passed.
	d.SetReadDeadline(time.Now().Add(2 * time.Second))
	go func() {
		time.Sleep(20 * time.Millisecond)
		d.SetReadDeadline(time.Time{})
		time.Sleep(2500 * time.Millisecond)
		a.Write([]byte("late"))
	}()
	buf := make([]byte, 10)
	n, err := d.Read(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("Read = %q, %v; want \"late\" after the deadline was cleared", buf[:n], err)
	}
}

// TestPeerGoneSimulated closes the peer's liveness socket without an
// orderly close, as its death would, and checks that blocked calls return
// ErrPeerGone (within 2 s: the call's deadline), after any bytes the peer
// wrote before.
func TestPeerGoneSimulated(t *testing.T) {
	const bound = 2 * time.Second
	tests := []struct {
		name      string
		leftover  string // bytes the peer wrote before dying
		lockTaken bool   // the peer died holding the lock of the ring we write
		call      func(c *Conn) (int, error)
	}{
		{"read", "", false, func(c *Conn) (int, error) { return c.Read(make([]byte, 10)) }},
		{"read-after-leftover", "left", false, func(c *Conn) (int, error) { return c.Read(make([]byte, 10)) }},
		{"write-ring-full", "", false, func(c *Conn) (int, error) { return c.Write(make([]byte, 2*MinRing)) }},
		{"write-lock-held", "", true, func(c *Conn) (int, error) { return c.Write(make([]byte, 10)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, d := pairT(t, transports.Config{BufferSize: MinRing})
			if tt.leftover != "" {
				if _, err := d.Write([]byte(tt.leftover)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.lockTaken {
				d.rx.ctl.lock.Store(1)
			}
			a.SetDeadline(time.Now().Add(bound + 50*time.Millisecond))
			time.AfterFunc(50*time.Millisecond, func() { d.live.Close() }) // "death"
			if tt.leftover != "" {
				buf := make([]byte, 10)
				n, err := a.Read(buf)
				if err != nil || string(buf[:n]) != tt.leftover {
					t.Fatalf("Read = %q, %v; want the leftover %q first", buf[:n], err, tt.leftover)
				}
			}
			_, err := tt.call(a)
			wantOpErr(t, tt.name, err, transports.ErrPeerGone)
		})
	}
}

// TestListenerCloseUnblocksAccept checks that Close makes a pending Accept
// return net.ErrClosed and that later Accepts do too.
func TestListenerCloseUnblocksAccept(t *testing.T) {
	l, err := New(Lock).Listen(context.Background(), transports.Config{Conns: 2, BufferSize: MinRing})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		wantOpErr(t, "pending Accept", err, net.ErrClosed)
	case <-time.After(testTimeout):
		t.Fatal("Accept still blocked after Close")
	}
	_, err = l.Accept()
	wantOpErr(t, "Accept after Close", err, net.ErrClosed)
	wantOpErr(t, "second Close", l.Close(), net.ErrClosed)
}

// TestAcceptOrder checks that Accept hands out channels in the order peers
// attach, that each pair is connected to its own channel, and that Accept
// closes the listener's copies of the accepted channel's files.
func TestAcceptOrder(t *testing.T) {
	l := listenT(t, transports.Config{Conns: 3, BufferSize: MinRing})
	ep := l.Endpoint()
	if ep.NumFiles != 6 || len(ep.Files) != 6 {
		t.Fatalf("endpoint has %d/%d files, want 6", ep.NumFiles, len(ep.Files))
	}
	for _, idx := range []int{2, 0, 1} {
		a, d := connectT(t, l, idx)
		want := "#" + itoa(idx) + "/"
		if !strings.Contains(a.LocalAddr().String(), want) || !strings.Contains(d.LocalAddr().String(), want) {
			t.Errorf("dialed channel %d, accepted %v (peer %v)", idx, a.LocalAddr(), d.LocalAddr())
		}
		msg := []byte("channel " + itoa(idx))
		if _, err := d.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		a.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := io.ReadFull(a, buf); err != nil || !bytes.Equal(buf, msg) {
			t.Errorf("channel %d: read %q, %v", idx, buf, err)
		}
		for _, f := range ep.Files[2*idx : 2*idx+2] {
			if _, err := f.Stat(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("channel %d: endpoint file %s still open after Accept (%v)", idx, f.Name(), err)
			}
		}
	}
}

// TestDialErrors checks Dial's refusals.
func TestDialErrors(t *testing.T) {
	l := listenT(t, transports.Config{Conns: 2, BufferSize: MinRing})
	good := l.Endpoint()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		edit func(ep *transports.Endpoint)
		want error
	}{
		{"wrong-transport", nil, func(ep *transports.Endpoint) { ep.Transport = "unix" }, transports.ErrBadEndpoint},
		{"index-too-big", nil, func(ep *transports.Endpoint) { ep.Index = 2 }, transports.ErrBadEndpoint},
		{"negative-index", nil, func(ep *transports.Endpoint) { ep.Index = -1 }, transports.ErrBadEndpoint},
		{"no-files", nil, func(ep *transports.Endpoint) { ep.Files = nil }, transports.ErrBadEndpoint},
		{"nil-file", nil, func(ep *transports.Endpoint) { ep.Files = []*os.File{nil, ep.Files[1]} }, transports.ErrBadEndpoint},
		{"files-swapped", nil, func(ep *transports.Endpoint) {
			ep.Files = []*os.File{ep.Files[1], ep.Files[0]}
		}, transports.ErrBadEndpoint},
		{"buffer-size-mismatch", nil, func(ep *transports.Endpoint) { ep.BufferSize = 8 * MinRing }, transports.ErrBadEndpoint},
		{"unknown-option", nil, func(ep *transports.Endpoint) { ep.Options = map[string]string{"nodelay": "true"} }, transports.ErrBadOption},
		{"bad-option-value", nil, func(ep *transports.Endpoint) { ep.Options = map[string]string{OptionMapping: "hugepage"} }, transports.ErrBadOption},
		{"cancelled", cancelled, func(*transports.Endpoint) {}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := good
			ep.Files = append([]*os.File(nil), good.Files...)
			tt.edit(&ep)
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			c, err := New(Lock).Dial(ctx, ep)
			if err == nil {
				c.Close()
				t.Fatalf("Dial succeeded, want %v", tt.want)
			}
			if tt.want == transports.ErrBadOption {
				// An option's error names the transport itself, as
				// Listen's does, and is not wrapped again.
				if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "shm-lock: ") || strings.Count(err.Error(), "shm-lock") != 1 {
					t.Errorf("Dial: %v; want an error wrapping %v that names shm-lock once", err, tt.want)
				}
				return
			}
			wantOpErr(t, "Dial", err, tt.want)
			if !strings.HasPrefix(err.Error(), "dial shm-lock: ") || strings.Contains(err.Error(), "shm:") {
				t.Errorf("Dial: %q; want it to start with \"dial shm-lock: \" and name the transport once", err)
			}
		})
	}

	// The refused dials left the channels intact: each can be dialed once,
	// and only once.
	c, err := New(Lock).Dial(context.Background(), good)
	if err != nil {
		t.Fatalf("Dial after the refusals: %v", err)
	}
	defer c.Close()
	if c2, err := New(Lock).Dial(context.Background(), good); err == nil {
		c2.Close()
		t.Error("second Dial of one channel succeeded")
	} else {
		wantOpErr(t, "second Dial", err, transports.ErrBadEndpoint)
	}
	a, err := acceptTimeout(l, testTimeout)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer a.Close()
	connectT(t, l, 1)
}

// TestListenErrors checks Listen's refusals.
func TestListenErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		cfg  transports.Config
		want error
	}{
		{"unknown-option", context.Background(), transports.Config{Options: map[string]string{"spin": "1"}}, transports.ErrBadOption},
		{"bad-mapping", context.Background(), transports.Config{Options: map[string]string{OptionMapping: "tmp"}}, transports.ErrBadOption},
		{"missing-dir", context.Background(), transports.Config{Address: "/nonexistent/ipcbench/s"}, transports.ErrBadEndpoint},
		{"cancelled", cancelled, transports.Config{}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := New(Lock).Listen(tt.ctx, tt.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("Listen succeeded, want %v", tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Listen: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestEffectiveOptions checks the reported settings, including the ring
// size rounding.
func TestEffectiveOptions(t *testing.T) {
	tests := []struct {
		name    string
		cfg     transports.Config
		ring    string
		mapping string
	}{
		{"default", transports.Config{}, "1048576", "memfd"},
		{"tiny-rounds-up-to-min", transports.Config{BufferSize: 1}, "4096", "memfd"},
		{"rounds-to-power-of-two", transports.Config{BufferSize: 5000}, "8192", "memfd"},
		{"memfd", transports.Config{BufferSize: MinRing, Options: map[string]string{OptionMapping: mappingMemfd}}, "4096", "memfd"},
		{"file", transports.Config{BufferSize: MinRing, Options: map[string]string{OptionMapping: mappingFile}}, "4096", "file"},
		{"by-address", transports.Config{Conns: 1, BufferSize: MinRing, Address: transporttest.SocketPath(t)}, "4096", "memfd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listenT(t, tt.cfg)
			a, d := connectT(t, l, 0)
			want := map[string]string{"ring_bytes": tt.ring, "lock": "futex-mutex", "mapping": tt.mapping, "wait": "adaptive", "spin_ns": "20000"}
			for name, got := range map[string]map[string]string{
				"listener": l.EffectiveOptions(), "accepted": a.EffectiveOptions(), "dialed": d.EffectiveOptions(),
			} {
				if len(got) != len(want) {
					t.Errorf("%s: %v, want %v", name, got, want)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: %s=%q, want %q", name, k, got[k], v)
					}
				}
			}
		})
	}
}

func TestRingCapacity(t *testing.T) {
	tests := []struct{ in, want int }{
		{-1, DefaultRing}, {0, DefaultRing}, {1, MinRing}, {MinRing, MinRing}, {MinRing + 1, 2 * MinRing},
		{3 << 20, 4 << 20}, {MaxRing, MaxRing}, {MaxRing + 1, MaxRing}, {math.MaxInt, MaxRing},
	}
	for _, tt := range tests {
		if got := ringCapacity(tt.in); got != tt.want {
			t.Errorf("ringCapacity(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestFileMappingLeavesNothing checks that the file mapping leaves no file
// behind in /dev/shm, not even while the listener is open.
func TestFileMappingLeavesNothing(t *testing.T) {
	if fi, err := os.Stat(defaultShmDir); err != nil || !fi.IsDir() {
		t.Skipf("no %s here", defaultShmDir)
	}
	before := settledLeftovers(t, defaultShmDir, 0) // what lasts
	l, err := New(Lock).Listen(context.Background(), transports.Config{
		Conns: 2, BufferSize: MinRing, Options: map[string]string{OptionMapping: mappingFile},
	})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if got := settledLeftovers(t, defaultShmDir, len(before)); len(got) != len(before) {
		t.Errorf("%s holds %v while listening, had %v", defaultShmDir, got, before)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := settledLeftovers(t, defaultShmDir, len(before)); len(got) != len(before) {
		t.Errorf("%s holds %v after Close, had %v", defaultShmDir, got, before)
	}
}

// TestByAddressRefusesFileMapping checks that a listener any process of
// this user can dial (Config.Address, a rendezvous) refuses mapping=file
// with transports.ErrBadOption before it makes anything, not even the
// rendezvous socket: a dialer receives the mapping's file, which cannot be
// sealed, and one that shrank it would kill the listening process with
// SIGBUS. The default mapping and mapping=memfd, sealed, are accepted, and
// their channels are sealed memfds.
func TestByAddressRefusesFileMapping(t *testing.T) {
	for _, kind := range []Kind{Lock, Ring} {
		t.Run(kind.Name(), func(t *testing.T) {
			addr := transporttest.SocketPath(t)
			for _, conns := range []int{0, 1} {
				l, err := New(kind).Listen(context.Background(), transports.Config{
					Address: addr, Conns: conns, BufferSize: MinRing, Options: map[string]string{OptionMapping: mappingFile},
				})
				if err == nil {
					l.Close()
					t.Fatalf("Conns %d: Listen with an address and mapping=file succeeded", conns)
				}
				if !errors.Is(err, transports.ErrBadOption) {
					t.Errorf("Conns %d: Listen: %v, want an error wrapping %v", conns, err, transports.ErrBadOption)
				}
				for _, want := range []string{kind.Name() + ": listen: ", "mapping=file", addr, "SIGBUS", "memfd"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Conns %d: Listen: %q does not say %q", conns, err, want)
					}
				}
				if _, err := os.Lstat(filepath.Dir(addr)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Conns %d: the refused Listen made the rendezvous directory (%v)", conns, err)
				}
			}
			for _, opts := range []map[string]string{nil, {OptionMapping: mappingMemfd}} {
				ln, err := New(kind).Listen(context.Background(), transports.Config{Address: addr, Conns: 1, BufferSize: MinRing, Options: opts})
				if err != nil {
					t.Fatalf("options %v: Listen by address: %v", opts, err)
				}
				l := ln.(*Listener)
				t.Cleanup(func() { l.Close() }) // when the test fails before the Close below
				if got := l.EffectiveOptions()[OptionMapping]; got != mappingMemfd {
					t.Errorf("options %v: listener reports mapping=%s, want %s", opts, got, mappingMemfd)
				}
				ep := l.Endpoint()
				checkSealed(t, ep.Files[0])
				byAddr := transports.Endpoint{Transport: ep.Transport, Address: ep.Address, BufferSize: ep.BufferSize, Options: opts}
				c, err := New(kind).Dial(context.Background(), byAddr)
				if err != nil {
					t.Fatalf("options %v: Dial by address: %v", opts, err)
				}
				c.Close()
				l.Close()
			}
		})
	}
}

// TestDialByAddressRefusesFileMapping: a listener at an address that
// hands its dialers a file mapping (one that breaks the rule, as a hostile
// process of this user posing as a listener would: it could shrink the
// file under the dialer's mapping and kill the dialer with SIGBUS) is
// refused by Dial with an error wrapping transports.ErrBadEndpoint that
// says why, before the dialer maps it, and nothing is left behind on
// either side: descriptors, mappings, files, goroutines.
func TestDialByAddressRefusesFileMapping(t *testing.T) {
	if fi, err := os.Stat(defaultShmDir); err != nil || !fi.IsDir() {
		t.Skipf("no %s here for a file mapping", defaultShmDir)
	}
	for _, kind := range []Kind{Lock, Ring} {
		t.Run(kind.Name(), func(t *testing.T) {
			transporttest.NoLeaks(t)
			set, err := parseOptions(kind, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := transports.Config{Address: transporttest.SocketPath(t), BufferSize: MinRing}
			l, err := listenMode(context.Background(), kind, cfg, set, mappingFile)
			if err != nil {
				t.Fatalf("listening by address with file mappings: %v", err)
			}
			t.Cleanup(func() { l.Close() })
			byAddr := transports.Endpoint{Transport: kind.Name(), Address: l.Endpoint().Address, BufferSize: MinRing}
			for range 3 {
				c, err := New(kind).Dial(context.Background(), byAddr)
				if err == nil {
					c.Close()
					t.Fatalf("Dial by address accepted a file mapping (mapping=%s)", c.(*Conn).mapping)
				}
				wantOpErr(t, "Dial", err, transports.ErrBadEndpoint)
				for _, want := range []string{"not a memfd sealed against shrinking", "SIGBUS"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Dial: %q does not say %q", err, want)
					}
				}
			}
		})
	}
}

// TestDialByAddressWithoutFiles: a rendezvous listener that hands over an
// endpoint without files (none that this package makes does) is refused
// with an error wrapping transports.ErrBadEndpoint; the dial used to take
// the endpoint's address for one to fetch from again, and fetched for as
// long as such a listener answered.
func TestDialByAddressWithoutFiles(t *testing.T) {
	transporttest.NoLeaks(t)
	var offers atomic.Int32
	rv, err := rendezvous.Listen(transporttest.SocketPath(t), 0, func(int) (*rendezvous.Offer, error) {
		offers.Add(1)
		return &rendezvous.Offer{
			Endpoint: transports.Endpoint{Transport: Ring.Name(), BufferSize: MinRing},
			Await:    func() (net.Conn, error) { return nil, errors.New("no channel to attach to") },
			Abort:    func() {},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(Ring).Dial(ctx, transports.Endpoint{Transport: Ring.Name(), Address: rv.Path(), BufferSize: MinRing})
	if err == nil {
		c.Close()
		t.Fatal("Dial by address succeeded without a channel")
	}
	wantOpErr(t, "Dial", err, transports.ErrBadEndpoint)
	if n := offers.Load(); n != 1 {
		t.Errorf("the dial fetched %d times, want once", n)
	}
}

// checkSealed fails the test unless f is a memfd sealed against shrinking
// and growing.
func checkSealed(t *testing.T, f *os.File) {
	t.Helper()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatalf("F_GET_SEALS of %s: %v", f.Name(), err)
	}
	if want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW; seals&want != want {
		t.Errorf("%s has seals %#x, want %#x among them", f.Name(), seals, want)
	}
}

// TestNoLeaks runs full listen/dial/accept/close cycles, including ones
// where channels are never dialed or never accepted, and checks that the
// number of open descriptors comes back where it was. (Goroutines are
// checked for the whole package by goleak in TestMain.)
func TestNoLeaks(t *testing.T) {
	cycle := func() {
		l, err := New(Lock).Listen(context.Background(), transports.Config{Conns: 3, BufferSize: MinRing})
		if err != nil {
			t.Fatal(err)
		}
		ep := l.Endpoint()
		var conns []net.Conn
		for _, idx := range []int{0, 1} { // channel 2 is never dialed
			ep.Index = idx
			c, err := New(Lock).Dial(context.Background(), ep)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		a, err := acceptTimeout(l.(*Listener), testTimeout) // channel 1 is never accepted
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, a)
		if _, err := conns[0].Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for _, c := range conns {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	cycle() // warm up the runtime's own descriptors (epoll)
	before := openFDs(t)
	for range 5 {
		cycle()
	}
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before, %d after", before, after)
	}
}

// TestZeroAllocs checks that Read and Write do not allocate, whether they
// find the ring ready or have to sleep on a futex.
func TestZeroAllocs(t *testing.T) {
	a, d := pairT(t, transports.Config{BufferSize: MinRing})
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(d, buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Write+Read: %v allocations per run, want 0", n)
	}

	// Ping-pong with an echoing goroutine: the Read sleeps on the futex.
	pingPongAllocs(t, a, d)
}

// pingPongAllocs echoes 64-byte messages from d back to a while
// testing.AllocsPerRun measures a Write and a ReadFull on a: a round trip
// must allocate nothing. It closes d.
func pingPongAllocs(t *testing.T, a, d *Conn) {
	t.Helper()
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		b := make([]byte, 64)
		for {
			if _, err := io.ReadFull(d, b); err != nil {
				return
			}
			if _, err := d.Write(b); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 64), make([]byte, 64)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ping-pong: %v allocations per round trip, want 0", n)
	}
	d.Close()
	<-echoDone
}

// TestOrderlyCloseBetweenLoads closes one side in orderly fashion at the
// worst moment for the other: after it looked at whether the peer is gone
// and before it looked at the closed flag, and lets the close reach it
// (the liveness socket's EOF marks the peer gone). The other side must
// still see an orderly end: a reader io.EOF, a writer EPIPE, not
// ErrPeerGone, which means the peer died.
func TestOrderlyCloseBetweenLoads(t *testing.T) {
	for _, kind := range []Kind{Lock, Ring} {
		for _, op := range []string{"read", "write"} {
			t.Run(kind.Name()+"/"+op, func(t *testing.T) {
				a, d := connectT(t, listenKindT(t, kind, transports.Config{BufferSize: MinRing}), 0)
				a.SetDeadline(time.Now().Add(testTimeout))
				var once sync.Once
				fired := false
				hook := func(c *Conn) {
					if c != a {
						return
					}
					once.Do(func() {
						fired = true
						d.Close()
						for end := time.Now().Add(testTimeout); !a.peerGone.Load(); {
							if time.Now().After(end) {
								t.Error("the liveness socket never reported the closed peer")
								return
							}
							time.Sleep(time.Millisecond)
						}
					})
				}
				betweenEndLoads.Store(&hook)
				defer betweenEndLoads.Store(nil)
				var err error
				want := error(io.EOF)
				if op == "read" {
					_, err = a.Read(make([]byte, 16))
				} else {
					_, err = a.Write(make([]byte, 16))
					want = syscall.EPIPE
				}
				if !fired {
					t.Fatalf("%s never looked at the peer's state", op)
				}
				if !errors.Is(err, want) || errors.Is(err, transports.ErrPeerGone) {
					t.Fatalf("%s after the peer's orderly close: %v; want %v", op, err, want)
				}
			})
		}
	}
}

// TestWatchSurvivesDeadline leaves a read deadline in the past on a
// connection's liveness socket, as a dial whose context ended just as the
// listener answered could: the watcher must not take it for the peer's
// end. The connection keeps working, and a real close is still seen.
func TestWatchSurvivesDeadline(t *testing.T) {
	for _, kind := range []Kind{Lock, Ring} {
		t.Run(kind.Name(), func(t *testing.T) {
			a, d := connectT(t, listenKindT(t, kind, transports.Config{BufferSize: MinRing}), 0)
			a.SetDeadline(time.Now().Add(testTimeout))
			d.SetDeadline(time.Now().Add(testTimeout))
			a.live.SetReadDeadline(time.Unix(1, 0))
			// Round trips for a while: the watcher meets the deadline at
			// once, so without the fix a.Write soon fails with ErrPeerGone.
			buf := make([]byte, 8)
			for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
				if _, err := a.Write(buf); err != nil {
					t.Fatalf("Write with a stale deadline on the liveness socket: %v", err)
				}
				if _, err := io.ReadFull(d, buf); err != nil {
					t.Fatalf("peer Read: %v", err)
				}
			}
			if a.peerGone.Load() {
				t.Fatal("the watcher took a stale deadline for the peer's end")
			}
			d.Close()
			if _, err := a.Read(buf); err != io.EOF {
				t.Fatalf("Read after the peer's Close: %v; want io.EOF", err)
			}
			for end := time.Now().Add(testTimeout); !a.peerGone.Load(); time.Sleep(time.Millisecond) {
				if time.Now().After(end) {
					t.Fatal("the watcher never saw the peer's liveness socket close")
				}
			}
		})
	}
}

// TestRendezvousAttachTimeout fetches a channel through the rendezvous and
// never attaches: once the attach timeout passed, the listener has
// released it (the dialer's liveness socket sees its other end closed,
// and the process holds no more descriptors than before), and a late
// attach fails.
func TestRendezvousAttachTimeout(t *testing.T) {
	for _, k := range []Kind{Lock, Ring} {
		t.Run(k.Name(), func(t *testing.T) {
			l := listenKindT(t, k, transports.Config{BufferSize: MinRing, Address: transporttest.SocketPath(t)})
			l.rv.SetAttachTimeout(50 * time.Millisecond)
			before := openFDs(t)
			ep, err := rendezvous.Fetch(t.Context(), l.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			transporttest.WaitHangUp(t, ep.Files[1], 5*time.Second) // the listener's end of the liveness socket is closed
			if c, err := New(k).Dial(t.Context(), ep); err == nil {
				c.Close()
				t.Fatal("a late attach succeeded")
			}
			rendezvous.CloseFiles(ep.Files)
			if after := openFDs(t); after != before {
				t.Fatalf("descriptors: %d before the dial, %d after its channel was dropped", before, after)
			}
		})
	}
}

// TestListenerAddr: a listener names its transport in Addr's network and
// its errors, and its address is the rendezvous socket's path when it has
// one; a second Close fails as a close, not as an accept.
func TestListenerAddr(t *testing.T) {
	path := transporttest.SocketPath(t)
	l := listenKindT(t, Ring, transports.Config{Address: path})
	if a := l.Addr(); a.Network() != "shm-ring" || a.String() != path {
		t.Errorf("Addr() = %s %q, want shm-ring %q", a.Network(), a, path)
	}
	if a := listenKindT(t, Lock, transports.Config{}).Addr(); a.Network() != "shm-lock" || a.String() != "shm-lock:memfd" {
		t.Errorf("Addr() of a listener without address = %s %q, want shm-lock \"shm-lock:memfd\"", a.Network(), a)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	err := l.Close()
	if !errors.Is(err, net.ErrClosed) || !strings.HasPrefix(err.Error(), "close shm-ring "+path+": ") {
		t.Errorf("second Close: %v; want \"close shm-ring %s: ...\" wrapping net.ErrClosed", err, path)
	}
	if _, err := l.Accept(); !strings.HasPrefix(fmt.Sprint(err), "accept shm-ring ") {
		t.Errorf("Accept after Close: %v; want an accept error of shm-ring", err)
	}
}

// TestLargestRing: a channel with the largest ring (Config.BufferSize
// MaxRing) can be made, dialed and used on every platform. On a 32-bit
// one, a mapping of two 1 GiB rings and the header overflowed an int
// (mapSizeFor), and Listen failed sizing the memfd to a negative size.
func TestLargestRing(t *testing.T) {
	for _, k := range []Kind{Lock, Ring} {
		t.Run(k.Name(), func(t *testing.T) {
			acc, dia := connectT(t, listenKindT(t, k, transports.Config{BufferSize: MaxRing}), 0)
			if got := dia.EffectiveOptions()["ring_bytes"]; got != strconv.Itoa(MaxRing) {
				t.Errorf("ring_bytes = %q, want %d", got, MaxRing)
			}
			msg := []byte("the largest ring")
			if _, err := dia.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(acc, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("read %q, %v; want %q", got, err, msg)
			}
		})
	}
}
