package lineio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzRead reads arbitrary input line by line with a small buffer and
// maximum: every line returned is the input's next line, of at most max
// bytes without a newline; the lines and the newlines between them
// rebuild the input (up to an unfinished last line, returned with
// io.ErrUnexpectedEOF); a longer line fails with ErrTooLong; and no
// more than max bytes plus two buffers are read past the last whole line.
func FuzzRead(f *testing.F) {
	f.Add([]byte("a\n\nbcd\nlast"), uint8(8), uint8(16), false)
	f.Add([]byte("0123456789abcdef0123456789\n"), uint8(30), uint8(16), true)
	f.Add([]byte("0123456789abcdef0123456789\n"), uint8(25), uint8(16), false)
	f.Add([]byte("\n\n\n"), uint8(0), uint8(16), true)
	f.Fuzz(func(t *testing.T, data []byte, maxLen, size uint8, oneByte bool) {
		var src io.Reader = bytes.NewReader(data)
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		cr := &countReader{r: src}
		const bufSize = 16 // bufio's smallest
		br := bufio.NewReaderSize(cr, max(int(size), bufSize))
		bsize := br.Size()
		done := 0 // bytes of data consumed by the lines returned so far
		for {
			line, err := Read(br, int(maxLen))
			switch {
			case err == nil:
				want := data[done:]
				if len(line) > int(maxLen) || !bytes.HasPrefix(want, append(line, '\n')) || bytes.IndexByte(line, '\n') >= 0 {
					t.Fatalf("line %q at %d (max %d); input there %q", line, done, maxLen, want)
				}
				done += len(line) + 1
				continue
			case err == io.EOF:
				if done != len(data) || line != nil {
					t.Fatalf("EOF at %d of %d with %q", done, len(data), line)
				}
			case err == io.ErrUnexpectedEOF:
				if !bytes.Equal(line, data[done:]) || len(line) == 0 || len(line) > int(maxLen) || bytes.IndexByte(line, '\n') >= 0 {
					t.Fatalf("last line %q at %d; input there %q", line, done, data[done:])
				}
			case errors.Is(err, ErrTooLong):
				rest := data[done:]
				if i := bytes.IndexByte(rest, '\n'); i >= 0 && i <= int(maxLen) {
					t.Fatalf("ErrTooLong for a line of %d bytes (max %d)", i, maxLen)
				}
				if len(rest) <= int(maxLen) {
					t.Fatalf("ErrTooLong for %d bytes at the end (max %d)", len(rest), maxLen)
				}
				if cr.n-done > int(maxLen)+2*bsize {
					t.Fatalf("read %d bytes past the last line (max %d, buffer %d)", cr.n-done, maxLen, bsize)
				}
			default:
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
	})
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
