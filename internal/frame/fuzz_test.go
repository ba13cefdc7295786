package frame

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// chunkReader returns at most chunk bytes per Read (all that is left when
// chunk is 0), and io.EOF together with the last bytes.
type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if r.chunk > 0 && n > r.chunk {
		n = r.chunk
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	if len(r.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// fuzzDecode decodes data with cfg through a read buffer of bufSize bytes
// and reads of at most chunk bytes, and checks the decoder's invariants:
// no message over MaxSize, no memory over MaxSize, only the documented
// errors, sticky failures, and that re-encoding the decoded messages gives
// back the bytes they were decoded from.
func fuzzDecode(t *testing.T, cfg Config, data []byte, bufSize, chunk uint8) {
	t.Helper()
	norm, err := cfg.Normalize()
	if err != nil {
		t.Fatalf("fuzz config %+v: %v", cfg, err)
	}
	r := NewReaderSize(&chunkReader{data: data, chunk: int(chunk)}, cfg, int(bufSize))
	// An odd bufSize reads as from a CheapCalls stream, with a direct
	// threshold low enough for the small caller buffers below.
	if bufSize%2 == 1 {
		r.direct, r.directMin = true, int(chunk%16)+1
	}
	maxBuf := max(int(bufSize), minReadBuffer, norm.MaxSize+DelimiterLen)
	var msgs [][]byte
	var end error
	for i := 0; ; i++ {
		if i > len(data)+1 {
			t.Fatalf("%d messages from %d bytes", i, len(data))
		}
		// Alternate between Reader-owned memory and a small caller
		// buffer.
		var dst []byte
		if i%2 == 1 {
			dst = make([]byte, 0, int(chunk))
		}
		msg, err := r.ReadMsg(dst)
		if cap(r.big) > norm.MaxSize || len(r.buf) > maxBuf {
			t.Fatalf("Reader holds %d + %d bytes with MaxSize %d", cap(r.big), len(r.buf), norm.MaxSize)
		}
		if err != nil {
			end = err
			break
		}
		if len(msg) > norm.MaxSize {
			t.Fatalf("message of %d bytes over MaxSize %d", len(msg), norm.MaxSize)
		}
		switch norm.Mode {
		case Fixed:
			if len(msg) != norm.Size {
				t.Fatalf("fixed message of %d bytes, want %d", len(msg), norm.Size)
			}
		case Delimited:
			if bytes.IndexByte(msg, norm.Delim) >= 0 {
				t.Fatalf("delimited message contains the delimiter")
			}
		}
		msgs = append(msgs, bytes.Clone(msg))
	}
	switch {
	case end == io.EOF:
	case errors.Is(end, ErrTooLarge):
	case errors.Is(end, ErrTruncated) && errors.Is(end, io.ErrUnexpectedEOF):
	default:
		t.Fatalf("unexpected error: %v", end)
	}
	if end != io.EOF {
		if _, again := r.ReadMsg(nil); again != end {
			t.Fatalf("error not sticky: %v then %v", end, again)
		}
	}

	// Re-encode: framing is canonical, so the messages must give back
	// the bytes they came from, all of them after a clean end.
	var enc bytes.Buffer
	w := NewWriter(&enc, cfg)
	for _, m := range msgs {
		if err := w.WriteMsg(m); err != nil {
			t.Fatalf("re-encoding a decoded message: %v", err)
		}
	}
	if !bytes.HasPrefix(data, enc.Bytes()) {
		t.Fatalf("re-encoded messages are not a prefix of the input")
	}
	if end == io.EOF && enc.Len() != len(data) {
		t.Fatalf("clean end after %d of %d bytes", enc.Len(), len(data))
	}
	// And decode the re-encoding again.
	r2 := NewReader(&enc, cfg)
	for i, m := range msgs {
		got, err := r2.ReadMsg(nil)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("round trip of message %d: %v", i, err)
		}
	}
	if _, err := r2.ReadMsg(nil); err != io.EOF {
		t.Fatalf("round trip end: %v", err)
	}
}

func FuzzLengthPrefix(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x02hi\x00\x00\x00\x00"), uint16(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16, bufSize, chunk uint8) {
		fuzzDecode(t, Config{Mode: LengthPrefix, MaxSize: int(maxSize)}, data, bufSize, chunk)
	})
}

func FuzzFixed(f *testing.F) {
	f.Add([]byte("abcdefgh"), uint16(3), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, size uint16, bufSize, chunk uint8) {
		fuzzDecode(t, Config{Mode: Fixed, Size: int(size) + 1}, data, bufSize, chunk)
	})
}

func FuzzDelimited(f *testing.F) {
	f.Add([]byte("hi\n\nthere\n"), uint16(0), byte(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, maxSize uint16, delim byte, bufSize, chunk uint8) {
		fuzzDecode(t, Config{Mode: Delimited, MaxSize: int(maxSize), Delim: delim}, data, bufSize, chunk)
	})
}
