package floor

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
)

// Units of a measured value; the unit also says which way is better.
const (
	UnitNS   = "ns"    // p50 round trip in nanoseconds: lower is better
	UnitMBps = "MB/s"  // stream throughput, 10^6 bytes/s: higher is better
	UnitMsgs = "msg/s" // fanin round trips per second: higher is better
)

// CProgram names one C floor run: the program, its mode and any extra
// arguments.
type CProgram struct {
	Program string   // pingpong, stream or fanin
	Mode    string   // one of the program's modes
	Args    []string // extra arguments, such as "-v" or "-S 20000"
}

// String is the mode and arguments as tables show them ("unix -v").
func (c CProgram) String() string {
	return strings.Join(append([]string{c.Mode}, c.Args...), " ")
}

// Pair is one ipcbench case and the C program it is held against.
type Pair struct {
	Workload  string // pingpong, stream or fanin
	Variant   string // an ipcbench transport variant, as -t takes it
	Size      int    // payload bytes per message
	Conns     int    // connections (fanin; 1 otherwise)
	Placement string // unpinned, same-core or cross-core
	C         CProgram
	// Target is what the ratio ipcbench/C must meet ("≤ 1.2×", "≥ 0.9×"),
	// or "—" for a row shown for reference.
	Target string
}

// Unit is the unit of both sides' values.
func (p Pair) Unit() string {
	switch p.Workload {
	case "stream":
		return UnitMBps
	case "fanin":
		return UnitMsgs
	}
	return UnitNS
}

// Placements of the pairs where pinning is possible, and where it is not.
var (
	pinnedPlaces   = []string{"same-core", "cross-core", "unpinned"}
	unpinnedPlaces = []string{"unpinned"}
)

// Message sizes and connection counts of the pairs.
const (
	pingpongSize    = 64
	streamSize      = 64 << 10
	largeStreamSize = 1 << 20
	faninSize       = 1 << 10
)

// GoRingBytes is the size of shm-ring's ring (its DefaultRing), which the
// C ring of a stream pair holds as well: -r ringSlots(size) slots of one
// message each (the C ring's default, 16 slots, is this at 64 KiB).
const GoRingBytes = 1 << 20

// ringSlots is the number of C ring slots of size bytes that hold
// GoRingBytes, at least one.
func ringSlots(size int) int { return max(1, GoRingBytes/size) }

// FaninConns are the connection counts of the fanin pairs.
var FaninConns = []int{1, 4, 16, 64}

// ShmDefaultSpinNS is shm-ring's default adaptive spin budget, given to the
// C spin-then-sleep program so both spin as long.
const ShmDefaultSpinNS = 20000

// Pairs returns the pairs to measure; the pinned placements (same-core,
// cross-core) and the shared-memory round trips need two CPUs.
func Pairs(twoCPUs bool) []Pair {
	var ps []Pair
	places := unpinnedPlaces
	if twoCPUs {
		places = pinnedPlaces
	}
	mechs := []struct{ variant, c string }{{"pipe", "pipe"}, {"unix", "unix"}, {"tcp-localhost", "tcp"}}
	// Round trips over blocking descriptors: the netpoller variant is held
	// to 1.5×, the best (io=raw) to 1.2×.
	for _, m := range mechs {
		for _, pl := range places {
			for _, v := range []struct{ variant, target string }{{m.variant, "≤ 1.5×"}, {m.variant + "[io=raw]", "≤ 1.2×"}} {
				ps = append(ps, Pair{Workload: "pingpong", Variant: v.variant, Size: pingpongSize, Conns: 1, Placement: pl,
					C: CProgram{Program: "pingpong", Mode: m.c}, Target: v.target})
			}
		}
	}
	if twoCPUs {
		pp := func(variant, place, mode, target string, args ...string) Pair {
			return Pair{Workload: "pingpong", Variant: variant, Size: pingpongSize, Conns: 1, Placement: place,
				C: CProgram{Program: "pingpong", Mode: mode, Args: args}, Target: target}
		}
		ps = append(ps,
			pp("shm-ring[wait=spin]", "cross-core", "spin", "≤ 2×"),
			pp("shm-ring", "cross-core", "spinfutex", "≤ 1.5×", "-S", strconv.Itoa(ShmDefaultSpinNS)),
			pp("shm-ring[wait=futex]", "cross-core", "futex", "—"),
			pp("shm-ring[wait=futex]", "same-core", "futex", "—"),
			pp("shm-lock[wait=futex]", "cross-core", "pshared", "—"),
		)
	}
	// Streams: descriptors against C sending the same length-prefixed
	// frames with writev; shm-ring against the C ring.
	st := func(variant string, size int, mode, target string, args ...string) Pair {
		return Pair{Workload: "stream", Variant: variant, Size: size, Conns: 1, Placement: "unpinned",
			C: CProgram{Program: "stream", Mode: mode, Args: args}, Target: target}
	}
	for _, m := range mechs {
		ps = append(ps, st(m.variant, streamSize, m.c, "≥ 0.9×", "-v"), st(m.variant+"[io=raw]", streamSize, m.c, "≥ 0.9×", "-v"))
	}
	ps = append(ps,
		st("shm-ring", streamSize, "ring-futex", "≥ 0.8×"),
		st("shm-ring[wait=spin]", streamSize, "ring-spin", "≥ 0.8×"),
		st("shm-ring[zerocopy=off]", streamSize, "ring-futex", "—"),
		st("shm-ring", largeStreamSize, "ring-futex", "—", "-r", strconv.Itoa(ringSlots(largeStreamSize))),
		st("unix", largeStreamSize, "unix", "—", "-v"),
	)
	// Fanin: N connections served by one process; shm-ring against the C
	// unix server, the fastest socket floor here.
	for _, m := range []struct{ variant, c string }{{"pipe", "pipe"}, {"unix", "unix"}, {"tcp-localhost", "tcp"}, {"shm-ring", "unix"}} {
		for _, n := range FaninConns {
			ps = append(ps, Pair{Workload: "fanin", Variant: m.variant, Size: faninSize, Conns: n, Placement: "unpinned",
				C: CProgram{Program: "fanin", Mode: m.c}, Target: "—"})
		}
	}
	return ps
}

// Name identifies p in one line: workload/variant/size/conns/placement,
// as in "fanin/unix/1KiB/16/unpinned".
func (p Pair) Name() string {
	return fmt.Sprintf("%s/%s/%s/%d/%s", p.Workload, p.Variant, bench.FormatSize(p.Size), p.Conns, p.Placement)
}

// Select returns the pairs whose Name the regular expression pattern
// matches; an error wrapping ErrBadConfig when pattern is not one or
// matches none.
func Select(pairs []Pair, pattern string) ([]Pair, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	var out []Pair
	for _, p := range pairs {
		if re.MatchString(p.Name()) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q matches no pair (names look like %s)", ErrBadConfig, pattern, pairs[0].Name())
	}
	return out, nil
}
