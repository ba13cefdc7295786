package peer

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// FuzzDecodeAck checks DecodeAck, the stream workload's reader of a sink's
// acknowledgement: an error wraps ErrBadAck; an accepted payload has
// counts >= 0, is at most MaxAckLen bytes, and is exactly what EncodeAck
// makes of the counts (one spelling per acknowledgement); and what
// EncodeAck makes of counts >= 0 decodes to them.
func FuzzDecodeAck(f *testing.F) {
	f.Add(EncodeAck(nil, Ack{Messages: 10, Bytes: 640, Errors: 0}))
	f.Add(EncodeAck(nil, Ack{Messages: math.MaxInt64, Bytes: math.MaxInt64, Errors: math.MaxInt64}))
	f.Add(EncodeAck(nil, Ack{Messages: -1}))
	f.Add([]byte("ipcbench-ack/1 messages=01 bytes=0 errors=0"))
	f.Add([]byte("ipcbench-ack/1 messages=+1 bytes=0 errors=0"))
	f.Add([]byte("ipcbench-ack/1 messages=9223372036854775808 bytes=0 errors=0"))
	f.Add([]byte("ipcbench-ack/1 messages=1 bytes=0"))
	f.Add([]byte("ipcbench-ack/2 messages=1 bytes=0 errors=0"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAck(b)
		if err != nil {
			if !errors.Is(err, ErrBadAck) {
				t.Fatalf("DecodeAck(%q): error does not wrap ErrBadAck: %v", b, err)
			}
		} else {
			if a.Messages < 0 || a.Bytes < 0 || a.Errors < 0 {
				t.Fatalf("DecodeAck(%q) = %+v: a negative count", b, a)
			}
			if len(b) > MaxAckLen || !bytes.Equal(EncodeAck(nil, a), b) {
				t.Fatalf("DecodeAck(%q) = %+v, which EncodeAck spells %q", b, a, EncodeAck(nil, a))
			}
		}
		// The bytes as counts: what EncodeAck makes of them decodes back.
		var in [3]int64
		for i := range in {
			var x uint64
			for j := 0; j < 8 && 8*i+j < len(b); j++ {
				x = x<<8 | uint64(b[8*i+j])
			}
			in[i] = int64(x >> 1)
		}
		want := Ack{Messages: in[0], Bytes: in[1], Errors: in[2]}
		if got, err := DecodeAck(EncodeAck(nil, want)); err != nil || got != want {
			t.Fatalf("DecodeAck(EncodeAck(%+v)) = %+v, %v", want, got, err)
		}
	})
}
