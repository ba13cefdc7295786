package transporttest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rawio"
)

// The memory case: 64 connections with their buffers full stay within
// what the transport states per connection (transports.MemoryReporter).

// Sizes of the memory case.
const (
	// memoryConns is how many connections the case holds open at once.
	memoryConns = 64
	// memoryBuffer is the Config.BufferSize the case uses: small enough
	// that 64 connections fill cheaply, large enough to be a real ring or
	// socket buffer.
	memoryBuffer = 64 << 10
	// memoryPasses is how many times memoryBuffer each direction of each
	// connection moves, read and checked, before the buffers are filled.
	memoryPasses = 4
	// fillWait is the write deadline that ends filling a direction: a
	// write that has made no progress by then found the buffers full. It
	// bounds no measurement; a write cut short by it only fills less.
	fillWait = 20 * time.Millisecond
)

// memEnd is one end of a connection of the memory case.
type memEnd struct {
	c net.Conn
	// sent is how many bytes this end has written, and recvd how many it
	// has read and checked, of the stream in its direction.
	sent, recvd int64
}

// memPair is one connection: the dialed end and the accepted one. Stream
// id 2i goes from dialed to accepted, 2i+1 the other way.
type memPair struct {
	id           uint64
	dial, accept memEnd
}

// testMemory opens memoryConns connections (by address where the
// transport has one, otherwise by the listener's redialable endpoint),
// pushes memoryPasses × memoryBuffer bytes through each direction of each,
// every byte checked, then fills every buffer (writing until a write makes
// no progress), and compares what the process holds with
// MemoryPerConn(cfg): shared mappings (/proc/self/maps), kernel buffer
// memory per direction (SO_MEMINFO for sockets, F_GETPIPE_SZ for pipes),
// Go heap and stacks after a GC, goroutines and descriptors, each as a
// delta against the state with one connection already open (so what a
// process pays once, for its first connection, is not counted). Both ends
// of every connection live in this process, so per-end bounds count
// twice. Then it drains and checks every byte that was buffered.
func testMemory(t *testing.T, tr transports.Transport) { checkMemory(t, tr, nil) }

// checkMemory is the memory case with opts as Config.Options.
func checkMemory(t *testing.T, tr transports.Transport, opts map[string]string) {
	mr, ok := tr.(transports.MemoryReporter)
	if !ok {
		t.Fatalf("%s does not implement transports.MemoryReporter", tr.Name())
	}
	ln, ep, cfg := memoryListen(t, tr, transports.Config{BufferSize: memoryBuffer, Options: opts})
	want := mr.MemoryPerConn(cfg)
	t.Logf("stated per connection for BufferSize %d, options %v: %+v", cfg.BufferSize, cfg.Options, want)

	pairs := make([]*memPair, 0, memoryConns+1)
	t.Cleanup(func() {
		for _, p := range pairs {
			p.dial.c.Close()
			p.accept.c.Close()
		}
	})
	// open dials one connection while a goroutine accepts it; none runs
	// between calls, so the goroutine counts are the connections' own.
	type acceptResult struct {
		c   net.Conn
		err error
	}
	open := func() *memPair {
		t.Helper()
		accepted := make(chan acceptResult, 1)
		go func() {
			c, err := ln.Accept()
			accepted <- acceptResult{c, err}
		}()
		d, err := tr.Dial(t.Context(), ep)
		if err != nil {
			ln.Close() // ends the Accept
			if a := <-accepted; a.c != nil {
				a.c.Close()
			}
			t.Fatalf("dial %d: %v", len(pairs), err)
		}
		a := <-accepted
		if a.err != nil {
			d.Close()
			t.Fatalf("accept %d: %v", len(pairs), a.err)
		}
		p := &memPair{id: uint64(len(pairs)), dial: memEnd{c: d}, accept: memEnd{c: a.c}}
		pairs = append(pairs, p)
		return p
	}
	buf := make([]byte, memoryBuffer)
	check := make([]byte, memoryBuffer)

	// The first connection pays what a process pays once (the runtime's
	// poller, shm's doorbell, wake page and poller goroutine).
	first := open()
	if err := first.push(buf, check, memoryPasses); err != nil {
		t.Fatal(err)
	}
	before := snapshotMemory(t)
	for range memoryConns {
		p := open()
		if err := p.push(buf, check, memoryPasses); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pairs[1:] {
		if err := p.fill(buf); err != nil {
			t.Fatal(err)
		}
	}
	after := snapshotMemory(t)
	ends := int64(2 * memoryConns)
	var kernel kernelMemory
	for _, p := range pairs[1:] {
		k, err := p.kernel()
		if err != nil {
			t.Fatal(err)
		}
		kernel.add(k)
	}

	got := transports.Memory{
		SharedBytes: (after.mapped - before.mapped) / ends,
		KernelBytes: kernel.most,
		HeapBytes:   (after.heap - before.heap) / ends,
		Goroutines:  ceilDiv(after.goroutines-before.goroutines, int(ends)),
		Descriptors: ceilDiv(after.fds-before.fds, int(ends)),
	}
	t.Logf("measured over %d connections: %d B mapped, %d B heap+stacks, %d goroutines, %d descriptors; kernel per direction: most %d B, mean %d B, %d B waiting to be read in all",
		memoryConns, after.mapped-before.mapped, after.heap-before.heap, after.goroutines-before.goroutines, after.fds-before.fds,
		kernel.most, kernel.sum/max(kernel.n, 1), kernel.queued)
	t.Logf("measured per connection (mapped and heap per end, kernel per direction, at most): %+v", got)
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"shared mapping bytes per end", got.SharedBytes, want.SharedBytes},
		{"kernel buffer bytes per direction", got.KernelBytes, want.KernelBytes},
		{"Go heap and stack bytes per end", got.HeapBytes, want.HeapBytes},
		{"goroutines per end", int64(got.Goroutines), int64(want.Goroutines)},
		{"descriptors per end", int64(got.Descriptors), int64(want.Descriptors)},
	} {
		if c.got > c.want {
			t.Errorf("%s: measured %d, above the %d that MemoryPerConn states", c.what, c.got, c.want)
		}
	}
	if kernel.queued == 0 && want.KernelBytes > 0 {
		t.Errorf("kernel buffers: nothing queued after filling, but MemoryPerConn states %d bytes per direction", want.KernelBytes)
	}
	for _, p := range pairs {
		if err := p.drain(buf, check); err != nil {
			t.Fatal(err)
		}
	}
}

// memoryListen listens on tr with cfg and returns the listener (closed at
// the end of the test), the endpoint to dial as often as the case likes,
// and the Config in effect: with Config.Address a fresh socket path and
// the endpoint's address alone, where the transport takes one; otherwise
// the listener's own endpoint, which must then be redialable (tcp-veth)
// or carry no files (tcp-public).
func memoryListen(t *testing.T, tr transports.Transport, cfg transports.Config) (transports.Listener, transports.Endpoint, transports.Config) {
	t.Helper()
	ln, cfg := listenOnPath(t, tr, cfg)
	ep := ln.Endpoint()
	if len(ep.Files) == 0 {
		return ln, addressOnly(ep), cfg
	}
	if r, ok := ln.(transports.RedialableEndpoint); !ok || !r.RedialableEndpoint() {
		t.Fatalf("Listen with Config.Address %q: the endpoint has %d files and cannot be dialed again", cfg.Address, len(ep.Files))
	}
	return ln, ep, cfg
}

// ceilDiv is a/b rounded up, for a >= 0, and 0 for a < 0.
func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// memorySnapshot is what the process holds at one moment.
type memorySnapshot struct {
	mapped     int64 // bytes of ipcbench's shared mappings
	heap       int64 // HeapInuse + StackInuse after a GC
	goroutines int
	fds        int
}

// snapshotMemory measures the process after two garbage collections.
func snapshotMemory(t *testing.T) memorySnapshot {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memorySnapshot{
		heap:       int64(ms.HeapInuse + ms.StackInuse),
		goroutines: runtime.NumGoroutine(),
		fds:        len(openFDs(t)),
	}
	for _, line := range mappings(t) {
		start, end, ok := strings.Cut(strings.Fields(line)[0], "-")
		lo, err1 := strconv.ParseUint(start, 16, 64)
		hi, err2 := strconv.ParseUint(end, 16, 64)
		if !ok || err1 != nil || err2 != nil {
			t.Fatalf("unexpected line in /proc/self/maps: %q", line)
		}
		s.mapped += int64(hi - lo)
	}
	return s
}

// pattern fills b with the bytes of stream id from offset off on.
func pattern(b []byte, id uint64, off int64) {
	for i := range b {
		o := uint64(off) + uint64(i)
		b[i] = byte(o) ^ byte(o>>8)*7 ^ byte(o>>16)*13 ^ byte(id*0x9d)
	}
}

// send writes the next len(buf) bytes of stream id from e.
func (e *memEnd) send(buf []byte, id uint64) error {
	pattern(buf, id, e.sent)
	n, err := e.c.Write(buf)
	e.sent += int64(n)
	return err
}

// recv reads the next n bytes of stream id into e and checks them.
func (e *memEnd) recv(buf, check []byte, id uint64, n int64) error {
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		if _, err := io.ReadFull(e.c, b); err != nil {
			return fmt.Errorf("stream %d, at byte %d: %w", id, e.recvd, err)
		}
		pattern(check[:len(b)], id, e.recvd)
		for i := range b {
			if b[i] != check[i] {
				return fmt.Errorf("stream %d: byte %d is %#x, want %#x", id, e.recvd+int64(i), b[i], check[i])
			}
		}
		e.recvd += int64(len(b))
		n -= int64(len(b))
	}
	return nil
}

// push moves passes × len(buf) bytes through each direction of p, every
// byte checked: the dialed end writes its stream while the accepted end
// reads it and writes every chunk read, as its own stream, back to the
// dialed end, which reads and checks it.
func (p *memPair) push(buf, check []byte, passes int) error {
	n := len(buf)
	// A failing side closes both ends, so that no other side waits on it.
	abort := func() { p.dial.c.Close(); p.accept.c.Close() }
	echoed := make(chan error, 1)
	go func() {
		b, c := make([]byte, n), make([]byte, n)
		for range passes {
			if err := p.accept.recv(b, c, 2*p.id, int64(n)); err != nil {
				abort()
				echoed <- err
				return
			}
			if err := p.accept.send(b, 2*p.id+1); err != nil {
				abort()
				echoed <- fmt.Errorf("write: %w", err)
				return
			}
		}
		echoed <- nil
	}()
	sent := make(chan error, 1)
	go func() {
		b := make([]byte, n)
		for range passes {
			if err := p.dial.send(b, 2*p.id); err != nil {
				abort()
				sent <- fmt.Errorf("write: %w", err)
				return
			}
		}
		sent <- nil
	}()
	rerr := p.dial.recv(buf, check, 2*p.id+1, int64(passes*n))
	if rerr != nil {
		abort()
	}
	if err := errors.Join(<-sent, rerr); err != nil {
		return fmt.Errorf("connection %d: dialed end: %w", p.id, err)
	}
	if err := <-echoed; err != nil {
		return fmt.Errorf("connection %d: accepted end: %w", p.id, err)
	}
	return nil
}

// fill writes into each direction of p until a write makes no progress
// within fillWait: the buffers between the two ends are full.
func (p *memPair) fill(buf []byte) error {
	for i, e := range []*memEnd{&p.dial, &p.accept} {
		id := 2*p.id + uint64(i)
		for {
			e.c.SetWriteDeadline(time.Now().Add(fillWait))
			was := e.sent
			err := e.send(buf, id)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if e.sent == was {
					break
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("connection %d: filling stream %d: %w", p.id, id, err)
			}
		}
		if err := e.c.SetWriteDeadline(time.Time{}); err != nil {
			return fmt.Errorf("connection %d: clearing the write deadline: %w", p.id, err)
		}
	}
	return nil
}

// drain reads and checks every byte still buffered in p.
func (p *memPair) drain(buf, check []byte) error {
	if err := p.accept.recv(buf, check, 2*p.id, p.dial.sent-p.accept.recvd); err != nil {
		return fmt.Errorf("connection %d: draining at the accepted end: %w", p.id, err)
	}
	if err := p.dial.recv(buf, check, 2*p.id+1, p.accept.sent-p.dial.recvd); err != nil {
		return fmt.Errorf("connection %d: draining at the dialed end: %w", p.id, err)
	}
	return nil
}

// kernelMemory sums the kernel buffer memory of directions.
type kernelMemory struct {
	most, sum int64 // per direction: the largest, and the sum
	queued    int64 // bytes waiting to be read, all directions
	n         int64 // directions
}

func (k *kernelMemory) add(o kernelMemory) {
	k.most = max(k.most, o.most)
	k.sum += o.sum
	k.queued += o.queued
	k.n += o.n
}

// kernel measures the kernel buffer memory of each direction of p
// (directionMemory). Connections with no descriptor (shared memory) hold
// none.
func (p *memPair) kernel() (kernelMemory, error) {
	var k kernelMemory
	dr, dw, derr := descriptors(p.dial.c)
	ar, aw, aerr := descriptors(p.accept.c)
	defer closeFDs(dr, dw, ar, aw)
	if errors.Is(derr, errNoDescriptor) && errors.Is(aerr, errNoDescriptor) {
		return k, nil
	}
	if err := errors.Join(derr, aerr); err != nil {
		return k, fmt.Errorf("connection %d: %w", p.id, err)
	}
	for _, d := range []struct{ w, r int }{{dw, ar}, {aw, dr}} {
		mem, queued, err := directionMemory(d.w, d.r)
		if err != nil {
			return k, fmt.Errorf("connection %d: %w", p.id, err)
		}
		k.most = max(k.most, mem)
		k.sum += mem
		k.queued += queued
		k.n++
	}
	return k, nil
}

// errNoDescriptor says a connection has no descriptor of its own.
var errNoDescriptor = errors.New("no descriptor")

// descriptors returns duplicates of the descriptors c reads from and
// writes to (one socket twice, or two pipes), for the caller to close.
func descriptors(c net.Conn) (rfd, wfd int, err error) {
	if dc, ok := c.(transports.DescriptorConn); ok {
		return dc.Descriptors()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, -1, errNoDescriptor
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, -1, err
	}
	fd, err := rawio.Dup(rc)
	if err != nil {
		return -1, -1, err
	}
	return fd, fd, nil
}

// closeFDs closes the descriptors fds that are open, each once.
func closeFDs(fds ...int) {
	done := map[int]bool{-1: true}
	for _, fd := range fds {
		if !done[fd] {
			unix.Close(fd)
			done[fd] = true
		}
	}
}

// isPipe reports whether fd is a pipe.
func isPipe(fd int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("fstat: %w", err)
	}
	return st.Mode&unix.S_IFMT == unix.S_IFIFO, nil
}

// directionMemory returns the kernel memory of the direction from the
// descriptor w to the descriptor r and the bytes waiting to be read at r
// (FIONREAD). For sockets, the memory is what SO_MEMINFO says the sender
// holds for sending (the larger of its write queue, SK_MEMINFO_WMEM_QUEUED,
// TCP's, and its allocated send memory, SK_MEMINFO_WMEM_ALLOC, which holds
// a Unix stream socket's queued data) plus what the receiver holds
// (SK_MEMINFO_RMEM_ALLOC and the backlog not yet processed); for a pipe,
// its capacity (F_GETPIPE_SZ), which bounds the pages it may hold.
func directionMemory(w, r int) (mem, readable int64, err error) {
	q, err := unix.IoctlGetInt(r, unix.TIOCINQ) // FIONREAD, SIOCINQ
	if err != nil {
		return 0, 0, fmt.Errorf("FIONREAD: %w", err)
	}
	pipe, err := isPipe(w)
	if err != nil {
		return 0, 0, err
	}
	if pipe {
		c, err := unix.FcntlInt(uintptr(w), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			return 0, 0, fmt.Errorf("F_GETPIPE_SZ: %w", err)
		}
		return int64(c), int64(q), nil
	}
	snd, err := memInfo(w)
	if err != nil {
		return 0, 0, err
	}
	rcv, err := memInfo(r)
	if err != nil {
		return 0, 0, err
	}
	mem = int64(max(snd[unix.SK_MEMINFO_WMEM_QUEUED], snd[unix.SK_MEMINFO_WMEM_ALLOC])) +
		int64(rcv[unix.SK_MEMINFO_RMEM_ALLOC]) + int64(rcv[unix.SK_MEMINFO_BACKLOG])
	return mem, int64(q), nil
}

// memInfo reads SO_MEMINFO of the socket fd.
func memInfo(fd int) ([unix.SK_MEMINFO_VARS]uint32, error) {
	var mi [unix.SK_MEMINFO_VARS]uint32
	size := uint32(unsafe.Sizeof(mi))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi)), uintptr(unsafe.Pointer(&size)), 0)
	if e != 0 {
		return mi, fmt.Errorf("SO_MEMINFO: %w", e)
	}
	return mi, nil
}
