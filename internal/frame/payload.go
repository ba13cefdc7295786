package frame

import (
	"bytes"
	"errors"
	"fmt"
)

// Payload layout constants.
const (
	// HeaderLen is the number of stamp bytes at the start of a payload.
	HeaderLen = 24
	// PatternPeriod is the period of the fill pattern after the stamp.
	PatternPeriod = 251

	connDigits = 8
	seqDigits  = HeaderLen - connDigits
	hexDigits  = "0123456789abcdef"
	// patternLen is the length of the precomputed pattern: a multiple of
	// PatternPeriod close to 64 KiB, so pattern[i%patternLen] is the
	// pattern byte of offset i.
	patternLen = PatternPeriod * 256
)

// ErrPayload means a payload failed Check: a wrong stamp (connection id or
// sequence) or a byte that differs from the pattern.
var ErrPayload = errors.New("frame: payload check failed")

// pattern holds PatternByte(i) for i in [0, patternLen).
var pattern = makePattern()

func makePattern() []byte {
	p := make([]byte, patternLen)
	for i := range p {
		p[i] = PatternByte(i)
	}
	return p
}

// PatternByte returns the pattern byte expected at offset i >= HeaderLen of a
// payload. It is never '\n'.
func PatternByte(i int) byte {
	// i%251 + 11 takes the values 11..261; as a byte that is 11..255 and
	// 0..5, all distinct within one period, and never 10 ('\n').
	return byte(i%PatternPeriod + 11)
}

// encodeStamp writes the full stamp of (conn, seq) into s.
func encodeStamp(s *[HeaderLen]byte, conn uint32, seq uint64) {
	for i := connDigits - 1; i >= 0; i-- {
		s[i] = hexDigits[conn&0xf]
		conn >>= 4
	}
	for i := HeaderLen - 1; i >= connDigits; i-- {
		s[i] = hexDigits[seq&0xf]
		seq >>= 4
	}
}

// Stamp writes the stamp of (conn, seq) at the start of buf (its first
// min(len(buf), HeaderLen) bytes) and leaves the rest alone: the fast path
// for a sender reusing a buffer already prepared by Fill. It does not
// allocate.
func Stamp(buf []byte, conn uint32, seq uint64) {
	var s [HeaderLen]byte
	encodeStamp(&s, conn, seq)
	copy(buf, s[:])
}

// Fill stamps buf with (conn, seq) as Stamp does and fills every byte after
// the stamp with the pattern. It does not allocate.
func Fill(buf []byte, conn uint32, seq uint64) {
	Stamp(buf, conn, seq)
	for off := HeaderLen; off < len(buf); {
		off += copy(buf[off:], pattern[off%patternLen:])
	}
}

// Check verifies every byte of buf: the stamp must be that of (conn, seq)
// (as much of it as fits) and every later byte must match the pattern. A
// mismatch returns an error wrapping ErrPayload that says what was expected
// and what was found (connection and sequence, or the first bad offset). It
// does not allocate when buf is correct.
func Check(buf []byte, conn uint32, seq uint64) error {
	var want [HeaderLen]byte
	encodeStamp(&want, conn, seq)
	h := min(len(buf), HeaderLen)
	if !bytes.Equal(buf[:h], want[:h]) {
		return stampError(buf[:h], conn, seq)
	}
	for off := HeaderLen; off < len(buf); {
		p := pattern[off%patternLen:]
		n := min(len(p), len(buf)-off)
		if !bytes.Equal(buf[off:off+n], p[:n]) {
			for i := range n {
				if buf[off+i] != p[i] {
					return fmt.Errorf("%w: conn %d seq %d: byte at offset %d of %d is %#02x, want %#02x",
						ErrPayload, conn, seq, off+i, len(buf), buf[off+i], p[i])
				}
			}
		}
		off += n
	}
	return nil
}

// CheckPart verifies part, the bytes at offsets [off, off+len(part)) of the
// payload of (conn, seq), as Check verifies a whole payload: a payload
// checked part by part, in any split, passes exactly when Check passes it.
// It lets a reader check a payload where it lies (in pieces, across a
// ring's wrap) without copying it together first. A mismatch returns an
// error wrapping ErrPayload with the offset of the first bad byte. It does
// not allocate when part is correct.
func CheckPart(part []byte, conn uint32, seq uint64, off int) error {
	if off < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrPayload, off)
	}
	if off < HeaderLen && len(part) > 0 {
		var want [HeaderLen]byte
		encodeStamp(&want, conn, seq)
		h := min(len(part), HeaderLen-off)
		if !bytes.Equal(part[:h], want[off:off+h]) {
			for i := range h {
				if part[i] != want[off+i] {
					return fmt.Errorf("%w: conn %d seq %d: stamp byte at offset %d is %#02x, want %#02x",
						ErrPayload, conn, seq, off+i, part[i], want[off+i])
				}
			}
		}
		part, off = part[h:], off+h
	}
	for len(part) > 0 {
		p := pattern[off%patternLen:]
		n := min(len(p), len(part))
		if !bytes.Equal(part[:n], p[:n]) {
			for i := range n {
				if part[i] != p[i] {
					return fmt.Errorf("%w: conn %d seq %d: byte at offset %d is %#02x, want %#02x",
						ErrPayload, conn, seq, off+i, part[i], p[i])
				}
			}
		}
		part, off = part[n:], off+n
	}
	return nil
}

// stampError describes a stamp that differs from (conn, seq).
func stampError(got []byte, conn uint32, seq uint64) error {
	if len(got) == HeaderLen {
		if gc, gs, err := ReadStamp(got); err == nil {
			return fmt.Errorf("%w: want conn %d seq %d, got conn %d seq %d", ErrPayload, conn, seq, gc, gs)
		}
	}
	return fmt.Errorf("%w: want conn %d seq %d, got stamp %q", ErrPayload, conn, seq, got)
}

// ReadStamp decodes the connection id and sequence number from the stamp at
// the start of buf. It fails with an error wrapping ErrPayload when buf is
// shorter than HeaderLen or its stamp is not valid lowercase hexadecimal.
func ReadStamp(buf []byte) (conn uint32, seq uint64, err error) {
	if len(buf) < HeaderLen {
		return 0, 0, fmt.Errorf("%w: payload of %d bytes is shorter than the %d-byte stamp", ErrPayload, len(buf), HeaderLen)
	}
	var v uint64
	for i := range HeaderLen {
		c := buf[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, 0, fmt.Errorf("%w: stamp byte %d is %q, not a lowercase hex digit", ErrPayload, i, c)
		}
		v = v<<4 | uint64(d)
		if i == connDigits-1 {
			conn = uint32(v)
			v = 0
		}
	}
	return conn, v, nil
}
