//go:build !race

package rawio

import (
	"net"
	"testing"
)

// TestPollIOAllocatesNothing: a Write, a WriteBuffers and the Read of
// their bytes allocate nothing, on a pipe and on a socket.
func TestPollIOAllocatesNothing(t *testing.T) {
	for _, kind := range []string{"pipe", "socket"} {
		e := newPollEnds(t, kind)
		msg, b := []byte("0123456789"), make([]byte, 64)
		var bufs [2][]byte
		var v net.Buffers // reused, as a frame.Writer does: a Buffers the writer points at escapes
		allocs := testing.AllocsPerRun(100, func() {
			e.wr.Write(msg)
			bufs[0], bufs[1] = msg[:4], msg[4:]
			v = bufs[:]
			e.wr.WriteBuffers(&v)
			for got := 0; got < 2*len(msg); {
				n, err := e.rd.Read(b)
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Write, WriteBuffers and Reads, want 0", kind, allocs)
		}
	}
}
