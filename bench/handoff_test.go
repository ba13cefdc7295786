package bench

import (
	"fmt"
	"io"
	"testing"

	"github.com/ipcbench/ipcbench/internal/fanintest"
)

// BenchmarkHandoffFloor runs the fanin workload's per-message work (the
// bench loop's stamp, framing, clock reads, histogram and check; the
// peer's framed echo) in one process, over connections that are a buffer
// handed from goroutine to goroutine through channels: no transport, no
// second process, no system call. Its msg/s is a ceiling for what any
// transport can reach in the fanin workload with the same number of
// processors, and its ns per message what the goroutine hand-offs and the
// harness cost without one. Run it with -cpu 1,2:
//
//	go test -run '^$' -bench HandoffFloor -cpu 1,2 ./bench/
//
// With -cpu 1 the whole exchange shares one processor; a cross-process
// transport with one processor per process (ipcbench run -placement
// cross-core) splits the same work over two.
func BenchmarkHandoffFloor(b *testing.B) {
	for _, conns := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			handoffFanin(b, conns, 1024)
		})
	}
}

// handoffFanin runs b.N round trips of size-byte messages, split over
// conns connections made of two chanConns each.
func handoffFanin(b *testing.B, conns, size int) {
	pairs := make([]fanintest.Pair, conns)
	for i := range pairs {
		req, resp := newChanConn(), newChanConn()
		pairs[i] = fanintest.Pair{
			Client: struct {
				io.Reader
				io.Writer
			}{resp, req},
			Server: struct {
				io.Reader
				io.Writer
			}{req, resp},
		}
	}
	fanintest.Run(b, pairs, size)
}

// chanConn is one direction of a connection of handoffFanin: a buffer
// that the writer fills and the reader empties, handed over through
// channels of capacity 1, as a transport's waiting reader is woken by
// whatever publishes the bytes. One Write is in flight at a time.
type chanConn struct {
	buf       []byte
	data      chan int      // the length of a Write, to the reader
	free      chan struct{} // the buffer is free again, to the writer
	off, left int           // the reader's part of the current Write
}

func newChanConn() *chanConn {
	h := &chanConn{buf: make([]byte, 64<<10), data: make(chan int, 1), free: make(chan struct{}, 1)}
	h.free <- struct{}{}
	return h
}

func (h *chanConn) Write(p []byte) (int, error) {
	<-h.free
	n := copy(h.buf, p)
	h.data <- n
	if n < len(p) {
		return n, fmt.Errorf("chanConn: a Write of %d bytes, at most %d fit", len(p), len(h.buf))
	}
	return n, nil
}

func (h *chanConn) Read(p []byte) (int, error) {
	if h.left == 0 {
		h.off, h.left = 0, <-h.data
	}
	n := copy(p, h.buf[h.off:h.off+h.left])
	h.off += n
	h.left -= n
	if h.left == 0 {
		h.free <- struct{}{}
	}
	return n, nil
}
