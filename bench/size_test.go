package bench

import (
	"errors"
	"math"
	"strconv"
	"testing"

	"github.com/ipcbench/ipcbench/internal/units"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int
		err  bool
	}{
		{"64", 64, false},
		{"64B", 64, false},
		{"4k", 4096, false},
		{"4K", 4096, false},
		{"16KiB", 16384, false},
		{"1MiB", 1 << 20, false},
		{"1m", 1 << 20, false},
		{" 2 kb ", 2048, false},
		{"", 0, true},
		{"0", 0, true},
		{"-5", 0, true},
		{"1.5k", 0, true},
		{"abc", 0, true},
		{"10XB", 0, true},
		{"65MiB", 0, true}, // over the max below
		{"99999999999999999999", 0, true},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in, 64<<20)
		if c.err {
			if !errors.Is(err, ErrBadSize) {
				t.Errorf("ParseSize(%q) = %d, %v; want ErrBadSize", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// TestParseSizeBeyondInt: a size that does not fit in an int (over 2 GiB
// on a 32-bit platform) is refused, never truncated; ParseSize64 takes it
// on every platform.
func TestParseSizeBeyondInt(t *testing.T) {
	for _, max := range []int64{0, 1 << 40} {
		got, err := ParseSize("4GiB", max)
		if strconv.IntSize == 32 {
			if !errors.Is(err, ErrBadSize) {
				t.Errorf("ParseSize(4GiB, %d) = %d, %v; want ErrBadSize (over math.MaxInt)", max, got, err)
			}
		} else if err != nil || int64(got) != 4<<30 {
			t.Errorf("ParseSize(4GiB, %d) = %d, %v; want %d", max, got, err, int64(4<<30))
		}
	}
	if got, err := ParseSize("2147483647", 0); err != nil || got != math.MaxInt32 {
		t.Errorf("ParseSize(2147483647) = %d, %v", got, err)
	}
	if got, err := ParseSize64("1024GiB", 1<<40); err != nil || got != 1<<40 {
		t.Errorf("ParseSize64(1024GiB) = %d, %v; want %d", got, err, int64(1<<40))
	}
	if _, err := ParseSize64("1025GiB", 1<<40); !errors.Is(err, ErrBadSize) {
		t.Errorf("ParseSize64(1025GiB, 1TiB): %v; want ErrBadSize", err)
	}
}

func TestParseSizesAndFormat(t *testing.T) {
	got, err := ParseSizes("64,1KiB,16k,,64KiB,1MiB", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"64B", "1KiB", "16KiB", "64KiB", "1MiB"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i, n := range got {
		if units.FormatSize(n) != want[i] {
			t.Errorf("units.FormatSize(%d) = %s, want %s", n, units.FormatSize(n), want[i])
		}
		back, err := ParseSize(units.FormatSize(n), 0)
		if err != nil || back != n {
			t.Errorf("round trip %d: %d %v", n, back, err)
		}
	}
	if _, err := ParseSizes(",", 0); !errors.Is(err, ErrBadSize) {
		t.Errorf("empty list: %v", err)
	}
	if units.FormatSize(1500) != "1500B" {
		t.Errorf("units.FormatSize(1500) = %s", units.FormatSize(1500))
	}
}
