package peer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/frame"
)

// rw is a connection made of a reader and a writer.
type rw struct {
	io.Reader
	io.Writer
}

// frames encodes payloads with cfg.
func frames(tb testing.TB, cfg frame.Config, payloads ...[]byte) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := frame.NewWriter(&b, cfg)
	for _, p := range payloads {
		if err := w.WriteMsg(p); err != nil {
			tb.Fatal(err)
		}
	}
	return b.Bytes()
}

func payload(size int, conn uint32, seq uint64) []byte {
	b := make([]byte, size)
	frame.Fill(b, conn, seq)
	return b
}

func TestEchoLoop(t *testing.T) {
	tests := []struct {
		name     string
		cfg      frame.Config
		payloads [][]byte
		trailer  []byte // bytes after the last whole frame
		wantErr  error
	}{
		{"length", frame.Config{}, [][]byte{payload(1, 0, 0), {}, payload(100, 0, 1), payload(200<<10, 0, 2)}, nil, nil},
		{"delimited", frame.Config{Mode: frame.Delimited}, [][]byte{payload(5, 1, 0), payload(70<<10, 1, 1)}, nil, nil},
		{"fixed", frame.Config{Mode: frame.Fixed, Size: 64}, [][]byte{payload(64, 2, 0), payload(64, 2, 1)}, nil, nil},
		{"truncated", frame.Config{}, [][]byte{payload(10, 0, 0)}, []byte{0, 0, 1}, frame.ErrTruncated},
		{"too large", frame.Config{MaxSize: 16}, [][]byte{payload(16, 0, 0)}, []byte{0, 0, 0, 17}, frame.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append(frames(t, tt.cfg, tt.payloads...), tt.trailer...)
			var out bytes.Buffer
			var st ConnStats
			err := echoLoop(rw{bytes.NewReader(in), &out}, tt.cfg, 0, &st)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("echoLoop = %v, want %v", err, tt.wantErr)
			}
			if want := frames(t, tt.cfg, tt.payloads...); !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("echoed %d bytes, want %d identical bytes", out.Len(), len(want))
			}
			var n int64
			for _, p := range tt.payloads {
				n += int64(len(p))
			}
			if st.Messages != int64(len(tt.payloads)) || st.Bytes != n || st.Errors != 0 {
				t.Fatalf("stats %+v, want %d messages, %d bytes", st, len(tt.payloads), n)
			}
		})
	}
}

// sinkCase is the sink tests' input, two acknowledged segments and an
// unacknowledged tail, and the acknowledgements it must give.
func sinkCase(t *testing.T, cfg frame.Config) ([]byte, []Ack) {
	t.Helper()
	bad := payload(50, 3, 1)
	bad[40] ^= 1
	in := frames(t, cfg,
		payload(50, 3, 0), payload(1, 3, 1), payload(100<<10, 3, 2), nil, // segment 1
		payload(50, 3, 0), bad, payload(50, 4, 2), nil, // segment 2: two bad
		payload(7, 3, 0), // unacknowledged tail
	)
	return in, []Ack{{Messages: 3, Bytes: 50 + 1 + 100<<10}, {Messages: 3, Bytes: 150, Errors: 2}}
}

// checkSink checks what a sink wrote (out) and counted (st) for sinkCase.
func checkSink(t *testing.T, name string, cfg frame.Config, out io.Reader, st ConnStats, want []Ack) {
	t.Helper()
	r := frame.NewReader(out, cfg)
	for i, w := range want {
		msg, err := r.ReadMsg(nil)
		if err != nil {
			t.Fatalf("%s: ack %d: %v", name, i, err)
		}
		if got, err := DecodeAck(msg); err != nil || got != w {
			t.Fatalf("%s: ack %d = %+v, %v; want %+v", name, i, got, err, w)
		}
	}
	if _, err := r.ReadMsg(nil); err != io.EOF {
		t.Fatalf("%s: more than %d acks: %v", name, len(want), err)
	}
	if st.Messages != 7 || st.Errors != 2 || !strings.Contains(st.CheckError, "conn 3 seq 1: byte at offset 40") {
		t.Fatalf("%s: stats %+v, want 7 messages, 2 errors, the first at offset 40", name, st)
	}
}

// TestSinkLoop runs sinkCase through both of sinkLoop's readers: the frame
// walker of length-prefixed frames and the frame.Reader of delimited ones.
func TestSinkLoop(t *testing.T) {
	for _, cfg := range []frame.Config{{}, {Mode: frame.Delimited}} {
		in, want := sinkCase(t, cfg)
		var out bytes.Buffer
		var st ConnStats
		if err := sinkLoop(rw{bytes.NewReader(in), &out}, cfg, 3, &st); err != nil {
			t.Fatalf("%s: sinkLoop = %v", cfg.Mode, err)
		}
		checkSink(t, "sinkLoop "+cfg.Mode.String(), cfg, &out, st, want)
	}
}

// emptyReader returns nothing and no error, forever; or, with bad set, a
// count larger than the buffer.
type emptyReader struct{ bad bool }

func (e emptyReader) Read(p []byte) (int, error) {
	if e.bad {
		return len(p) + 1, nil
	}
	return 0, nil
}

// TestSinkWalkLoopBrokenReader: a stream whose reads keep returning
// nothing, or return an impossible count, ends the sink with an error
// instead of a spin or a panic.
func TestSinkWalkLoopBrokenReader(t *testing.T) {
	var st ConnStats
	if err := sinkLoop(rw{emptyReader{}, io.Discard}, frame.Config{}, 0, &st); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("sinkLoop on reads that return nothing = %v, want io.ErrNoProgress", err)
	}
	if err := sinkLoop(rw{emptyReader{bad: true}, io.Discard}, frame.Config{}, 0, &st); err == nil || !strings.Contains(err.Error(), "invalid count") {
		t.Fatalf("sinkLoop on a read with an impossible count = %v, want an invalid count error", err)
	}
}

// peekConn lends data in pieces of at most chunk bytes
// (transports.PeekReader) and records what is written to it. Read copies,
// for the fallback when peeking is off.
type peekConn struct {
	data    []byte
	chunk   int
	peeked  int
	enabled bool
	bytes.Buffer
}

func (c *peekConn) Peek() ([]byte, error) {
	if len(c.data) == 0 {
		return nil, io.EOF
	}
	c.peeked = min(c.chunk, len(c.data))
	return c.data[:c.peeked:c.peeked], nil
}

func (c *peekConn) Release(n int) error {
	if n < 0 || n > c.peeked {
		return fmt.Errorf("release %d of %d peeked", n, c.peeked)
	}
	c.data, c.peeked = c.data[n:], c.peeked-n
	return nil
}

func (c *peekConn) PeekEnabled() bool { return c.enabled }

func (c *peekConn) Read(p []byte) (int, error) {
	if c.enabled {
		return 0, errors.New("Read on a connection read in place")
	}
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data[:min(len(p), c.chunk, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// TestSinkPeekLoop runs the sink over a lending connection, in pieces of
// every size from 1 byte to the whole input, and checks that it reads in
// place and gives the acknowledgements, counts and errors sinkLoop gives;
// and that with peeking off it reads with Read.
func TestSinkPeekLoop(t *testing.T) {
	cfg := frame.Config{}
	in, want := sinkCase(t, cfg)
	for _, chunk := range []int{1, 2, 3, 5, 7, 24, 25, 1000, len(in)} {
		for _, enabled := range []bool{true, false} {
			name := fmt.Sprintf("chunk %d peek %v", chunk, enabled)
			c := &peekConn{data: in, chunk: chunk, enabled: enabled}
			var st ConnStats
			if err := sinkLoop(c, cfg, 3, &st); err != nil {
				t.Fatalf("%s: sinkLoop = %v", name, err)
			}
			if chunk < 100 && st.ShortReads == 0 {
				t.Errorf("%s: no short reads counted", name)
			}
			checkSink(t, name, cfg, &c.Buffer, st, want)
		}
	}
}

// TestSinkPeekLoopBadStreams: a stream that ends inside a length prefix or
// a payload is a truncation, and a length over the maximum is refused
// before its payload is read, as with sinkLoop.
func TestSinkPeekLoopBadStreams(t *testing.T) {
	cfg := frame.Config{MaxSize: 1000}
	whole := frames(t, cfg, payload(100, 0, 0))
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"ends in the length prefix", whole[:2], frame.ErrTruncated},
		{"ends in the payload", whole[:50], frame.ErrTruncated},
		{"length over the maximum", []byte{0, 0, 0x10, 0, 1, 2, 3}, frame.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, enabled := range []bool{true, false} {
				var st ConnStats
				err := sinkLoop(&peekConn{data: tc.in, chunk: 3, enabled: enabled}, cfg, 0, &st)
				if !errors.Is(err, tc.want) {
					t.Fatalf("peek %v: sinkLoop = %v, want %v", enabled, err, tc.want)
				}
				if tc.want == frame.ErrTruncated && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("peek %v: truncation %v does not wrap io.ErrUnexpectedEOF", enabled, err)
				}
			}
		})
	}
}

// loopSource replays encoded frames a number of times, then EOF.
type loopSource struct {
	data  []byte
	off   int
	left  int
	chunk int // bytes per Read at most: short reads
}

func (s *loopSource) Read(p []byte) (int, error) {
	if s.off == len(s.data) {
		if s.left == 0 {
			return 0, io.EOF
		}
		s.left--
		s.off = 0
	}
	n := min(len(p), len(s.data)-s.off, s.chunk)
	copy(p, s.data[s.off:s.off+n])
	s.off += n
	return n, nil
}

// TestLoopsZeroAlloc checks that the role loops allocate nothing per
// message: running 100 times as many messages costs no more allocations.
func TestLoopsZeroAlloc(t *testing.T) {
	cfg := frame.Config{}
	var ps [][]byte
	for seq, size := range []int{1, 24, 1000, 64 << 10, 100 << 10} {
		ps = append(ps, payload(size, 0, uint64(seq)))
	}
	echoIn := frames(t, cfg, ps...)
	sinkIn := frames(t, cfg, append(ps, nil)...)
	for _, tt := range []struct {
		name string
		loop roleLoop
		in   []byte
	}{{"echo", echoLoop, echoIn}, {"sink", sinkLoop, sinkIn}} {
		t.Run(tt.name, func(t *testing.T) {
			allocs := func(repeats int) float64 {
				return testing.AllocsPerRun(5, func() {
					var st ConnStats
					src := &loopSource{data: tt.in, left: repeats, chunk: 48 << 10}
					if err := tt.loop(rw{src, io.Discard}, cfg, 0, &st); err != nil {
						t.Fatal(err)
					}
					if want := int64(len(ps) * (repeats + 1)); st.Messages != want || st.Errors != 0 {
						t.Fatalf("stats %+v, want %d messages", st, want)
					}
				})
			}
			few, many := allocs(1), allocs(100)
			if many > few {
				t.Fatalf("%v allocations for 10 messages, %v for 505: the loop allocates per message", few, many)
			}
		})
	}
}

func TestAck(t *testing.T) {
	for _, a := range []Ack{{}, {Messages: 1, Bytes: 2, Errors: 3}, {Messages: 1 << 62, Bytes: 1<<63 - 1}} {
		b := EncodeAck(nil, a)
		if bytes.IndexByte(b, '\n') >= 0 {
			t.Errorf("EncodeAck(%+v) = %q contains a newline", a, b)
		}
		got, err := DecodeAck(b)
		if err != nil || got != a {
			t.Errorf("DecodeAck(EncodeAck(%+v)) = %+v, %v", a, got, err)
		}
	}
	buf := make([]byte, 0, MaxAckLen)
	longest := Ack{Messages: 1<<63 - 1, Bytes: 1<<63 - 1, Errors: 1<<63 - 1}
	if n := testing.AllocsPerRun(10, func() { buf = EncodeAck(buf[:0], longest) }); n != 0 || len(buf) != MaxAckLen {
		t.Errorf("EncodeAck allocates %v times, made %d bytes (MaxAckLen %d)", n, len(buf), MaxAckLen)
	}
	bad := []string{
		"",
		"ipcbench-ack/1",
		"ipcbench-ack/2 messages=1 bytes=2 errors=3",
		"ipcbench-ack/1 messages=1 bytes=2",
		"ipcbench-ack/1 messages=1 bytes=2 errors=3 extra=4",
		"ipcbench-ack/1 bytes=1 messages=2 errors=3",
		"ipcbench-ack/1 messages=-1 bytes=2 errors=3",
		"ipcbench-ack/1 messages=+1 bytes=2 errors=3",
		"ipcbench-ack/1 messages=01 bytes=2 errors=3",
		"ipcbench-ack/1 messages= bytes=2 errors=3",
		"ipcbench-ack/1 messages=1 bytes=99999999999999999999 errors=3",
		"ipcbench-ack/1  messages=1 bytes=2 errors=3",
	}
	for _, s := range bad {
		if _, err := DecodeAck([]byte(s)); !errors.Is(err, ErrBadAck) {
			t.Errorf("DecodeAck(%q) = %v, want ErrBadAck", s, err)
		}
	}
}

func TestFrameSpec(t *testing.T) {
	for _, c := range []frame.Config{{}, {Mode: frame.Fixed, Size: 64}, {Mode: frame.Delimited, Delim: '|', MaxSize: 1 << 10}} {
		got, err := FrameSpecOf(c).Config()
		if err != nil || got != c {
			t.Errorf("FrameSpecOf(%+v).Config() = %+v, %v", c, got, err)
		}
	}
	if c, err := (FrameSpec{}).Config(); err != nil || c != (frame.Config{}) {
		t.Errorf("zero FrameSpec = %+v, %v; want length prefixes", c, err)
	}
	// A client's largest message above the peer's own (frame.DefaultMaxSize)
	// is refused in every mode: the http role sized its buffer by it, so a
	// session asking for 2 TiB made one request kill the server.
	for _, f := range []FrameSpec{{Mode: "smoke"}, {Mode: "fixed"}, {Max: -1}, {Max: frame.DefaultMaxSize + 1},
		{Mode: "delimited", Max: math.MaxInt}, {Mode: "fixed", Size: 8, Max: math.MaxInt}} {
		if _, err := f.Config(); !errors.Is(err, frame.ErrBadConfig) {
			t.Errorf("%+v.Config() = %v, want ErrBadConfig", f, err)
		}
	}
}
