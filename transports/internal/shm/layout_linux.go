package shm

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/ipcbench/ipcbench/transports"
)

// Layout constants; the package documentation describes the layout in prose.
const (
	// layoutMagic identifies an ipcbench shm-lock mapping: "ipcbshm\x00" read
	// as a little-endian uint64.
	layoutMagic uint64 = 0x006d687362637069
	// ringMagic identifies an shm-ring mapping: "ipcbrng\x00".
	ringMagic uint64 = 0x00676e7262637069
	// layoutVersion is the version of the layout described in the package
	// documentation. A mapping with another version is refused.
	layoutVersion uint32 = 6
	// headerSize is the size of the header and the offset of ring 0's data;
	// one page, so that both rings start page-aligned.
	headerSize = 4096
	// cacheLine is the unit the header's fields are grouped by, so that the
	// producer's and the consumer's hot words do not share a line.
	cacheLine = 64
	// maxMapSize is the largest mapping a valid header can describe.
	maxMapSize = headerSize + 2*MaxRing
)

// Ring capacities per direction. Config.BufferSize, when positive, is
// rounded up to a power of two and clamped into [MinRing, MaxRing]; zero
// (or less) means DefaultRing. The effective capacity is reported as
// "ring_bytes" by EffectiveOptions.
const (
	MinRing     = 4 << 10 // one page: the smallest ring
	DefaultRing = 1 << 20 // 1 MiB, used when Config.BufferSize is 0
	// MaxRing is the largest ring: 1 GiB, or 512 MiB on a 32-bit platform,
	// where a mapping of the header and two rings must fit in an int (a
	// slice's length) and in the address space.
	MaxRing = 1 << (29 + bits.UintSize/64)
)

// Channel states, the header's state word.
const (
	stateInit      uint32 = 0 // the listener is writing the header
	stateListening uint32 = 1 // ready for one Dial
	stateAttached  uint32 = 2 // a Dial took the channel
)

// Mapping kinds, the header's flags word.
const (
	flagMemfd uint32 = 1
	flagFile  uint32 = 2
)

// header is the start of every mapping (see the package documentation for
// the byte offsets, which layout_test.go checks against this type). The
// first cache line is written by the listener before any peer can see the
// mapping and only read afterwards, except state, which Dial moves from
// stateListening to stateAttached with a compare-and-swap.
type header struct {
	magic      atomic.Uint64 // 0x000 layoutMagic
	version    atomic.Uint32 // 0x008 layoutVersion
	headerSize atomic.Uint32 // 0x00C headerSize
	ringCap    atomic.Uint64 // 0x010 bytes per ring, a power of two
	mapSize    atomic.Uint64 // 0x018 headerSize + 2*ringCap
	state      atomic.Uint32 // 0x020 stateInit, stateListening, stateAttached
	flags      atomic.Uint32 // 0x024 flagMemfd or flagFile
	_          [cacheLine - 0x28]byte
	rings      [2]ringCtl // 0x040 ring 0 (listener writes), 0x100 ring 1 (dialer writes)
}

// ringCtl is the control block of one ring: three cache lines, the first
// touched by both ends, the second written by the producer, the third by the
// consumer. wpos, rpos, used, laps and the two waiting flags are changed only
// with lock held; the sequence words and closed flags are changed with
// atomics alone.
type ringCtl struct {
	// line 0: both ends. readerClosed lives here rather than with the
	// consumer's words: the producer reads it on every write, and on the
	// consumer's line that read would pull the line over each time the
	// consumer publishes its tail, adding a cache miss to every message.
	lock         atomic.Uint32 // +0x00 futex mutex: 0 free, 1 held, 2 held, maybe waiters
	readerClosed atomic.Uint32 // +0x04 1: the reader will take no more
	used         atomic.Uint64 // +0x08 bytes in the ring, <= ringCap
	laps         atomic.Uint32 // +0x10 shm-lock: times the writer moved both indices back to 0 (see Conn.rewindLock)
	_            [cacheLine - 0x14]byte

	// line 1: producer
	wpos          atomic.Uint64 // +0x40 next byte to fill, < ringCap
	dataSeq       atomic.Uint32 // +0x48 futex word the reader sleeps on
	writerClosed  atomic.Uint32 // +0x4C 1: the writer will commit no more
	readerWaiting atomic.Uint32 // +0x50 1: the reader sleeps on dataSeq
	writerCPU     atomic.Uint32 // +0x54 the writing side's CPU + 1 when it last waited (adaptively, or parked); 0 unknown
	skip          atomic.Uint64 // +0x58 shm-ring: the head at which the writer skipped to the next lap of the ring
	_             [cacheLine - 0x20]byte

	// line 2: consumer
	rpos          atomic.Uint64 // +0x80 next byte to take, < ringCap
	spaceSeq      atomic.Uint32 // +0x88 futex word the writer sleeps on
	_             uint32
	writerWaiting atomic.Uint32 // +0x90 1: the writer sleeps on spaceSeq
	_             [cacheLine - 0x14]byte
}

// Compile-time checks that the Go types match the documented sizes.
var (
	_ [unsafe.Sizeof(ringCtl{}) - 3*cacheLine]struct{}
	_ [3*cacheLine - unsafe.Sizeof(ringCtl{})]struct{}
	_ [headerSize - unsafe.Sizeof(header{})]struct{}
)

// ringCapacity returns the ring capacity per direction for a requested
// Config.BufferSize: DefaultRing when size <= 0, otherwise size rounded up
// to a power of two and clamped into [MinRing, MaxRing].
func ringCapacity(size int) int {
	switch {
	case size <= 0:
		return DefaultRing
	case size <= MinRing:
		return MinRing
	case size >= MaxRing:
		return MaxRing
	}
	c := MinRing
	for c < size {
		c <<= 1
	}
	return c
}

// mapSizeFor returns the size of a mapping whose rings hold ringCap bytes.
func mapSizeFor(ringCap int) int { return headerSize + 2*ringCap }

// headerOf returns the header at the start of mem, which must be at least
// headerSize bytes long and 8-byte aligned (a mapping is page-aligned).
func headerOf(mem []byte) *header {
	return (*header)(unsafe.Pointer(&mem[0]))
}

// initHeader writes a fresh header into mem, a zero-filled mapping of
// mapSizeFor(ringCap) bytes, and publishes it by setting state last.
func initHeader(mem []byte, ringCap int, flags uint32, kind Kind) *header {
	h := headerOf(mem)
	h.magic.Store(magicOf(kind))
	h.version.Store(layoutVersion)
	h.headerSize.Store(headerSize)
	h.ringCap.Store(uint64(ringCap))
	h.mapSize.Store(uint64(len(mem)))
	h.flags.Store(flags)
	h.state.Store(stateListening)
	return h
}

// corruptf returns an error wrapping transports.ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, transports.ErrCorrupt)...)
}

// validateHeader checks the header of mem, a whole mapping as the peer
// attaches to it: magic, version, header size, ring capacity and mapping
// size must agree with each other and with len(mem). It returns the ring
// capacity, or an error wrapping transports.ErrCorrupt. It does not look at
// state or the ring control blocks.
func validateHeader(mem []byte, kind Kind) (ringCap int, err error) {
	if len(mem) < headerSize {
		return 0, corruptf("mapping of %d bytes is smaller than the %d-byte header", len(mem), headerSize)
	}
	h := headerOf(mem)
	if m := h.magic.Load(); m != magicOf(kind) {
		if m == magicOf(1-kind) {
			return 0, corruptf("mapping is a %s channel, not %s", (1 - kind).Name(), kind.Name())
		}
		return 0, corruptf("bad magic %#x", m)
	}
	if v := h.version.Load(); v != layoutVersion {
		return 0, corruptf("layout version %d, want %d", v, layoutVersion)
	}
	if hs := h.headerSize.Load(); hs != headerSize {
		return 0, corruptf("header size %d, want %d", hs, headerSize)
	}
	rc := h.ringCap.Load()
	if rc < MinRing || rc > MaxRing || rc&(rc-1) != 0 {
		return 0, corruptf("ring capacity %d is not a power of two in [%d, %d]", rc, MinRing, MaxRing)
	}
	ms := h.mapSize.Load()
	if ms != uint64(mapSizeFor(int(rc))) {
		return 0, corruptf("mapping size %d does not hold a %d-byte header and two %d-byte rings", ms, headerSize, rc)
	}
	if ms != uint64(len(mem)) {
		return 0, corruptf("header describes %d bytes but the mapping has %d", ms, len(mem))
	}
	if f := h.flags.Load(); f != flagMemfd && f != flagFile {
		return 0, corruptf("unknown flags %#x", f)
	}
	return int(rc), nil
}

// mappingName returns the user-facing name of a mapping kind (the "mapping"
// option value).
func mappingName(flags uint32) string {
	if flags == flagFile {
		return mappingFile
	}
	return mappingMemfd
}

// magicOf returns the magic number of kind's mappings.
func magicOf(kind Kind) uint64 {
	if kind == Ring {
		return ringMagic
	}
	return layoutMagic
}
