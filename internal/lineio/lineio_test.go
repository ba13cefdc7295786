package lineio

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("a\n\nbcd\n"+strings.Repeat("x", 40)+"\nlast"), 16)
	for _, want := range []string{"a", "", "bcd", strings.Repeat("x", 40)} {
		line, err := Read(br, 40)
		if err != nil || string(line) != want {
			t.Fatalf("Read = %q, %v; want %q", line, err, want)
		}
	}
	if line, err := Read(br, 40); string(line) != "last" || err != io.ErrUnexpectedEOF {
		t.Fatalf("last line without newline: %q, %v", line, err)
	}
	if line, err := Read(br, 40); line != nil || err != io.EOF {
		t.Fatalf("at the end: %q, %v", line, err)
	}
}

// endless yields zero bytes forever and counts them.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.n += len(p)
	return len(p), nil
}

// TestReadBoundsEndlessLine: a line with no newline ever fails with
// ErrTooLong after reading no more than the maximum and one buffer.
func TestReadBoundsEndlessLine(t *testing.T) {
	for _, max := range []int{0, 1, 15, 16, 17, 1000} {
		src := &endless{}
		br := bufio.NewReaderSize(src, 16)
		line, err := Read(br, max)
		if !errors.Is(err, ErrTooLong) || line != nil {
			t.Errorf("max %d: %q, %v; want ErrTooLong", max, line, err)
		}
		if src.n > max+2*16 {
			t.Errorf("max %d: read %d bytes", max, src.n)
		}
	}
	// Exactly max bytes then a newline is fine; max+1 is not.
	for n, ok := range map[int]bool{10: true, 11: false} {
		_, err := Read(bufio.NewReaderSize(strings.NewReader(strings.Repeat("y", n)+"\n"), 16), 10)
		if (err == nil) != ok {
			t.Errorf("%d bytes with max 10: %v", n, err)
		}
	}
}
