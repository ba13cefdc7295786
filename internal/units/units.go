// Package units parses and prints the byte counts that ipcbench takes on
// its command line and in transport options: "64", "64B", "4k", "16KiB",
// "1MiB"; and prints the bounds of its durations ("24h").
// Units are binary throughout (k = 1024): "4k", "4K", "4KiB" and "4kb" all
// mean 4096 bytes, because message and buffer sizes are powers of two in
// practice and a "64k" message of 64,000 bytes surprises more people than
// it helps.
package units

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// suffixes maps unit suffixes (lower case) to multipliers, longest first.
var suffixes = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// Errors of ParseBytes; their text is the reason, for callers to wrap with
// the input and their own sentinel.
var (
	ErrNoNumber = errors.New("no number")
	ErrSyntax   = errors.New("want a whole number with an optional unit (B, k, KiB, M, MiB, G, GiB)")
	ErrNotPos   = errors.New("must be positive")
	ErrTooLarge = errors.New("too large")
)

// ParseBytes parses a positive byte count with an optional binary unit.
func ParseBytes(s string) (int64, error) {
	low := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range suffixes {
		if strings.HasSuffix(low, u.suffix) {
			mult = u.mult
			low = strings.TrimSpace(strings.TrimSuffix(low, u.suffix))
			break
		}
	}
	if low == "" {
		return 0, ErrNoNumber
	}
	n, err := strconv.ParseInt(low, 10, 64)
	if err != nil {
		return 0, ErrSyntax
	}
	if n <= 0 {
		return 0, ErrNotPos
	}
	if n > (1<<62)/mult {
		return 0, ErrTooLarge
	}
	return n * mult, nil
}

// FormatSize renders a byte count compactly and exactly: "64B", "16KiB",
// "1MiB", "1500B". ParseBytes reads back every value it prints.
func FormatSize(n int) string { return FormatBytes(int64(n)) }

// FormatBytes is FormatSize for an int64 byte count, such as a total that
// may exceed an int on 32-bit platforms ("1024GiB").
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// FormatDuration formats d as time.Duration.String does, without the
// zero minutes and seconds of a whole number of hours or minutes: "24h",
// not "24h0m0s"; and 90 minutes is "1h30m".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
