package units

import (
	"errors"
	"testing"
	"time"
)

func TestParseBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		err  error
	}{
		{"64", 64, nil},
		{"64B", 64, nil},
		{" 4k ", 4096, nil},
		{"4K", 4096, nil},
		{"16KiB", 16 << 10, nil},
		{"4kb", 4096, nil},
		{"1MiB", 1 << 20, nil},
		{"2g", 2 << 30, nil},
		{"", 0, ErrNoNumber},
		{"MiB", 0, ErrNoNumber},
		{"1.5k", 0, ErrSyntax},
		{"12parsecs", 0, ErrSyntax},
		{"0", 0, ErrNotPos},
		{"-4k", 0, ErrNotPos},
		{"9999999999G", 0, ErrTooLarge},
	} {
		got, err := ParseBytes(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{
		{1, "1B"}, {64, "64B"}, {1500, "1500B"}, {1 << 10, "1KiB"}, {16 << 10, "16KiB"},
		{1<<10 + 1, "1025B"}, {1 << 20, "1MiB"}, {3 << 20, "3MiB"}, {1 << 30, "1GiB"}, {3 << 29, "1536MiB"},
	} {
		got := FormatSize(tt.n)
		if got != tt.want {
			t.Errorf("FormatSize(%d) = %s, want %s", tt.n, got, tt.want)
		}
		back, err := ParseBytes(got)
		if err != nil || back != int64(tt.n) {
			t.Errorf("ParseBytes(FormatSize(%d)) = %d, %v", tt.n, back, err)
		}
	}
}

// TestFormatBytes: byte counts beyond a 32-bit int (floor's stream totals)
// print exactly, on every platform.
func TestFormatBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{1500, "1500B"}, {1 << 31, "2GiB"}, {1<<32 + 1<<20, "4097MiB"}, {1 << 40, "1024GiB"}, {1<<40 + 1, "1099511627777B"},
	} {
		got := FormatBytes(tt.n)
		if got != tt.want {
			t.Errorf("FormatBytes(%d) = %s, want %s", tt.n, got, tt.want)
		}
		back, err := ParseBytes(got)
		if err != nil || back != tt.n {
			t.Errorf("ParseBytes(FormatBytes(%d)) = %d, %v", tt.n, back, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "24h"}, {72 * time.Hour, "72h"}, {90 * time.Minute, "1h30m"}, {time.Minute, "1m"},
		{90 * time.Second, "1m30s"}, {300 * time.Millisecond, "300ms"}, {time.Hour + time.Second, "1h0m1s"}, {0, "0s"},
	} {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}
