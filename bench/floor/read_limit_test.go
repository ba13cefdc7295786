package floor

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
)

// TestReadLongLine: a line longer than bench.MaxLineSize (here one with no
// newline at all) is refused with ErrMalformed and bench.ErrLineTooLong.
func TestReadLongLine(t *testing.T) {
	_, err := Read(strings.NewReader(strings.Repeat("0", bench.MaxLineSize+1)), "zeros")
	if !errors.Is(err, bench.ErrLineTooLong) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("Read of a %d-byte line: %v; want bench.ErrLineTooLong", bench.MaxLineSize+1, err)
	}
}
