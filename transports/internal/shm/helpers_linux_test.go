package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
)

// Byte offsets of the layout as the package documentation gives them; the
// tests corrupt mappings through these, independently of the Go types.
const (
	offMagic      = 0x000
	offVersion    = 0x008
	offHeaderSize = 0x00C
	offRingCap    = 0x010
	offMapSize    = 0x018
	offState      = 0x020
	offFlags      = 0x024
	offRing0      = 0x040
	offRing1      = 0x100

	// relative to a ring control block
	offLock          = 0x00
	offUsed          = 0x08
	offLaps          = 0x10
	offWpos          = 0x40
	offDataSeq       = 0x48
	offWriterClosed  = 0x4C
	offReaderWaiting = 0x50
	offWriterCPU     = 0x54
	offSkip          = 0x58
	offRpos          = 0x80
	offSpaceSeq      = 0x88
	offReaderClosed  = 0x04
	offWriterWaiting = 0x90
)

// testTimeout bounds every wait in the tests, so that a bug shows as a
// failure rather than a hang.
const testTimeout = 10 * time.Second

// listenT listens (shm-lock) with cfg and closes the listener at the end
// of the test.
func listenT(tb testing.TB, cfg transports.Config) *Listener {
	tb.Helper()
	return listenKindT(tb, Lock, cfg)
}

// listenKindT listens with a transport of kind k.
func listenKindT(tb testing.TB, k Kind, cfg transports.Config) *Listener {
	tb.Helper()
	l, err := New(k).Listen(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("Listen(%+v): %v", cfg, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l.(*Listener)
}

// connectT dials channel index of l from a goroutine, accepts it, and
// returns the accepted (listening side) and dialed connections, closed at
// the end of the test.
func connectT(tb testing.TB, l *Listener, index int) (acc, dia *Conn) {
	tb.Helper()
	ep := l.Endpoint()
	ep.Index = index
	type result struct {
		c   net.Conn
		err error
	}
	dialed := make(chan result, 1)
	go func() {
		c, err := New(l.kind).Dial(context.Background(), ep)
		dialed <- result{c, err}
	}()
	d := <-dialed
	if d.err != nil {
		tb.Fatalf("Dial(index %d): %v", index, d.err)
	}
	tb.Cleanup(func() { d.c.Close() })
	a, err := acceptTimeout(l, testTimeout)
	if err != nil {
		tb.Fatalf("Accept: %v", err)
	}
	tb.Cleanup(func() { a.Close() })
	return a.(*Conn), d.c.(*Conn)
}

// pairT returns a connected pair over a fresh one-channel listener.
func pairT(tb testing.TB, cfg transports.Config) (acc, dia *Conn) {
	tb.Helper()
	return connectT(tb, listenT(tb, cfg), 0)
}

// acceptTimeout calls l.Accept and gives up (closing l) after d.
func acceptTimeout(l *Listener, d time.Duration) (net.Conn, error) {
	timer := time.AfterFunc(d, func() { l.Close() })
	defer timer.Stop()
	return l.Accept()
}

// mapFileT maps f, a channel's mapping file, read-write into the test, the
// way a corrupting peer would, and unmaps it at the end of the test.
func mapFileT(tb testing.TB, f *os.File) []byte {
	tb.Helper()
	fi, err := f.Stat()
	if err != nil {
		tb.Fatalf("stat mapping: %v", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		tb.Fatalf("mmap: %v", err)
	}
	tb.Cleanup(func() { unix.Munmap(mem) })
	return mem
}

func put32(mem []byte, off int, v uint32) { binary.NativeEndian.PutUint32(mem[off:], v) }
func put64(mem []byte, off int, v uint64) { binary.NativeEndian.PutUint64(mem[off:], v) }
func get32(mem []byte, off int) uint32    { return binary.NativeEndian.Uint32(mem[off:]) }
func get64(mem []byte, off int) uint64    { return binary.NativeEndian.Uint64(mem[off:]) }

// fillPattern fills b with a pattern that depends on each byte's position
// in the stream (start is the position of b[0]), so that any lost, repeated
// or reordered byte shows.
func fillPattern(b []byte, start int) {
	for i := range b {
		p := start + i
		b[i] = byte(p ^ p>>8 ^ p>>16)
	}
}

// checkPattern reports the first position where b differs from the pattern.
func checkPattern(b []byte, start int) (int, bool) {
	for i := range b {
		p := start + i
		if b[i] != byte(p^p>>8^p>>16) {
			return p, false
		}
	}
	return 0, true
}

// wantOpErr fails unless err is a *net.OpError that wraps target.
func wantOpErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) {
		tb.Errorf("%s: got %T %v, want a *net.OpError wrapping %v", what, err, err, target)
		return
	}
	if !errors.Is(err, target) {
		tb.Errorf("%s: got %v, want an error wrapping %v", what, err, target)
	}
}

// openFDs returns the number of open file descriptors of this process.
func openFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatalf("reading /proc/self/fd: %v", err)
	}
	return len(ents)
}

// shmLeftovers lists files this transport could have left in /dev/shm.
func shmLeftovers(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		tb.Fatalf("reading %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		if len(e.Name()) >= len("ipcbench-shm") && e.Name()[:len("ipcbench-shm")] == "ipcbench-shm" {
			names = append(names, e.Name())
		}
	}
	return names
}

// settledLeftovers is shmLeftovers of dir once it holds n of them, or
// after a second: another test binary's mapping=file has its file there
// for a moment, which is no leftover of this test.
func settledLeftovers(tb testing.TB, dir string, n int) []string {
	tb.Helper()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := shmLeftovers(tb, dir)
		if len(got) == n || time.Now().After(deadline) {
			return got
		}
	}
}
