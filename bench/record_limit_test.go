package bench

import (
	"errors"
	"testing"
)

// zeros yields zero bytes and no newline, like /dev/zero, up to a cap (so
// that a reader without a line limit fails this test instead of the
// machine), and counts what it gave.
type zeros struct{ n, limit int }

var errExhausted = errors.New("the endless input ran out")

func (z *zeros) Read(p []byte) (int, error) {
	if z.n >= z.limit {
		return 0, errExhausted
	}
	p = p[:min(len(p), z.limit-z.n)]
	clear(p)
	z.n += len(p)
	return len(p), nil
}

// TestReadRecordsEndlessLine: an input with no newline ever fails with
// ErrLineTooLong (and ErrMalformed) after reading no more than MaxLineSize
// and a buffer.
func TestReadRecordsEndlessLine(t *testing.T) {
	z := &zeros{limit: 16 * MaxLineSize}
	_, err := ReadRecords(z, "zeros")
	if !errors.Is(err, ErrLineTooLong) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("ReadRecords of an endless line: %v; want ErrLineTooLong", err)
	}
	if z.n > MaxLineSize+64<<10 {
		t.Errorf("read %d bytes before giving up, want at most %d and a buffer", z.n, MaxLineSize)
	}
	t.Logf("%v (after %d bytes)", err, z.n)
}
