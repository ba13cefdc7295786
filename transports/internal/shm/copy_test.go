package shm

import (
	"bytes"
	"testing"
)

// TestRingCopy checks ringCopy against copy for sizes around its REP MOVSB
// threshold, unaligned offsets and short destinations or sources, with and
// without the instruction (where the CPU has it).
func TestRingCopy(t *testing.T) {
	src := make([]byte, 70000)
	for i := range src {
		src[i] = byte(i*7 + i>>8)
	}
	for _, n := range []int{0, 1, 255, 2047, 2048, 2049, 4099, 65536, 65540} {
		for _, off := range []int{0, 1, 3, 4, 63} {
			for _, short := range []string{"none", "dst", "src"} {
				dn, sn := n, n
				switch short {
				case "dst":
					dn = n / 2
				case "src":
					sn = n / 2
				}
				want := make([]byte, dn+off+8)
				got := make([]byte, dn+off+8)
				wn := copy(want[off:off+dn], src[off:off+sn])
				gn := ringCopy(got[off:off+dn], src[off:off+sn])
				if gn != wn || !bytes.Equal(got, want) {
					t.Fatalf("n %d off %d short %s: ringCopy = %d, copy = %d; bytes equal %v", n, off, short, gn, wn, bytes.Equal(got, want))
				}
			}
		}
	}
}
