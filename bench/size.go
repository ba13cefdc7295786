package bench

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ipcbench/ipcbench/internal/units"
)

// ErrBadSize is wrapped by every size-parsing error.
var ErrBadSize = errors.New("bad size")

// ParseSize parses a byte count such as "64", "64B", "4k", "16KiB" or
// "1MiB". Units are binary (k = 1024; see internal/units). The result must
// be positive and at most max bytes (max <= 0 means no limit); on a 32-bit
// platform it must also fit in an int, which lowers max to math.MaxInt.
func ParseSize(s string, max int64) (int, error) {
	if max <= 0 || max > math.MaxInt {
		max = math.MaxInt
	}
	v, err := ParseSize64(s, max)
	return int(v), err
}

// ParseSize64 is ParseSize for a byte count that is an int64 on every
// platform, such as a total of bytes to move.
func ParseSize64(s string, max int64) (int64, error) {
	v, err := units.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %v", ErrBadSize, s, err)
	}
	if max > 0 && v > max {
		return 0, fmt.Errorf("%w %q: larger than the maximum %s", ErrBadSize, s, units.FormatBytes(max))
	}
	return v, nil
}

// ParseSizes parses a comma-separated list of sizes (see ParseSize).
func ParseSizes(s string, max int64) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := ParseSize(f, max)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %q: empty list", ErrBadSize, s)
	}
	return out, nil
}

// FormatSize is units.FormatSize, which is where sizes are printed; it
// stays here only for the runner's case names.
func FormatSize(n int) string { return units.FormatSize(n) }
