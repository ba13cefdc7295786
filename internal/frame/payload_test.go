package frame

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestStampFormat(t *testing.T) {
	tests := []struct {
		conn uint32
		seq  uint64
		want string
	}{
		{0, 0, "00000000" + "0000000000000000"},
		{1, 2, "00000001" + "0000000000000002"},
		{0xdeadbeef, 0x0123456789abcdef, "deadbeef" + "0123456789abcdef"},
		{math.MaxUint32, math.MaxUint64, "ffffffff" + "ffffffffffffffff"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			buf := make([]byte, HeaderLen)
			Stamp(buf, tt.conn, tt.seq)
			if string(buf) != tt.want {
				t.Fatalf("Stamp = %q, want %q", buf, tt.want)
			}
			c, s, err := ReadStamp(buf)
			if err != nil || c != tt.conn || s != tt.seq {
				t.Fatalf("ReadStamp = %d, %d, %v; want %d, %d", c, s, err, tt.conn, tt.seq)
			}
			// A short buffer gets the start of the stamp.
			short := make([]byte, 5)
			Stamp(short, tt.conn, tt.seq)
			if string(short) != tt.want[:5] {
				t.Fatalf("short Stamp = %q, want %q", short, tt.want[:5])
			}
		})
	}
}

func TestReadStampErrors(t *testing.T) {
	for _, in := range []string{"", "0000000100000000000000", "0000000G0000000000000001", "00000001000000000000000A"} {
		if _, _, err := ReadStamp([]byte(in)); !errors.Is(err, ErrPayload) {
			t.Errorf("ReadStamp(%q) err = %v, want ErrPayload", in, err)
		}
	}
}

func TestFillCheck(t *testing.T) {
	sizes := []int{0, 1, 8, HeaderLen - 1, HeaderLen, HeaderLen + 1, 100, patternLen - 1, patternLen, patternLen + 1, 3*patternLen + 17}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			buf := make([]byte, size)
			// Connection ids that differ in the first stamp byte, so
			// even a 1-byte payload tells them apart.
			const oldConn, newConn = 0x30000003, 0x40000004
			Fill(buf, oldConn, 99)
			if err := Check(buf, oldConn, 99); err != nil {
				t.Fatalf("Check of a filled buffer: %v", err)
			}
			if bytes.IndexByte(buf, '\n') >= 0 {
				t.Fatal("filled payload contains '\\n'")
			}
			for i := HeaderLen; i < size; i++ {
				if buf[i] != PatternByte(i) {
					t.Fatalf("byte %d = %#x, want PatternByte = %#x", i, buf[i], PatternByte(i))
				}
			}
			// Stamp rewrites only the stamp.
			Stamp(buf, newConn, 100)
			if err := Check(buf, newConn, 100); err != nil {
				t.Fatalf("Check after Stamp: %v", err)
			}
			if size > 0 {
				if err := Check(buf, oldConn, 99); !errors.Is(err, ErrPayload) {
					t.Fatalf("Check with the old stamp: %v, want ErrPayload", err)
				}
			}
		})
	}
}

func TestPatternNeverNewline(t *testing.T) {
	for i := range 3 * PatternPeriod {
		if PatternByte(i) == '\n' {
			t.Fatalf("PatternByte(%d) is '\\n'", i)
		}
	}
	seen := make(map[byte]bool)
	for i := range PatternPeriod {
		seen[PatternByte(i)] = true
	}
	if len(seen) != PatternPeriod {
		t.Fatalf("pattern has %d distinct bytes per period, want %d", len(seen), PatternPeriod)
	}
	var buf [HeaderLen]byte
	for _, v := range []uint64{0, 0x0a0a0a0a, math.MaxUint64, 0x1234567890} {
		Stamp(buf[:], uint32(v), v)
		if bytes.IndexByte(buf[:], '\n') >= 0 {
			t.Fatalf("stamp of %#x contains '\\n'", v)
		}
	}
}

func TestCheckDetects(t *testing.T) {
	const size = 2*patternLen + 50
	tests := []struct {
		name    string
		mutate  func([]byte) []byte
		conn    uint32
		seq     uint64
		wantMsg string
	}{
		{"wrong conn", func(b []byte) []byte { return b }, 4, 10, "want conn 4 seq 10, got conn 3 seq 10"},
		{"wrong seq", func(b []byte) []byte { return b }, 3, 11, "want conn 3 seq 11, got conn 3 seq 10"},
		{"garbled stamp", func(b []byte) []byte { b[2] = 'X'; return b }, 3, 10, "got stamp"},
		{"first pattern byte", func(b []byte) []byte { b[HeaderLen]++; return b }, 3, 10, fmt.Sprintf("offset %d of", HeaderLen)},
		{"byte at table end", func(b []byte) []byte { b[patternLen-1] ^= 0x40; return b }, 3, 10, fmt.Sprintf("offset %d of", patternLen-1)},
		{"byte at table start", func(b []byte) []byte { b[patternLen] ^= 1; return b }, 3, 10, fmt.Sprintf("offset %d of", patternLen)},
		{"last byte", func(b []byte) []byte { b[size-1] = 0; return b }, 3, 10, fmt.Sprintf("offset %d of", size-1)},
		{"shifted by 8", func(b []byte) []byte { copy(b[100:], b[108:]); return b }, 3, 10, "offset 100 of"},
		{"zeroed tail", func(b []byte) []byte { clear(b[5000:]); return b }, 3, 10, "offset 5000 of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, size)
			Fill(buf, 3, 10)
			err := Check(tt.mutate(buf), tt.conn, tt.seq)
			if !errors.Is(err, ErrPayload) {
				t.Fatalf("Check = %v, want ErrPayload", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Check = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestPayloadZeroAllocs(t *testing.T) {
	for _, size := range []int{16, 64, 4096, 200 << 10} {
		buf := make([]byte, size)
		seq := uint64(0)
		if a := testing.AllocsPerRun(20, func() { seq++; Fill(buf, 1, seq) }); a != 0 {
			t.Errorf("Fill(%d): %v allocations", size, a)
		}
		if a := testing.AllocsPerRun(20, func() { seq++; Stamp(buf, 1, seq) }); a != 0 {
			t.Errorf("Stamp(%d): %v allocations", size, a)
		}
		if a := testing.AllocsPerRun(20, func() {
			if err := Check(buf, 1, seq); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("Check(%d): %v allocations", size, a)
		}
	}
}

// checkParts checks buf as a payload of (conn, seq) in parts of the given
// sizes (the last part takes the rest).
func checkParts(buf []byte, conn uint32, seq uint64, sizes []int) error {
	off := 0
	for _, n := range sizes {
		n = min(n, len(buf)-off)
		if err := CheckPart(buf[off:off+n], conn, seq, off); err != nil {
			return err
		}
		off += n
	}
	return CheckPart(buf[off:], conn, seq, off)
}

func TestCheckPartAgreesWithCheck(t *testing.T) {
	splits := [][]int{nil, {1}, {3, 5}, {HeaderLen}, {HeaderLen - 1, 2}, {100, 251, 1}, {patternLen - 7, 20}}
	for _, size := range []int{0, 1, HeaderLen - 1, HeaderLen, HeaderLen + 1, 1000, patternLen + 100} {
		buf := make([]byte, size)
		Fill(buf, 7, 42)
		for _, sp := range splits {
			if err := checkParts(buf, 7, 42, sp); err != nil {
				t.Fatalf("size %d split %v: a correct payload fails: %v", size, sp, err)
			}
			if size >= HeaderLen && checkParts(buf, 7, 43, sp) == nil {
				t.Fatalf("size %d split %v: the wrong sequence passes", size, sp)
			}
			for _, bad := range []int{0, HeaderLen - 1, HeaderLen, size / 2, size - 1} {
				if bad < 0 || bad >= size {
					continue
				}
				buf[bad] ^= 0x40
				err := checkParts(buf, 7, 42, sp)
				if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d ", bad)) {
					t.Fatalf("size %d split %v, byte %d flipped: %v; want ErrPayload naming offset %d", size, sp, bad, err, bad)
				}
				buf[bad] ^= 0x40
			}
		}
	}
	if err := CheckPart([]byte{1}, 0, 0, -1); !errors.Is(err, ErrPayload) {
		t.Fatalf("negative offset: %v", err)
	}
}

// FuzzCheckPart: checking a payload in any two parts gives the same verdict
// as Check on the whole.
func FuzzCheckPart(f *testing.F) {
	good := make([]byte, 300)
	Fill(good, 1, 2)
	f.Add(good, uint32(1), uint64(2), uint16(10))
	f.Add([]byte("short"), uint32(0), uint64(0), uint16(2))
	f.Fuzz(func(t *testing.T, buf []byte, conn uint32, seq uint64, cut uint16) {
		c := int(cut) % (len(buf) + 1)
		whole := Check(buf, conn, seq)
		parts := CheckPart(buf[:c], conn, seq, 0)
		if parts == nil {
			parts = CheckPart(buf[c:], conn, seq, c)
		}
		if (whole == nil) != (parts == nil) {
			t.Fatalf("Check = %v, in parts at %d = %v", whole, c, parts)
		}
	})
}
