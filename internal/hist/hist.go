// Package hist records latency distributions in nanoseconds.
//
// A Histogram is a thin wrapper over github.com/HdrHistogram/hdrhistogram-go:
// an HdrHistogram tracking 1 ns to 100 s (Lowest..Highest) with 3
// significant decimal digits, so every recorded value is kept to within 0.1%
// of its true value, nothing is dropped, and histograms recorded separately
// (one per connection, one per interval) merge without loss of accuracy.
// Encode and Decode carry a histogram in raw records as the standard
// HdrHistogram V2 compressed encoding in base64 text, which other
// HdrHistogram implementations read too.
package hist

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Range and precision of every Histogram.
const (
	// Lowest is the smallest value tracked, in ns; smaller values are
	// recorded as Lowest.
	Lowest int64 = 1
	// Highest is the largest value tracked, in ns (100 s); larger values are
	// recorded as Highest and counted by Saturated.
	Highest int64 = 100_000_000_000
	// SignificantFigures is the number of significant decimal digits kept
	// for every value.
	SignificantFigures = 3
	// MaxEncodedLen bounds the length of the text Decode accepts.
	MaxEncodedLen = 16 << 20
)

// ErrCorrupt means an encoded histogram cannot be decoded: not base64, not
// an HdrHistogram V2 compressed encoding, damaged, or made with a range or
// precision other than this package's.
var ErrCorrupt = errors.New("hist: corrupt histogram encoding")

// Histogram is a latency histogram in nanoseconds. The zero value is an
// empty histogram ready to use; New returns the same thing.
//
// A Histogram is not safe for concurrent use: record into one histogram per
// goroutine and Merge them afterwards. It must not be copied after first use.
type Histogram struct {
	h         *hdrhistogram.Histogram
	saturated int64
}

// newHdr returns an empty histogram with this package's range and precision.
func newHdr() *hdrhistogram.Histogram {
	return hdrhistogram.New(Lowest, Highest, SignificantFigures)
}

// New returns an empty histogram tracking 1 ns .. 100 s with 3 significant
// figures.
func New() *Histogram {
	return &Histogram{h: newHdr()}
}

// hdr returns the underlying histogram, creating it for a zero Histogram.
func (h *Histogram) hdr() *hdrhistogram.Histogram {
	if h.h == nil {
		h.h = newHdr()
	}
	return h.h
}

// Record adds one value in ns. Values below Lowest are recorded as Lowest;
// values above Highest are recorded as Highest and counted by Saturated. It
// does not allocate.
func (h *Histogram) Record(ns int64) {
	if ns < Lowest {
		ns = Lowest
	} else if ns > Highest {
		ns = Highest
		h.saturated++
	}
	// In range by construction, so RecordValue cannot fail.
	_ = h.hdr().RecordValue(ns)
}

// Saturated returns how many recorded values were above Highest and clamped
// to it. For a histogram from Decode, which does not carry this count, it is
// the number of values equivalent to Highest (within its 0.1% bucket), a
// bound on the true count.
func (h *Histogram) Saturated() int64 {
	return h.saturated
}

// Merge adds every value recorded in o to h; o is unchanged. A nil o adds
// nothing.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.h == nil {
		return
	}
	// Both histograms have the same range: nothing can be dropped.
	h.hdr().Merge(o.h)
	h.saturated += o.saturated
}

// MergeWeighted adds every value recorded in o to h weight times, as if
// each had been recorded weight times: the merge for a histogram that
// holds one value in weight (a sampled one), so that merged with unsampled
// histograms it counts for all the values it stands for. o is unchanged;
// a nil o, or a weight below 1, adds nothing. MergeWeighted(o, 1) is
// Merge(o). Values stay in their 0.1% buckets; Saturated counts a clamped
// value weight times too. weight times o's count must fit in an int64:
// callers bound the weight (raw records' sample_every is at most
// bench.MaxSampleEvery).
func (h *Histogram) MergeWeighted(o *Histogram, weight int64) {
	if o == nil || o.h == nil || weight < 1 {
		return
	}
	if weight == 1 {
		h.Merge(o)
		return
	}
	dst := h.hdr()
	for _, b := range o.h.Distribution() {
		if b.Count == 0 {
			continue
		}
		// b.From is in range and names the bucket: RecordValues cannot
		// fail short of an overflowing count.
		_ = dst.RecordValues(b.From, b.Count*weight)
	}
	h.saturated += o.saturated * weight
}

// Count returns the number of recorded values.
func (h *Histogram) Count() int64 {
	if h.h == nil {
		return 0
	}
	return h.h.TotalCount()
}

// Min returns the smallest recorded value (to within 0.1%), or 0 when the
// histogram is empty.
func (h *Histogram) Min() int64 {
	if h.Count() == 0 {
		return 0
	}
	return h.h.Min()
}

// Max returns the largest recorded value (to within 0.1%, at most Highest),
// or 0 when the histogram is empty.
func (h *Histogram) Max() int64 {
	if h.Count() == 0 {
		return 0
	}
	return min(h.h.Max(), Highest)
}

// Mean returns the mean of the recorded values (each taken at the middle of
// its 0.1% bucket), or 0 when the histogram is empty. Report it beside the
// quantiles, never instead of them.
func (h *Histogram) Mean() float64 {
	if h.Count() == 0 {
		return 0
	}
	return h.h.Mean()
}

// Quantile returns the value at quantile q in [0,1] (0.5 is the median,
// 0.999 the 99.9th percentile): the smallest recorded value (to within 0.1%)
// that at least q of all values are less than or equal to. That is the
// nearest-rank quantile, the k-th smallest of n values for k = ⌈q·n⌉, never
// rounded down to a lower rank: of 1..7 µs, Quantile(0.9) is 7 µs (rank
// ⌈6.3⌉ = 7), not the 6 µs that rounding the rank to nearest gives. The
// value returned is the highest value equivalent to that one (the top of
// its 0.1% bucket), as HdrHistogram reports quantiles. Quantile(0) is Min
// and Quantile(1) is Max; q outside [0,1] is clamped to it and NaN is read
// as 0. An empty histogram returns 0.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.Count()
	switch {
	case n == 0:
		return 0
	case math.IsNaN(q) || q <= 0:
		return h.Min()
	case q >= 1:
		return h.Max()
	}
	return h.atRanks([]int64{nearestRank(q, n)})[0]
}

// Quantiles returns Quantile of each of qs, which must be ascending and
// inside (0,1), in one pass over the buckets.
func (h *Histogram) Quantiles(qs ...float64) []int64 {
	n := h.Count()
	if n == 0 {
		return make([]int64, len(qs))
	}
	ks := make([]int64, len(qs))
	for i, q := range qs {
		ks[i] = nearestRank(q, n)
	}
	return h.atRanks(ks)
}

// atRanks returns, for each rank k of ks (ascending, in [1, Count]), the
// highest value equivalent to the k-th smallest recorded value, in one
// pass over the buckets.
func (h *Histogram) atRanks(ks []int64) []int64 {
	out := make([]int64, len(ks))
	var seen int64
	i := 0
	for _, b := range h.h.Distribution() {
		seen += b.Count
		for ; i < len(ks) && seen >= ks[i]; i++ {
			out[i] = min(b.To, Highest)
		}
		if i == len(ks) {
			break
		}
	}
	return out
}

// nearestRank returns ⌈q·n⌉ for q in (0,1), clamped to [1,n]. The product
// is taken down first by a few units in the last place of n, the most
// that q's binary rounding moves it, so that an exact rank is not pushed
// up by one (0.07·100 is 7.000000000000001 in float64, and its rank is 7,
// not 8), and no rank is taken down by a whole one however large n is.
func nearestRank(q float64, n int64) int64 {
	r := q * float64(n)
	k := int64(math.Ceil(r - float64(n)*0x1p-50))
	return max(1, min(k, n))
}

// Reset empties the histogram, keeping its memory for reuse.
func (h *Histogram) Reset() {
	if h.h != nil {
		h.h.Reset()
	}
	h.saturated = 0
}

// Encode returns the histogram in HdrHistogram's V2 compressed encoding as
// base64 text, the form raw records store. Decode reverses it.
func (h *Histogram) Encode() (string, error) {
	b, err := h.hdr().Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("hist: encode: %w", err)
	}
	return string(b), nil
}

// Decode parses text made by Encode. Malformed input, including an
// encoding with another range or precision, returns an error wrapping
// ErrCorrupt; Decode never panics and allocates no more than a Histogram
// of this package's range needs.
func Decode(s string) (h *Histogram, err error) {
	if len(s) > MaxEncodedLen {
		return nil, fmt.Errorf("%w: %d bytes of text exceeds the limit of %d", ErrCorrupt, len(s), MaxEncodedLen)
	}
	if err := checkGeometry(s); err != nil {
		return nil, err
	}
	defer func() {
		// hdrhistogram-go hardens its decoder against malformed input;
		// this guards against a case it missed.
		if r := recover(); r != nil {
			h, err = nil, fmt.Errorf("%w: decoder failed: %v", ErrCorrupt, r)
		}
	}()
	d, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	h = &Histogram{h: d}
	if d.Max() < Highest { // nothing near the top: skip the full scan
		return h, nil
	}
	for _, b := range d.Distribution() {
		if b.To >= Highest {
			h.saturated += b.Count
		}
	}
	return h, nil
}

// V2 compressed encoding layout (HdrHistogram's spec): a big-endian int32
// cookie and an int32 length of the zlib stream that follows; the inflated
// stream starts with a 40-byte header: cookie, payload length, normalizing
// index offset, significant digits (int32 each), lowest and highest
// trackable values (int64 each), and a float64 conversion ratio.
const (
	outerHeaderLen  = 8
	innerHeaderLen  = 40
	offSigFigs      = 12
	offLowest       = 16
	offHighest      = 24
	v2CompressedTag = 0x1c849304
)

// checkGeometry reads the header of the encoding in s and rejects a range
// or precision other than this package's, before the decoder allocates
// counts for it.
func checkGeometry(s string) error {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: not base64: %w", ErrCorrupt, err)
	}
	if len(raw) < outerHeaderLen {
		return fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrCorrupt, len(raw), outerHeaderLen)
	}
	if cookie := binary.BigEndian.Uint32(raw) &^ 0xf0; cookie != v2CompressedTag {
		return fmt.Errorf("%w: cookie %#x is not the V2 compressed encoding", ErrCorrupt, cookie)
	}
	z, err := zlib.NewReader(bytes.NewReader(raw[outerHeaderLen:]))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	defer z.Close()
	var hdr [innerHeaderLen]byte
	if _, err := io.ReadFull(z, hdr[:]); err != nil {
		return fmt.Errorf("%w: reading the histogram header: %w", ErrCorrupt, err)
	}
	sig := int32(binary.BigEndian.Uint32(hdr[offSigFigs:]))
	lo := int64(binary.BigEndian.Uint64(hdr[offLowest:]))
	hi := int64(binary.BigEndian.Uint64(hdr[offHighest:]))
	if sig != SignificantFigures || lo > Lowest || hi != Highest {
		return fmt.Errorf("%w: histogram of range %d..%d with %d significant figures, want %d..%d with %d",
			ErrCorrupt, lo, hi, sig, Lowest, Highest, SignificantFigures)
	}
	return nil
}

// Point is one point of a cumulative distribution: Quantile (in [0,1]) of
// all values are less than or equal to Value (ns).
type Point struct {
	Quantile float64
	Value    int64
}

// cdfPerDecade is how many points CDF gives per decade of the tail
// (between 90% and 99%, between 99% and 99.9%, ...).
const cdfPerDecade = 40

// CDF returns the cumulative distribution of the recorded values, for
// plotting: points in increasing order of Quantile and Value, each the
// value Quantile gives (the nearest-rank one), at quantiles evenly spaced
// in -log10(1-q), cdfPerDecade to a decade, so that 0.9, 0.99, 0.999 are
// among them, and at 0.5; from Quantile 0 at Min to the last below
// 1-1/Count, then Quantile 1 at Max. A curve through them passes through
// every percentile a report prints. An empty histogram returns nil.
func (h *Histogram) CDF() []Point {
	n := h.Count()
	if n == 0 {
		return nil
	}
	top := math.Log10(float64(n)) // -log10(1-q) of q = 1-1/n
	var qs []float64
	// Up to top itself: at a Count of exactly 10, 100, 1000, ... the last
	// printed percentile (p90, p99, p99.9) is the quantile 1-1/Count.
	for k := 0; k == 0 || float64(k)/cdfPerDecade <= top+1e-9; k++ {
		q := 1 - math.Pow(10, -float64(k)/cdfPerDecade)
		if len(qs) > 0 && qs[len(qs)-1] < 0.5 && q > 0.5 {
			qs = append(qs, 0.5)
		}
		qs = append(qs, q)
	}
	ks := make([]int64, len(qs))
	for i, q := range qs[1:] { // qs[0] is 0: Min
		ks[i+1] = nearestRank(q, n)
	}
	ks[0] = 1
	vs := h.atRanks(ks)
	vs[0] = h.Min()
	pts := make([]Point, 0, len(qs)+1)
	for i, q := range qs {
		pts = append(pts, Point{Quantile: q, Value: vs[i]})
	}
	return append(pts, Point{Quantile: 1, Value: h.Max()})
}
