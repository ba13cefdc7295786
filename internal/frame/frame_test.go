package frame

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// shortWriter accepts at most max bytes per Write, without an error, as a
// badly behaved stream might; the Writer must carry on.
type shortWriter struct {
	buf   bytes.Buffer
	max   int
	calls int
}

func (w *shortWriter) Write(p []byte) (int, error) {
	w.calls++
	if len(p) > w.max {
		p = p[:w.max]
	}
	return w.buf.Write(p)
}

// countingWriter counts Write calls.
type countingWriter struct {
	buf   bytes.Buffer
	calls int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls++
	return w.buf.Write(p)
}

// countingReader counts Read calls.
type countingReader struct {
	r     io.Reader
	calls int
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.calls++
	return r.r.Read(p)
}

// scriptedReader returns its steps in order: data, then error.
type scriptedReader struct {
	steps []step
}

type step struct {
	data []byte
	err  error
}

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := &r.steps[0]
	n := copy(p, s.data)
	s.data = s.data[n:]
	if len(s.data) > 0 {
		return n, nil
	}
	err := s.err
	r.steps = r.steps[1:]
	return n, err
}

// configs returns one config per mode for messages of the given size.
func configs(size int) []Config {
	return []Config{
		{Mode: LengthPrefix},
		{Mode: Fixed, Size: max(size, 1)},
		{Mode: Delimited},
		{Mode: Delimited, Delim: 0xff, MaxSize: 1 << 20},
	}
}

// payload returns a filled payload that is valid for cfg.
func payload(tb testing.TB, cfg Config, size int, seq uint64) []byte {
	tb.Helper()
	p := make([]byte, size)
	Fill(p, 7, seq)
	if cfg.Mode == Delimited && cfg.Delim != 0 {
		for i := range p {
			if p[i] == cfg.Delim {
				p[i] = 'x'
			}
		}
	}
	return p
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"length", LengthPrefix, false},
		{"fixed", Fixed, false},
		{"delimited", Delimited, false},
		{"", 0, true},
		{"Length", 0, true},
		{"lines", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMode(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadConfig) {
					t.Fatalf("ParseMode(%q) error = %v, want ErrBadConfig", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMode(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("%v.String() = %q, want %q", got, got.String(), tt.in)
			}
		})
	}
	if s := Mode(9).String(); s != "Mode(9)" {
		t.Errorf("Mode(9).String() = %q", s)
	}
}

func TestBadConfig(t *testing.T) {
	// A variable, not a constant: int(overPrefix) must compile where an
	// int cannot hold it (32-bit), and the case is skipped there.
	overPrefix := uint64(MaxLengthPrefix) + 1
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative max", Config{MaxSize: -1}},
		{"unknown mode", Config{Mode: Mode(7)}},
		{"fixed zero size", Config{Mode: Fixed}},
		{"fixed negative size", Config{Mode: Fixed, Size: -3}},
		{"fixed size over max", Config{Mode: Fixed, Size: 11, MaxSize: 10}},
		{"length max over prefix", Config{MaxSize: int(overPrefix)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "length max over prefix" && overPrefix > math.MaxInt {
				t.Skipf("MaxSize is an int: none exceeds MaxLengthPrefix on a %d-bit platform", strconv.IntSize)
			}
			if _, err := tt.cfg.Normalize(); !errors.Is(err, ErrBadConfig) {
				t.Errorf("Normalize() error = %v, want ErrBadConfig", err)
			}
			var out bytes.Buffer
			if err := NewWriter(&out, tt.cfg).WriteMsg([]byte("x")); !errors.Is(err, ErrBadConfig) {
				t.Errorf("WriteMsg error = %v, want ErrBadConfig", err)
			}
			if out.Len() != 0 {
				t.Errorf("WriteMsg wrote %d bytes with a bad config", out.Len())
			}
			if _, err := NewReader(strings.NewReader("abc\n"), tt.cfg).ReadMsg(nil); !errors.Is(err, ErrBadConfig) {
				t.Errorf("ReadMsg error = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestNormalizeDefaults(t *testing.T) {
	c, err := Config{Mode: Delimited}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxSize != DefaultMaxSize || c.Delim != DefaultDelim {
		t.Errorf("Normalize() = %+v, want MaxSize %d and Delim %q", c, DefaultMaxSize, DefaultDelim)
	}
}

// TestWireFormat pins the bytes each mode puts on the wire.
func TestWireFormat(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		msgs []string
		want string
	}{
		{"length", Config{}, []string{"hi", "", "abc"}, "\x00\x00\x00\x02hi\x00\x00\x00\x00\x00\x00\x00\x03abc"},
		{"fixed", Config{Mode: Fixed, Size: 3}, []string{"abc", "d\ne"}, "abcd\ne"},
		{"delimited", Config{Mode: Delimited}, []string{"hi", "", "a b"}, "hi\n\na b\n"},
		{"delimited custom", Config{Mode: Delimited, Delim: 0}, []string{"x"}, "x\n"},
		{"delimited nul-free", Config{Mode: Delimited, Delim: '|'}, []string{"a\nb", "c"}, "a\nb|c|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out, tt.cfg)
			for _, m := range tt.msgs {
				if err := w.WriteMsg([]byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			if out.String() != tt.want {
				t.Fatalf("wire = %q, want %q", out.String(), tt.want)
			}
			r := NewReader(&out, tt.cfg)
			for i, m := range tt.msgs {
				got, err := r.ReadMsg(nil)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if string(got) != m {
					t.Fatalf("message %d = %q, want %q", i, got, m)
				}
			}
			if _, err := r.ReadMsg(nil); err != io.EOF {
				t.Fatalf("after last message: err = %v, want io.EOF itself", err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, HeaderLen, 100, 4096, CoalesceLimit, CoalesceLimit + 1, ReadBufferSize - LengthHeaderLen, ReadBufferSize + 10, 300 << 10}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"onebyte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"dataerr", iotest.DataErrReader},
	}
	writers := []struct {
		name string
		max  int
	}{
		{"whole", 1 << 30},
		{"short7", 7},
		{"short4k", 4096},
	}
	for _, size := range sizes {
		for _, cfg := range configs(size) {
			if cfg.Mode == Fixed && size == 0 {
				continue
			}
			for _, wr := range writers {
				if wr.max < 4096 && size > 4096 {
					continue // correct, but slow: one call per 7 bytes
				}
				for _, rd := range readers {
					if rd.name == "onebyte" && size > 4096 {
						continue
					}
					name := fmt.Sprintf("%v/delim=%#x/size=%d/%s/%s", cfg.Mode, cfg.Delim, size, wr.name, rd.name)
					t.Run(name, func(t *testing.T) {
						roundTrip(t, cfg, size, wr.max, rd.wrap)
					})
				}
			}
		}
	}
}

func roundTrip(t *testing.T, cfg Config, size, maxWrite int, wrap func(io.Reader) io.Reader) {
	t.Helper()
	const n = 3
	out := &shortWriter{max: maxWrite}
	w := NewWriter(out, cfg)
	var want [][]byte
	for i := range n {
		p := payload(t, cfg, size, uint64(i))
		want = append(want, p)
		if err := w.WriteMsg(p); err != nil {
			t.Fatalf("WriteMsg %d: %v", i, err)
		}
	}
	r := NewReader(wrap(&out.buf), cfg)
	for i := range n {
		// Alternate between no buffer (Reader-owned memory) and a
		// buffer large enough (the result must then live in it).
		var dst []byte
		if i%2 == 1 {
			dst = make([]byte, 0, size)
		}
		got, err := r.ReadMsg(dst)
		if err != nil {
			t.Fatalf("ReadMsg %d: %v", i, err)
		}
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("message %d: got %d bytes, want %d (first diff)", i, len(got), len(want[i]))
		}
		if dst != nil && size > 0 && &got[0] != &dst[:1][0] {
			t.Fatalf("message %d fits the caller's buffer but was not returned in it", i)
		}
	}
	if _, err := r.ReadMsg(nil); err != io.EOF {
		t.Fatalf("at end: err = %v, want io.EOF", err)
	}
}

// TestOverOSPipe runs messages larger than a pipe's buffer through a real
// pipe, where writes and reads are partial.
func TestOverOSPipe(t *testing.T) {
	for _, cfg := range configs(200 << 10) {
		t.Run(fmt.Sprintf("%v/%#x", cfg.Mode, cfg.Delim), func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pr.Close(); pw.Close() })
			sizes := []int{1, 64, 200 << 10, 70 << 10, 5}
			if cfg.Mode == Fixed {
				sizes = []int{cfg.Size, cfg.Size, cfg.Size}
			}
			errc := make(chan error, 1)
			go func() {
				w := NewWriter(pw, cfg)
				for i, s := range sizes {
					if err := w.WriteMsg(payload(t, cfg, s, uint64(i))); err != nil {
						errc <- err
						return
					}
				}
				errc <- pw.Close()
			}()
			r := NewReader(pr, cfg)
			for i, s := range sizes {
				got, err := r.ReadMsg(nil)
				if err != nil {
					t.Fatalf("ReadMsg %d: %v", i, err)
				}
				if !bytes.Equal(got, payload(t, cfg, s, uint64(i))) {
					t.Fatalf("message %d differs", i)
				}
			}
			if _, err := r.ReadMsg(nil); err != io.EOF {
				t.Fatalf("at end: %v, want io.EOF", err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestWriterCallsPerMessage(t *testing.T) {
	tests := []struct {
		cfg       Config
		size      int
		wantCalls int
	}{
		{Config{}, 0, 1},
		{Config{}, 64, 1},
		{Config{}, CoalesceLimit, 1},
		{Config{}, CoalesceLimit + 1, 2},
		{Config{}, 1 << 20, 2},
		{Config{Mode: Fixed, Size: 64}, 64, 1},
		{Config{Mode: Fixed, Size: 1 << 20}, 1 << 20, 1},
		{Config{Mode: Delimited}, 64, 1},
		{Config{Mode: Delimited}, CoalesceLimit, 1},
		{Config{Mode: Delimited}, CoalesceLimit + 1, 2},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%d", tt.cfg.Mode, tt.size), func(t *testing.T) {
			var cw countingWriter
			w := NewWriter(&cw, tt.cfg)
			p := payload(t, tt.cfg, tt.size, 1)
			if err := w.WriteMsg(p); err != nil {
				t.Fatal(err)
			}
			if cw.calls != tt.wantCalls {
				t.Errorf("Write calls = %d, want %d", cw.calls, tt.wantCalls)
			}
		})
	}
}

func TestReaderOneReadPerSmallMessage(t *testing.T) {
	for _, cfg := range configs(64) {
		t.Run(fmt.Sprintf("%v/%#x", cfg.Mode, cfg.Delim), func(t *testing.T) {
			var buf bytes.Buffer
			if err := NewWriter(&buf, cfg).WriteMsg(payload(t, cfg, 64, 0)); err != nil {
				t.Fatal(err)
			}
			cr := &countingReader{r: &buf}
			if _, err := NewReader(cr, cfg).ReadMsg(nil); err != nil {
				t.Fatal(err)
			}
			if cr.calls != 1 {
				t.Errorf("Read calls = %d, want 1", cr.calls)
			}
		})
	}
}

func TestManySmallMessagesFewReads(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Config{})
	const n = 1000
	for i := range n {
		if err := w.WriteMsg(payload(t, Config{}, 32, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	cr := &countingReader{r: &buf}
	r := NewReader(cr, Config{})
	for i := range n {
		got, err := r.ReadMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(got, 7, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// 36 KB of frames fit one read buffer.
	if cr.calls > 2 {
		t.Errorf("Read calls = %d for %d small buffered messages, want at most 2", cr.calls, n)
	}
}

// TestLargePayloadReadDirect checks that a payload larger than the read
// buffer goes straight into the caller's buffer: after the first read
// (which fills the internal buffer) the stream is read into the
// destination, so there are few, large reads.
func TestLargePayloadReadDirect(t *testing.T) {
	const size = 1 << 20
	var buf bytes.Buffer
	p := payload(t, Config{}, size, 3)
	if err := NewWriter(&buf, Config{}).WriteMsg(p); err != nil {
		t.Fatal(err)
	}
	cr := &countingReader{r: &buf}
	r := NewReader(cr, Config{})
	dst := make([]byte, size)
	got, err := r.ReadMsg(dst)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0] != &dst[0] || !bytes.Equal(got, p) {
		t.Fatal("large payload not returned in the caller's buffer")
	}
	if cr.calls != 2 {
		t.Errorf("Read calls = %d, want 2 (buffer fill, then the rest directly)", cr.calls)
	}
	if r.big != nil {
		t.Errorf("Reader allocated %d bytes although the caller's buffer fit", cap(r.big))
	}
}

func TestEOF(t *testing.T) {
	for _, cfg := range configs(5) {
		t.Run(fmt.Sprintf("%v/%#x", cfg.Mode, cfg.Delim), func(t *testing.T) {
			r := NewReader(strings.NewReader(""), cfg)
			for range 2 {
				if _, err := r.ReadMsg(nil); err != io.EOF {
					t.Fatalf("empty stream: err = %v, want io.EOF itself", err)
				}
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	big := make([]byte, LengthHeaderLen+ReadBufferSize+100)
	copy(big, []byte{0, 1, 0, 0}) // claims 65536 bytes... of which 100+ are missing
	tests := []struct {
		name  string
		cfg   Config
		input string
	}{
		{"length in prefix", Config{}, "\x00\x00"},
		{"length in payload", Config{}, "\x00\x00\x00\x05abc"},
		{"length after frame in prefix", Config{}, "\x00\x00\x00\x01a\x00"},
		{"length large payload", Config{}, string(big[:LengthHeaderLen+ReadBufferSize-1])},
		{"fixed short", Config{Mode: Fixed, Size: 4}, "abcdef"},
		{"fixed large", Config{Mode: Fixed, Size: ReadBufferSize * 2}, string(big)},
		{"delimited no delimiter", Config{Mode: Delimited}, "abc\ndef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader} {
				r := NewReader(wrap(strings.NewReader(tt.input)), tt.cfg)
				var err error
				for i := 0; i < 10 && err == nil; i++ {
					_, err = r.ReadMsg(nil)
				}
				if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want ErrTruncated and io.ErrUnexpectedEOF", err)
				}
				if _, err2 := r.ReadMsg(nil); err2 != err {
					t.Fatalf("next ReadMsg err = %v, want the same error again", err2)
				}
			}
		})
	}
}

func TestLengthTooLarge(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		prefix []byte
		want   string
	}{
		{"over small max", Config{MaxSize: 100}, []byte{0, 0, 0, 101}, "frame length 101 exceeds maximum 100"},
		{"huge", Config{}, []byte{0xff, 0xff, 0xff, 0xff}, fmt.Sprintf("frame length 4294967295 exceeds maximum %d", DefaultMaxSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The claimed payload is not in the stream: the error must
			// come from the prefix alone, before any payload read.
			cr := &countingReader{r: bytes.NewReader(tt.prefix)}
			r := NewReader(cr, tt.cfg)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := r.ReadMsg(nil)
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("ReadMsg allocated %d bytes for an oversized frame", n)
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to say %q", err, tt.want)
			}
			if r.big != nil {
				t.Errorf("Reader allocated %d bytes for an oversized frame", cap(r.big))
			}
			if cr.calls != 1 {
				t.Errorf("Read calls = %d, want 1", cr.calls)
			}
			if _, err2 := r.ReadMsg(nil); !errors.Is(err2, ErrTooLarge) {
				t.Errorf("next ReadMsg err = %v, want ErrTooLarge again", err2)
			}
		})
	}
}

func TestDelimitedTooLarge(t *testing.T) {
	cfg := Config{Mode: Delimited, MaxSize: 10}
	tests := []struct {
		name    string
		input   string
		wantOK  int // messages read before the error
		wantErr error
	}{
		{"exactly max", "0123456789\n", 1, io.EOF},
		{"one over with delimiter", "0123456789a\n", 0, ErrTooLarge},
		{"no delimiter", strings.Repeat("x", 50), 0, ErrTooLarge},
		{"after a good one", "ok\n" + strings.Repeat("y", 20) + "\n", 1, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, wrap := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.OneByteReader} {
				r := NewReader(wrap(strings.NewReader(tt.input)), cfg)
				ok := 0
				var err error
				for {
					_, err = r.ReadMsg(nil)
					if err != nil {
						break
					}
					ok++
				}
				if ok != tt.wantOK || !errors.Is(err, tt.wantErr) {
					t.Fatalf("read %d then %v; want %d then %v", ok, err, tt.wantOK, tt.wantErr)
				}
				if len(r.buf) > cfg.MaxSize+DelimiterLen {
					t.Fatalf("read buffer grew to %d bytes, over MaxSize+1", len(r.buf))
				}
			}
		})
	}
}

func TestDelimitedLongerThanBuffer(t *testing.T) {
	cfg := Config{Mode: Delimited, MaxSize: 1 << 20}
	var buf bytes.Buffer
	w := NewWriter(&buf, cfg)
	sizes := []int{10, ReadBufferSize * 3, 5, ReadBufferSize + 1}
	for i, s := range sizes {
		if err := w.WriteMsg(payload(t, cfg, s, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(iotest.HalfReader(&buf), cfg)
	for i, s := range sizes {
		got, err := r.ReadMsg(nil)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := Check(got, 7, uint64(i)); err != nil || len(got) != s {
			t.Fatalf("message %d: %d bytes, %v", i, len(got), err)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		msg  []byte
		want error
	}{
		{"length over max", Config{MaxSize: 4}, []byte("12345"), ErrTooLarge},
		{"delimited over max", Config{Mode: Delimited, MaxSize: 4}, []byte("12345"), ErrTooLarge},
		{"delimited contains delimiter", Config{Mode: Delimited}, []byte("a\nb"), ErrMalformed},
		{"delimited large contains delimiter", Config{Mode: Delimited}, append(bytes.Repeat([]byte("a"), CoalesceLimit+5), '\n'), ErrMalformed},
		{"delimited custom", Config{Mode: Delimited, Delim: 'z'}, []byte("xyz"), ErrMalformed},
		{"fixed short", Config{Mode: Fixed, Size: 4}, []byte("123"), ErrMalformed},
		{"fixed long", Config{Mode: Fixed, Size: 4}, []byte("12345"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out, tt.cfg)
			if err := w.WriteMsg(tt.msg); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if out.Len() != 0 {
				t.Fatalf("%d bytes written for a rejected message", out.Len())
			}
			// The Writer stays usable.
			ok := []byte("1234")
			if err := w.WriteMsg(ok); err != nil {
				t.Fatalf("next valid WriteMsg: %v", err)
			}
		})
	}
}

// failWriter writes up to accept bytes in total, then fails.
type failWriter struct {
	accept int
	err    error
	buf    bytes.Buffer
}

func (w *failWriter) Write(p []byte) (int, error) {
	if w.accept >= len(p) {
		w.accept -= len(p)
		return w.buf.Write(p)
	}
	n, _ := w.buf.Write(p[:w.accept])
	w.accept = 0
	return n, w.err
}

// zeroWriter reports success without writing anything.
type zeroWriter struct{}

func (zeroWriter) Write(p []byte) (int, error) { return 0, nil }

func TestWriterErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("before any byte: usable", func(t *testing.T) {
		fw := &failWriter{accept: 0, err: boom}
		w := NewWriter(fw, Config{})
		if err := w.WriteMsg([]byte("abc")); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		fw.accept = 100
		if err := w.WriteMsg([]byte("abc")); err != nil {
			t.Fatalf("after a clean failure: %v", err)
		}
		if got := fw.buf.String(); got != "\x00\x00\x00\x03abc" {
			t.Fatalf("wire = %q", got)
		}
	})
	t.Run("mid frame: sticky", func(t *testing.T) {
		fw := &failWriter{accept: 2, err: boom}
		w := NewWriter(fw, Config{})
		err := w.WriteMsg([]byte("abc"))
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "2 of 7") {
			t.Fatalf("err = %v, want boom after 2 of 7 bytes", err)
		}
		fw.accept = 100
		if err2 := w.WriteMsg([]byte("abc")); err2 != err {
			t.Fatalf("next WriteMsg = %v, want the sticky error", err2)
		}
	})
	t.Run("large mid frame: sticky", func(t *testing.T) {
		fw := &failWriter{accept: LengthHeaderLen, err: boom}
		w := NewWriter(fw, Config{})
		if err := w.WriteMsg(make([]byte, CoalesceLimit+1)); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		if err := w.WriteMsg(nil); !errors.Is(err, boom) {
			t.Fatalf("next WriteMsg = %v, want sticky boom", err)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		if err := NewWriter(zeroWriter{}, Config{}).WriteMsg([]byte("x")); !errors.Is(err, io.ErrShortWrite) {
			t.Fatalf("err = %v, want io.ErrShortWrite", err)
		}
	})
}

// TestReaderResumesAfterTimeout checks that a stream error (a deadline)
// inside a frame that fits the read buffer leaves the Reader usable: the
// next ReadMsg resumes and returns the whole message.
func TestReaderResumesAfterTimeout(t *testing.T) {
	for _, cfg := range configs(10) {
		t.Run(fmt.Sprintf("%v/%#x", cfg.Mode, cfg.Delim), func(t *testing.T) {
			var buf bytes.Buffer
			p := payload(t, cfg, 10, 1)
			if err := NewWriter(&buf, cfg).WriteMsg(p); err != nil {
				t.Fatal(err)
			}
			wire := buf.Bytes()
			for cut := 0; cut < len(wire); cut++ {
				sr := &scriptedReader{steps: []step{
					{wire[:cut], os.ErrDeadlineExceeded},
					{wire[cut:], nil},
				}}
				r := NewReader(sr, cfg)
				if _, err := r.ReadMsg(nil); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("cut %d: err = %v, want the deadline error", cut, err)
				}
				got, err := r.ReadMsg(nil)
				if err != nil || !bytes.Equal(got, p) {
					t.Fatalf("cut %d: retry = %q, %v; want the message", cut, got, err)
				}
				if _, err := r.ReadMsg(nil); err != io.EOF {
					t.Fatalf("cut %d: at end %v", cut, err)
				}
			}
		})
	}
}

func TestReaderLargeFrameErrors(t *testing.T) {
	boom := errors.New("boom")
	size := ReadBufferSize * 2
	var buf bytes.Buffer
	p := payload(t, Config{}, size, 1)
	if err := NewWriter(&buf, Config{}).WriteMsg(p); err != nil {
		t.Fatal(err)
	}
	wire := buf.Bytes()
	t.Run("error after header only: resumable", func(t *testing.T) {
		sr := &scriptedReader{steps: []step{{wire[:LengthHeaderLen], boom}, {wire[LengthHeaderLen:], nil}}}
		r := NewReader(sr, Config{})
		if _, err := r.ReadMsg(nil); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		got, err := r.ReadMsg(nil)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("retry: %d bytes, %v", len(got), err)
		}
	})
	// Also on a CheapCalls stream, whose Reader reads large payloads
	// straight into the caller's buffer: past the internal buffer's size
	// there is nowhere to keep a partial frame.
	for _, wrap := range []func(io.Reader) io.Reader{
		func(r io.Reader) io.Reader { return r },
		func(r io.Reader) io.Reader { return cheapReader{r} },
	} {
		t.Run("error mid payload: sticky", func(t *testing.T) {
			sr := &scriptedReader{steps: []step{{wire[:ReadBufferSize+10], boom}, {wire[ReadBufferSize+10:], nil}}}
			r := NewReader(wrap(sr), Config{})
			_, err := r.ReadMsg(make([]byte, size))
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want boom", err)
			}
			if _, err2 := r.ReadMsg(nil); err2 != err {
				t.Fatalf("next ReadMsg = %v, want the sticky error", err2)
			}
		})
	}
}

// emptyReader never returns data nor an error.
type emptyReader struct{}

func (emptyReader) Read(p []byte) (int, error) { return 0, nil }

func TestReaderNoProgress(t *testing.T) {
	for _, cfg := range configs(ReadBufferSize * 2) {
		r := NewReader(emptyReader{}, cfg)
		if _, err := r.ReadMsg(nil); !errors.Is(err, io.ErrNoProgress) {
			t.Errorf("%v: err = %v, want io.ErrNoProgress", cfg.Mode, err)
		}
	}
}

// TestBigBufferGrowsWithData checks that a large length prefix makes the
// Reader allocate in proportion to the bytes that arrive, not to the
// claimed length.
func TestBigBufferGrowsWithData(t *testing.T) {
	in := []byte{0x01, 0x00, 0x00, 0x00} // 16 MiB claimed
	in = append(in, make([]byte, ReadBufferSize)...)
	r := NewReader(bytes.NewReader(in), Config{})
	if _, err := r.ReadMsg(nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want ErrTruncated", err)
	}
	if c := cap(r.big); c > bigGrowStep {
		t.Errorf("allocated %d bytes for %d bytes received", c, len(in))
	}
}

// loop is an in-memory byte stream for allocation tests.
type loop struct{ bytes.Buffer }

func TestZeroAllocs(t *testing.T) {
	tests := []struct {
		cfg    Config
		size   int
		useDst bool
	}{
		{Config{}, 64, false},
		{Config{}, 64, true},
		{Config{}, 4096, true},
		{Config{}, CoalesceLimit + 100, false},
		{Config{}, 256 << 10, true},
		{Config{Mode: Fixed, Size: 64}, 64, false},
		{Config{Mode: Fixed, Size: 200 << 10}, 200 << 10, false},
		{Config{Mode: Delimited}, 64, true},
		{Config{Mode: Delimited}, 100 << 10, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%d/dst=%v", tt.cfg.Mode, tt.size, tt.useDst), func(t *testing.T) {
			var s loop
			s.Grow(2 * (tt.size + 16))
			w := NewWriter(&s, tt.cfg)
			r := NewReader(&s, tt.cfg)
			p := payload(t, tt.cfg, tt.size, 1)
			var dst []byte
			if tt.useDst {
				dst = make([]byte, tt.size)
			}
			seq := uint64(0)
			once := func() {
				seq++
				Stamp(p, 7, seq)
				if err := w.WriteMsg(p); err != nil {
					t.Fatal(err)
				}
				got, err := r.ReadMsg(dst)
				if err != nil {
					t.Fatal(err)
				}
				if err := Check(got, 7, seq); err != nil {
					t.Fatal(err)
				}
			}
			once() // grow buffers
			if a := testing.AllocsPerRun(50, once); a != 0 {
				t.Errorf("%v allocations per message, want 0", a)
			}
		})
	}
}

func TestResetReusesReaderAndWriter(t *testing.T) {
	var a, b bytes.Buffer
	w := NewWriter(&a, Config{})
	if err := w.WriteMsg([]byte("one")); err != nil {
		t.Fatal(err)
	}
	w.Reset(&b)
	if err := w.WriteMsg([]byte("two")); err != nil {
		t.Fatal(err)
	}
	// A reader left with a truncated frame and its sticky error starts
	// clean after Reset.
	trunc := bytes.NewReader(append(a.Bytes(), 0, 0))
	r := NewReader(trunc, Config{})
	if msg, err := r.ReadMsg(nil); err != nil || string(msg) != "one" {
		t.Fatalf("first read: %q %v", msg, err)
	}
	if _, err := r.ReadMsg(nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated read: %v", err)
	}
	r.Reset(&b)
	if msg, err := r.ReadMsg(nil); err != nil || string(msg) != "two" {
		t.Fatalf("after Reset: %q %v", msg, err)
	}
	if _, err := r.ReadMsg(nil); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// cheapReader and cheapWriter say their calls are cheap (CheapCalls), as
// shared-memory connections do.
type cheapReader struct{ io.Reader }

func (cheapReader) CheapCalls() bool { return true }

type cheapWriter struct{ io.Writer }

func (cheapWriter) CheapCalls() bool { return true }

// notCheap wraps a stream but says its calls are not cheap.
type notCheap struct{ io.Writer }

func (notCheap) CheapCalls() bool { return false }

// recordingReader records the size of every Read it is asked for.
type recordingReader struct {
	r     io.Reader
	asked []int
}

func (r *recordingReader) Read(p []byte) (int, error) {
	r.asked = append(r.asked, len(p))
	return r.r.Read(p)
}

func (*recordingReader) CheapCalls() bool { return true }

func TestCheapCallsWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		w     func(io.Writer) io.Writer
		size  int
		calls int
	}{
		{"cheap small payload coalesced", func(w io.Writer) io.Writer { return cheapWriter{w} }, DirectMin - 1, 1},
		{"cheap large payload separate", func(w io.Writer) io.Writer { return cheapWriter{w} }, DirectMin, 2},
		{"cheap payload at the coalesce limit separate", func(w io.Writer) io.Writer { return cheapWriter{w} }, CoalesceLimit, 2},
		{"ordinary large payload coalesced", func(w io.Writer) io.Writer { return w }, DirectMin, 1},
		{"wrapper saying not cheap coalesced", func(w io.Writer) io.Writer { return notCheap{w} }, DirectMin, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cfg := range []Config{{}, {Mode: Delimited}} {
				cw := &countingWriter{}
				w := NewWriter(tc.w(cw), cfg)
				p := payload(t, cfg, tc.size, 1)
				if err := w.WriteMsg(p); err != nil {
					t.Fatal(err)
				}
				if cw.calls != tc.calls {
					t.Errorf("%v: %d Write calls, want %d", cfg.Mode, cw.calls, tc.calls)
				}
				got, err := NewReader(&cw.buf, cfg).ReadMsg(nil)
				if err != nil || !bytes.Equal(got, p) {
					t.Errorf("%v: read back %d bytes, %v", cfg.Mode, len(got), err)
				}
				// Reset onto an ordinary stream coalesces again.
				cw2 := &countingWriter{}
				w.Reset(cw2)
				if err := w.WriteMsg(payload(t, cfg, DirectMin, 2)); err != nil || cw2.calls != 1 {
					t.Errorf("%v: after Reset onto an ordinary stream: %d calls, %v", cfg.Mode, cw2.calls, err)
				}
			}
		})
	}
}

// TestCheapCallsReader checks the Reader on a CheapCalls stream that
// delivers at most 1000 bytes per Read: a large payload is read straight
// into the caller's buffer (no Read asks for more than the payload), the
// framing bytes after a large payload are read exactly, small messages are
// still read through the buffer, many per call, and every message comes
// out intact.
func TestCheapCallsReader(t *testing.T) {
	sizes := []int{10, 20, DirectMin, DirectMin * 3, 5, 7, DirectMin * 2, ReadBufferSize + 1, 9}
	var wire bytes.Buffer
	w := NewWriter(&wire, Config{})
	var want [][]byte
	for i, n := range sizes {
		p := payload(t, Config{}, n, uint64(i))
		want = append(want, p)
		if err := w.WriteMsg(p); err != nil {
			t.Fatal(err)
		}
	}
	rr := &recordingReader{r: &chunkReader{data: wire.Bytes(), chunk: 1000}}
	r := NewReader(rr, Config{})
	buf := make([]byte, 2*ReadBufferSize)
	for i, p := range want {
		before := len(rr.asked)
		got, err := r.ReadMsg(buf)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("message %d (%d bytes): got %d bytes, %v", i, len(p), len(got), err)
		}
		asked := rr.asked[before:]
		if len(p) >= DirectMin {
			for _, a := range asked {
				if a > len(p) {
					t.Errorf("message %d (%d bytes): a Read asked for %d bytes; want the payload read straight into the caller's buffer", i, len(p), a)
				}
			}
		}
		if i > 0 && len(want[i-1]) >= DirectMin && (len(asked) == 0 || asked[0] != LengthHeaderLen) {
			t.Errorf("message %d after a large one: Reads asked %v, want first exactly the %d-byte header", i, asked, LengthHeaderLen)
		}
		if i > 0 && len(want[i-1]) < DirectMin && len(asked) > 0 && asked[0] == LengthHeaderLen {
			t.Errorf("message %d after a small one: header read exactly; want reads through the buffer", i)
		}
	}
	if _, err := r.ReadMsg(buf); err != io.EOF {
		t.Fatalf("at end: %v", err)
	}
}

// TestCheapCallsReaderResumes: a deadline in the middle of a large payload
// that is being read straight into the caller's buffer leaves the Reader
// usable, as it does for any frame the internal buffer holds, and the
// retry returns the whole message; the end of the stream there is a
// truncation. (Past the internal buffer's size the failure is sticky:
// TestReaderLargeFrameErrors.)
func TestCheapCallsReaderResumes(t *testing.T) {
	for _, cfg := range []Config{{}, {Mode: Fixed, Size: DirectMin * 2}} {
		size := DirectMin * 2
		var wb bytes.Buffer
		p := payload(t, cfg, size, 1)
		if err := NewWriter(&wb, cfg).WriteMsg(p); err != nil {
			t.Fatal(err)
		}
		wire := wb.Bytes()
		for _, cut := range []int{1, 3, 4, 5, 100, len(wire) / 2, len(wire) - 1} {
			sr := &scriptedReader{steps: []step{
				{wire[:cut], os.ErrDeadlineExceeded},
				{wire[cut:], nil},
			}}
			r := NewReader(cheapReader{sr}, cfg)
			r.lastDirect = true // read the header exactly, as after a direct payload
			buf := make([]byte, size)
			if _, err := r.ReadMsg(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("%v cut %d: err = %v, want the deadline error", cfg.Mode, cut, err)
			}
			got, err := r.ReadMsg(buf)
			if err != nil || !bytes.Equal(got, p) {
				t.Fatalf("%v cut %d: retry = %d bytes, %v; want the message", cfg.Mode, cut, len(got), err)
			}
			if _, err := r.ReadMsg(buf); err != io.EOF {
				t.Fatalf("%v cut %d: at end %v", cfg.Mode, cut, err)
			}

			// The stream ending at the cut instead is a truncation.
			r = NewReader(cheapReader{bytes.NewReader(wire[:cut])}, cfg)
			r.lastDirect = true
			if _, err := r.ReadMsg(buf); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%v cut %d: at a premature end err = %v, want ErrTruncated", cfg.Mode, cut, err)
			}
		}
	}
}

// vecWriter is a BuffersWriter that records its calls and, when limit is
// positive, writes at most limit bytes per call before failing with err.
type vecWriter struct {
	buf            bytes.Buffer
	writes, vecs   int
	lastVecBuffers int
	limit          int
	err            error
}

func (w *vecWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.buf.Write(p)
}

func (w *vecWriter) WriteBuffers(v *net.Buffers) (int64, error) {
	w.vecs++
	w.lastVecBuffers = len(*v)
	if w.limit > 0 {
		var all []byte
		for _, b := range *v {
			all = append(all, b...)
		}
		n := min(w.limit, len(all))
		w.buf.Write(all[:n])
		*v = nil
		return int64(n), w.err
	}
	return v.WriteTo(&w.buf)
}

// TestWriterVectored checks that on a BuffersWriter a payload of DirectMin
// bytes or more goes out with its framing bytes in one WriteBuffers call
// (two buffers, so uncopied), at any size, that smaller ones are coalesced
// into one Write, that the stream reads back intact, and that a cheap
// stream is not treated so.
func TestWriterVectored(t *testing.T) {
	for _, cfg := range []Config{{}, {Mode: Delimited}} {
		for _, tc := range []struct {
			size         int
			writes, vecs int
		}{
			{DirectMin - 1, 1, 0},
			{DirectMin, 0, 1},
			{CoalesceLimit, 0, 1},
			{CoalesceLimit + 1, 0, 1},
			{1 << 20, 0, 1},
		} {
			vw := &vecWriter{}
			w := NewWriter(vw, cfg)
			p := payload(t, cfg, tc.size, 1)
			if err := w.WriteMsg(p); err != nil {
				t.Fatal(err)
			}
			if vw.writes != tc.writes || vw.vecs != tc.vecs {
				t.Errorf("%v/%d: %d Write and %d WriteBuffers calls, want %d and %d", cfg.Mode, tc.size, vw.writes, vw.vecs, tc.writes, tc.vecs)
			}
			if tc.vecs > 0 && vw.lastVecBuffers != 2 {
				t.Errorf("%v/%d: WriteBuffers got %d buffers, want 2 (framing and payload)", cfg.Mode, tc.size, vw.lastVecBuffers)
			}
			if w.bufs != nil || w.iov[0] != nil || w.iov[1] != nil {
				t.Errorf("%v/%d: the Writer retains the vector", cfg.Mode, tc.size)
			}
			got, err := NewReader(&vw.buf, cfg).ReadMsg(nil)
			if err != nil || !bytes.Equal(got, p) {
				t.Errorf("%v/%d: read back %d bytes, %v", cfg.Mode, tc.size, len(got), err)
			}
		}
	}
	cheap := &cheapVec{}
	w := NewWriter(cheap, Config{})
	if err := w.WriteMsg(payload(t, Config{}, DirectMin, 1)); err != nil {
		t.Fatal(err)
	}
	if cheap.vecs != 0 {
		t.Errorf("a CheapCalls stream got %d WriteBuffers calls, want its own separate Writes", cheap.vecs)
	}
}

// cheapVec is a BuffersWriter whose calls are cheap.
type cheapVec struct{ vecWriter }

func (*cheapVec) CheapCalls() bool { return true }

// TestWriterVectoredErrors: a WriteBuffers failure before any byte leaves
// the Writer usable; after some bytes it breaks the Writer, saying how far
// the frame got.
func TestWriterVectoredErrors(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter(&failingVec{err: boom}, Config{})
	if err := w.WriteMsg(make([]byte, DirectMin)); !errors.Is(err, boom) {
		t.Fatalf("first failure = %v", err)
	}
	if w.err != nil {
		t.Fatalf("a failure before any byte broke the Writer: %v", w.err)
	}
	w = NewWriter(&vecWriter{limit: 100, err: boom}, Config{})
	err := w.WriteMsg(make([]byte, DirectMin))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), fmt.Sprintf("after 100 of %d frame bytes", DirectMin+LengthHeaderLen)) {
		t.Fatalf("partial failure = %v", err)
	}
	if err2 := w.WriteMsg([]byte("x")); err2 != err {
		t.Fatalf("after a partial failure WriteMsg = %v, want the same error", err2)
	}
	// A short count without an error is a short write.
	w = NewWriter(&vecWriter{limit: 10}, Config{})
	if err := w.WriteMsg(make([]byte, DirectMin)); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short WriteBuffers without error = %v, want io.ErrShortWrite", err)
	}
}

// failingVec fails every WriteBuffers call before writing anything.
type failingVec struct{ err error }

func (f *failingVec) Write(p []byte) (int, error)              { return 0, f.err }
func (f *failingVec) WriteBuffers(*net.Buffers) (int64, error) { return 0, f.err }

// TestWriterVectoredZeroAllocs: the vectored path allocates nothing per
// message.
func TestWriterVectoredZeroAllocs(t *testing.T) {
	vw := &vecWriter{}
	w := NewWriter(vw, Config{})
	p := payload(t, Config{}, 64<<10, 1)
	once := func() {
		vw.buf.Reset()
		if err := w.WriteMsg(p); err != nil {
			t.Fatal(err)
		}
	}
	once()
	if a := testing.AllocsPerRun(50, once); a != 0 {
		t.Errorf("%v allocations per message, want 0", a)
	}
}
