package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadSize is wrapped by every size-parsing error.
var ErrBadSize = errors.New("bad size")

// sizeUnits maps unit suffixes (lower case) to multipliers. Message sizes are
// binary throughout ipcbench: "4k", "4K", "4KiB" and "4kb" all mean 4096
// bytes, because message and buffer sizes are powers of two in practice and
// a "64k" message that is 64,000 bytes surprises more people than it helps.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// ParseSize parses a byte count such as "64", "64B", "4k", "16KiB" or
// "1MiB". Units are binary (k = 1024). The result must be positive and at
// most max bytes (max <= 0 means no limit).
func ParseSize(s string, max int64) (int, error) {
	in := strings.TrimSpace(s)
	low := strings.ToLower(in)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(low, u.suffix) {
			mult = u.mult
			low = strings.TrimSpace(strings.TrimSuffix(low, u.suffix))
			break
		}
	}
	if low == "" {
		return 0, fmt.Errorf("%w %q: no number", ErrBadSize, s)
	}
	n, err := strconv.ParseInt(low, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q: want a whole number with an optional unit (B, k, KiB, M, MiB, G, GiB)", ErrBadSize, s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%w %q: must be positive", ErrBadSize, s)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%w %q: too large", ErrBadSize, s)
	}
	v := n * mult
	if max > 0 && v > max {
		return 0, fmt.Errorf("%w %q: larger than the maximum %s", ErrBadSize, s, FormatSize(int(max)))
	}
	return int(v), nil
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

// FormatSize renders a byte count compactly and exactly: "64B", "16KiB",
// "1MiB", "1500B". It is the inverse of ParseSize for the values it prints.
func FormatSize(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.Itoa(n>>30) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
