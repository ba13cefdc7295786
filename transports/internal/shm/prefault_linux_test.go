package shm

import (
	"io"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
)

// resident reports, page by page, whether the pages of b (page-aligned)
// are in memory (mincore(2)).
func resident(t *testing.T, b []byte) []bool {
	t.Helper()
	page := unix.Getpagesize()
	vec := make([]byte, (len(b)+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore: %v", e)
	}
	out := make([]bool, len(vec))
	for i, v := range vec {
		out[i] = v&1 != 0
	}
	return out
}

// residentPrefix returns how many bytes from b's start are resident
// before the first page that is not, and whether any page after it is.
func residentPrefix(t *testing.T, b []byte) (prefix int, later bool) {
	t.Helper()
	page := unix.Getpagesize()
	r := resident(t, b)
	i := 0
	for i < len(r) && r[i] {
		i++
	}
	for _, v := range r[i:] {
		later = later || v
	}
	return i * page, later
}

// TestPrefaultAheadOfFirstLap: the first bytes through a fresh ring fault
// in its first prefaultChunk on both sides at once, not page by page, and
// nothing beyond what the ring reached; writing on through the lap faults
// in the next chunk as the writer reaches it, and after a whole lap the
// whole ring is in. Both kinds, every byte checked. The messages are
// larger than hotWrite and smaller than half the ring, so that neither
// shm-ring's hot laps nor its short laps apply: both kinds go straight
// round the ring.
func TestPrefaultAheadOfFirstLap(t *testing.T) {
	const ring = 4 * prefaultChunk
	const size = hotWrite + 904
	for _, k := range []Kind{Lock, Ring} {
		t.Run(k.Name(), func(t *testing.T) {
			acc, dia := connectT(t, listenKindT(t, k, transports.Config{BufferSize: ring}), 0)
			if len(dia.tx.data) != ring {
				t.Fatalf("ring of %d bytes, want %d", len(dia.tx.data), ring)
			}
			if got, _ := residentPrefix(t, dia.tx.data); got >= prefaultChunk {
				t.Fatalf("%d bytes of a fresh ring are resident before any Write", got)
			}
			msg, buf := make([]byte, size), make([]byte, size)
			sent := 0
			exchange := func() {
				t.Helper()
				for i := range msg {
					msg[i] = byte(sent + i*7)
				}
				if _, err := dia.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(acc, buf); err != nil {
					t.Fatal(err)
				}
				if string(buf) != string(msg) {
					t.Fatalf("the message after %d bytes came out changed", sent)
				}
				sent += size
			}
			exchange()
			// Both sides map the same pages: the writer's populate puts
			// them in memory, and what mincore reports is the same
			// through either mapping.
			for _, side := range []struct {
				name string
				data []byte
			}{{"writer", dia.tx.data}, {"reader", acc.rx.data}} {
				got, later := residentPrefix(t, side.data)
				if got != prefaultChunk || later {
					t.Fatalf("after one message, the %s's ring has %d bytes resident from its start (and more later: %v), want %d and none later", side.name, got, later, prefaultChunk)
				}
			}
			if dia.tx.faulted != prefaultChunk || acc.rx.faulted != prefaultChunk {
				t.Fatalf("faulted in: writer %d, reader %d; want %d each", dia.tx.faulted, acc.rx.faulted, prefaultChunk)
			}
			for sent <= prefaultChunk {
				exchange()
			}
			if got, later := residentPrefix(t, dia.tx.data); got != 2*prefaultChunk || later {
				t.Fatalf("just past the first chunk, %d bytes resident (and more later: %v), want %d", got, later, 2*prefaultChunk)
			}
			// On through the ring's first lap, and into the second.
			for sent <= ring+prefaultChunk {
				exchange()
			}
			if got, _ := residentPrefix(t, dia.tx.data); got != ring {
				t.Fatalf("after a lap, %d bytes of the ring resident, want all %d", got, ring)
			}
			if dia.tx.faulted != ring || acc.rx.faulted != ring {
				t.Fatalf("faulted in after a lap: writer %d, reader %d; want %d", dia.tx.faulted, acc.rx.faulted, ring)
			}
		})
	}
}

// TestPrefaultBounds: prefault never reaches past the ring, leaves what
// it did alone for indices it covered (wrapped ones included), and stops
// trying where madvise refuses (memory that is not a mapping it can
// populate).
func TestPrefaultBounds(t *testing.T) {
	mem, err := unix.Mmap(-1, 0, 2*prefaultChunk+8192, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	size := uint64(len(mem))
	r := ringView{data: mem, write: true}
	for _, c := range []struct{ i, n, want uint64 }{
		{0, 1, prefaultChunk},
		{10, 100, prefaultChunk},                  // covered: nothing to do
		{prefaultChunk - 1, 2, 2 * prefaultChunk}, // crosses into the next chunk
		{2 * prefaultChunk, 10, size},             // the last, short chunk ends at the ring's end
		{size - 1, 1, size},
		{0, size, size},
	} {
		r.prefault(c.i, c.n)
		if r.faulted != c.want {
			t.Fatalf("prefault(%d, %d): faulted = %d, want %d", c.i, c.n, r.faulted, c.want)
		}
	}
	// Memory madvise cannot populate (PROT_NONE): prefault gives up for
	// good rather than trying at every copy.
	none, err := unix.Mmap(-1, 0, 2*prefaultChunk, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(none)
	r = ringView{data: none, write: true}
	r.prefault(0, 1)
	if r.faulted != uint64(len(none)) {
		t.Fatalf("after a refused madvise, faulted = %d, want %d (given up)", r.faulted, len(none))
	}
}
