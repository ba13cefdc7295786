package hist

import (
	"encoding/base64"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// within reports whether got is within 0.1% (3 significant figures) of want.
func within(got, want int64) bool {
	return math.Abs(float64(got-want)) <= math.Max(1, 0.001*float64(want))
}

// record returns a histogram holding vals.
func record(tb testing.TB, vals ...int64) *Histogram {
	tb.Helper()
	h := New()
	for _, v := range vals {
		h.Record(v)
	}
	return h
}

func TestEmpty(t *testing.T) {
	for name, h := range map[string]*Histogram{"New": New(), "zero value": {}} {
		t.Run(name, func(t *testing.T) {
			if h.Count() != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 || h.Quantile(0.5) != 0 || h.Saturated() != 0 {
				t.Errorf("empty histogram: count %d min %d max %d mean %v p50 %d sat %d",
					h.Count(), h.Min(), h.Max(), h.Mean(), h.Quantile(0.5), h.Saturated())
			}
			if h.CDF() != nil {
				t.Error("CDF of an empty histogram is not nil")
			}
			s, err := h.Encode()
			if err != nil {
				t.Fatal(err)
			}
			d, err := Decode(s)
			if err != nil || d.Count() != 0 {
				t.Fatalf("decode of empty: %v, count %d", err, d.Count())
			}
		})
	}
}

func TestZeroValueRecords(t *testing.T) {
	var h Histogram
	h.Record(1500)
	if h.Count() != 1 || !within(h.Max(), 1500) {
		t.Errorf("zero-value histogram: count %d max %d", h.Count(), h.Max())
	}
}

func TestQuantiles(t *testing.T) {
	// 1..10000 µs in ns: quantile q is about q*10000 µs.
	h := New()
	for i := int64(1); i <= 10000; i++ {
		h.Record(i * 1000)
	}
	tests := []struct {
		q    float64
		want int64
	}{
		{0, 1000},
		{0.5, 5_000_000},
		{0.9, 9_000_000},
		{0.99, 9_900_000},
		{0.999, 9_990_000},
		{1, 10_000_000},
		{-1, 1000},
		{2, 10_000_000},
		{math.NaN(), 1000},
	}
	for _, tt := range tests {
		if got := h.Quantile(tt.q); !within(got, tt.want) {
			t.Errorf("Quantile(%v) = %d, want %d ±0.1%%", tt.q, got, tt.want)
		}
	}
	if h.Count() != 10000 {
		t.Errorf("Count = %d", h.Count())
	}
	if !within(h.Min(), 1000) || !within(h.Max(), 10_000_000) {
		t.Errorf("Min, Max = %d, %d", h.Min(), h.Max())
	}
	if m := h.Mean(); math.Abs(m-5_000_500) > 5_000 {
		t.Errorf("Mean = %v, want about 5000500", m)
	}
}

// seq returns lo, lo+1, ..., hi.
func seq(lo, hi int64) []int64 {
	var out []int64
	for v := lo; v <= hi; v++ {
		out = append(out, v)
	}
	return out
}

// TestQuantileNearestRank checks Quantile against the nearest-rank
// definition, the k-th smallest value for k = ⌈q·n⌉, on values below 2048
// ns, which the histogram holds exactly.
func TestQuantileNearestRank(t *testing.T) {
	tests := []struct {
		vals []int64
		q    float64
		want int64
	}{
		{seq(1, 7), 0.9, 7}, // ⌈6.3⌉ = 7; rounding the rank to nearest gave 6
		{seq(1, 7), 0.5, 4}, // ⌈3.5⌉
		{seq(1, 7), 0.1, 1}, // ⌈0.7⌉
		{seq(1, 7), 1.0 / 7, 1},
		{seq(1, 7), 0.99, 7},
		{seq(1, 100), 0.07, 7}, // 0.07·100 is 7.000000000000001 in float64
		{seq(1, 100), 0.5, 50},
		{seq(1, 100), 0.9, 90},
		{seq(1, 100), 0.951, 96}, // ⌈95.1⌉; to nearest gave 95
		{seq(1, 100), 0.99, 99},
		{seq(1, 100), 0.999, 100},
		{seq(1, 1000), 0.999, 999},
		{seq(1, 1000), 0.9991, 1000}, // ⌈999.1⌉; to nearest gave 999
		{[]int64{5, 5, 5, 9}, 0.75, 5},
		{[]int64{5, 5, 5, 9}, 0.76, 9},
		{[]int64{42}, 0.5, 42},
		// q = 0 is the smallest value, q = 1 the largest; outside [0,1]
		// is clamped and NaN is 0.
		{seq(10, 20), 0, 10},
		{seq(10, 20), 1, 20},
		{seq(10, 20), -3, 10},
		{seq(10, 20), 7, 20},
		{seq(10, 20), math.NaN(), 10},
	}
	for _, tt := range tests {
		h := record(t, tt.vals...)
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) of %d values %d..%d = %d, want %d", tt.q, len(tt.vals), tt.vals[0], tt.vals[len(tt.vals)-1], got, tt.want)
		}
	}
	// Above 2047 ns a bucket spans several values: Quantile returns the
	// top of the bucket, the value HdrHistogram's ValueAtQuantile returns.
	for _, v := range []int64{1000, 2049, 7000, 123_457, 9_876_543_210, Highest} {
		h := record(t, v)
		for _, q := range []float64{0.5, 0.99, 1} {
			if got, want := h.Quantile(q), min(h.h.ValueAtQuantile(q*100), Highest); got != want {
				t.Errorf("Quantile(%v) of {%d} = %d, want %d as HdrHistogram gives", q, v, got, want)
			}
		}
	}
	// 1..7 µs, one value each: p90 is 7 µs (the top of its bucket).
	h := record(t, 1000, 2000, 3000, 4000, 5000, 6000, 7000)
	if got := h.Quantile(0.9); !within(got, 7000) {
		t.Errorf("p90 of 1..7 µs = %d, want 7 µs", got)
	}
	if got := New().Quantile(0.9); got != 0 {
		t.Errorf("p90 of an empty histogram = %d, want 0", got)
	}
}

func TestClamp(t *testing.T) {
	tests := []struct {
		name    string
		vals    []int64
		wantMin int64
		wantMax int64
		wantSat int64
	}{
		{"zero", []int64{0}, 1, 1, 0},
		{"negative", []int64{-50, 7}, 1, 7, 0},
		{"at highest", []int64{Highest}, Highest - Highest/1000, Highest, 0},
		{"above highest", []int64{5, Highest + 1, math.MaxInt64}, 5, Highest, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := record(t, tt.vals...)
			if h.Count() != int64(len(tt.vals)) {
				t.Fatalf("Count = %d, want %d", h.Count(), len(tt.vals))
			}
			if !within(h.Min(), tt.wantMin) || h.Max() > Highest || !within(h.Max(), tt.wantMax) {
				t.Errorf("Min, Max = %d, %d; want %d, %d", h.Min(), h.Max(), tt.wantMin, tt.wantMax)
			}
			if h.Saturated() != tt.wantSat {
				t.Errorf("Saturated = %d, want %d", h.Saturated(), tt.wantSat)
			}
			if q := h.Quantile(1); q > Highest {
				t.Errorf("Quantile(1) = %d above Highest", q)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	a := record(t, 100, 200, 300, Highest*2)
	b := record(t, 400, 500, Highest*3)
	all := record(t, 100, 200, 300, Highest*2, 400, 500, Highest*3)
	a.Merge(b)
	a.Merge(nil)
	a.Merge(&Histogram{})
	if a.Count() != all.Count() || a.Saturated() != 2 {
		t.Fatalf("merged Count, Saturated = %d, %d; want %d, 2", a.Count(), a.Saturated(), all.Count())
	}
	for _, q := range []float64{0, 0.25, 0.5, 0.75, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("Quantile(%v): merged %d, recorded together %d", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if b.Count() != 3 {
		t.Errorf("Merge changed its argument: count %d", b.Count())
	}
	var z Histogram
	z.Merge(b)
	if z.Count() != 3 || z.Saturated() != 1 {
		t.Errorf("merge into zero value: count %d sat %d", z.Count(), z.Saturated())
	}
}

// TestMergeWeighted checks that a histogram merged with weight w counts
// as if each of its values had been recorded w times.
func TestMergeWeighted(t *testing.T) {
	sampled := record(t, 1000, 3000, 123_456, Highest+1) // holds one value in 16
	full := record(t, 500, 600)
	want := New()
	for _, v := range []int64{1000, 3000, 123_456, Highest + 1} {
		for range 16 {
			want.Record(v)
		}
	}
	want.Merge(full)

	got := New()
	got.Merge(full)
	got.MergeWeighted(sampled, 16)
	got.MergeWeighted(nil, 16)
	got.MergeWeighted(&Histogram{}, 16)
	got.MergeWeighted(sampled, 0) // no weight: nothing added
	if got.Count() != 66 || got.Saturated() != 16 {
		t.Fatalf("Count, Saturated = %d, %d; want 66, 16", got.Count(), got.Saturated())
	}
	for _, q := range []float64{0, 0.03, 0.05, 0.3, 0.5, 0.9, 0.99, 1} {
		if got.Quantile(q) != want.Quantile(q) {
			t.Errorf("Quantile(%v): weighted merge %d, recorded 16 times %d", q, got.Quantile(q), want.Quantile(q))
		}
	}
	if got.Mean() != want.Mean() || got.Min() != want.Min() || got.Max() != want.Max() {
		t.Errorf("mean, min, max: weighted merge %v %d %d, recorded 16 times %v %d %d",
			got.Mean(), got.Min(), got.Max(), want.Mean(), want.Min(), want.Max())
	}
	if sampled.Count() != 4 {
		t.Errorf("MergeWeighted changed its argument: count %d", sampled.Count())
	}
	one, plain := New(), New()
	one.MergeWeighted(sampled, 1)
	plain.Merge(sampled)
	if one.Count() != plain.Count() || one.Quantile(0.5) != plain.Quantile(0.5) || one.Saturated() != plain.Saturated() {
		t.Error("MergeWeighted(o, 1) differs from Merge(o)")
	}
}

func TestReset(t *testing.T) {
	h := record(t, 1, 2, Highest+5)
	h.Reset()
	if h.Count() != 0 || h.Saturated() != 0 || h.Max() != 0 {
		t.Errorf("after Reset: count %d sat %d max %d", h.Count(), h.Saturated(), h.Max())
	}
	h.Record(42)
	if h.Count() != 1 || h.Max() != 42 {
		t.Errorf("record after Reset: count %d max %d", h.Count(), h.Max())
	}
}

func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		name string
		vals []int64
		sat  int64
	}{
		{"one", []int64{12345}, 0},
		{"spread", []int64{1, 10, 100, 1000, 10_000, 1_000_000, 1_000_000_000}, 0},
		{"saturated", []int64{50, Highest + 1, Highest + 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := record(t, tt.vals...)
			s, err := h.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				t.Fatalf("Encode is not base64: %v", err)
			}
			d, err := Decode(s)
			if err != nil {
				t.Fatal(err)
			}
			if d.Count() != h.Count() || d.Min() != h.Min() || d.Max() != h.Max() || d.Mean() != h.Mean() {
				t.Errorf("decoded count/min/max/mean %d/%d/%d/%v, want %d/%d/%d/%v",
					d.Count(), d.Min(), d.Max(), d.Mean(), h.Count(), h.Min(), h.Max(), h.Mean())
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				if d.Quantile(q) != h.Quantile(q) {
					t.Errorf("Quantile(%v) = %d after decoding, %d before", q, d.Quantile(q), h.Quantile(q))
				}
			}
			if d.Saturated() != tt.sat {
				t.Errorf("decoded Saturated = %d, want %d", d.Saturated(), tt.sat)
			}
			// A decoded histogram merges and records like any other.
			d.Merge(h)
			d.Record(7)
			if d.Count() != 2*h.Count()+1 {
				t.Errorf("decoded histogram count after merge = %d", d.Count())
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := record(t, 1, 2, 3, 1000).Encode()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(good)
	flip := append([]byte(nil), raw...)
	flip[len(flip)-3] ^= 0xff
	other, err := hdrhistogram.New(1, 1_000_000, 2).Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	wide, err := hdrhistogram.New(1, 1_000_000_000_000, 3).Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"not base64", "!!!not base64!!!"},
		{"too short", base64.StdEncoding.EncodeToString([]byte{1, 2, 3})},
		{"bad cookie", base64.StdEncoding.EncodeToString(append([]byte{0, 0, 0, 1}, raw[4:]...))},
		{"not zlib", base64.StdEncoding.EncodeToString(append(append([]byte(nil), raw[:8]...), "garbage garbage"...))},
		{"truncated", base64.StdEncoding.EncodeToString(raw[:len(raw)-6])},
		{"flipped checksum byte", base64.StdEncoding.EncodeToString(flip)},
		{"other precision", string(other)},
		{"other range", string(wide)},
		{"too long", strings.Repeat("A", MaxEncodedLen+4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Decode(tt.in)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode = %v, %v; want ErrCorrupt", h, err)
			}
			if h != nil {
				t.Fatal("Decode returned a histogram with an error")
			}
		})
	}
}

func TestCDF(t *testing.T) {
	h := New()
	for i := int64(1); i <= 1000; i++ {
		h.Record(i * 100)
	}
	h.Record(Highest + 1)
	pts := h.CDF()
	if len(pts) < 10 {
		t.Fatalf("CDF has %d points", len(pts))
	}
	for i := 1; i < len(pts); i++ {
		if pts[i].Quantile < pts[i-1].Quantile || pts[i].Value < pts[i-1].Value {
			t.Fatalf("CDF not monotonic at %d: %+v then %+v", i, pts[i-1], pts[i])
		}
	}
	last := pts[len(pts)-1]
	if last.Quantile != 1 || last.Value != h.Max() || last.Value != Highest {
		t.Errorf("last CDF point %+v, want quantile 1 at Max %d", last, h.Max())
	}
	if pts[0].Quantile < 0 || !within(pts[0].Value, 100) {
		t.Errorf("first CDF point %+v", pts[0])
	}
}

func TestRecordZeroAllocs(t *testing.T) {
	h := New()
	v := int64(0)
	if a := testing.AllocsPerRun(1000, func() {
		v += 977
		h.Record(v)
		h.Record(-1)
		h.Record(Highest * 2)
	}); a != 0 {
		t.Errorf("Record: %v allocations", a)
	}
}

func FuzzDecode(f *testing.F) {
	for _, vals := range [][]int64{nil, {1}, {5, 500, 50_000, Highest + 1}} {
		h := New()
		for _, v := range vals {
			h.Record(v)
		}
		s, err := h.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add("HISTFAAAACR42pJpmSzMwMDAyAABzFCaEUoz2X+AsQEBAAD//1YWBGQ=")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Decode(s)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || h != nil {
				t.Fatalf("Decode error %v (histogram %v), want ErrCorrupt and nil", err, h)
			}
			return
		}
		if h.Max() > Highest || h.Quantile(1) > Highest || h.Saturated() > h.Count() {
			t.Fatalf("decoded histogram out of range: max %d sat %d count %d", h.Max(), h.Saturated(), h.Count())
		}
		s2, err := h.Encode()
		if err != nil {
			t.Fatal(err)
		}
		h2, err := Decode(s2)
		if err != nil || h2.Count() != h.Count() || h2.Max() != h.Max() {
			t.Fatalf("re-decode: %v, count %d vs %d", err, h2.Count(), h.Count())
		}
	})
}

// TestCDFHitsPercentiles: the CDF's points include the percentiles a
// report prints, each at the value Quantile gives, so a chart drawn
// through them shows p50, p90, p99 and p99.9 where the report does (with
// HdrHistogram's percentile iteration, 16 to 21 points joined by lines,
// p90 of a skewed distribution was drawn 89% off).
func TestCDFHitsPercentiles(t *testing.T) {
	h := New()
	for i := int64(1); i <= 100000; i++ {
		v := int64(1000)
		switch {
		case i%10 == 0:
			v = 40000 // a tenth of the round trips are slow
		case i%1000 == 1:
			v = 900000
		}
		h.Record(v + i%7)
	}
	pts := h.CDF()
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
		found := false
		for _, p := range pts {
			if math.Abs(p.Quantile-q) < 1e-9 {
				found = true
				if p.Value != h.Quantile(q) {
					t.Errorf("q=%v: CDF value %d, Quantile %d", q, p.Value, h.Quantile(q))
				}
			}
		}
		if !found {
			t.Errorf("no CDF point at q=%v", q)
		}
	}
	if first := pts[0]; first.Quantile != 0 || first.Value != h.Min() {
		t.Errorf("first point %+v, want quantile 0 at Min %d", first, h.Min())
	}
	if n := len(pts); n > cdfPerDecade*6+3 {
		t.Errorf("%d points for 10^5 values, want about %d per decade", n, cdfPerDecade)
	}
}

// TestNearestRankHuge: the rank is not taken down by a whole one for a
// count above 10^12, where a tolerance relative to the product was.
func TestNearestRankHuge(t *testing.T) {
	for _, tt := range []struct {
		q    float64
		n    int64
		want int64
	}{
		{0.5, 4e12, 2e12},
		{0.5, 4e12 + 1, 2e12 + 1},
		{0.07, 100, 7},
		{0.9, 10, 9},
		{0.999, 1000, 999},
		{0.999, 1001, 1000},
	} {
		if got := nearestRank(tt.q, tt.n); got != tt.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tt.q, tt.n, got, tt.want)
		}
	}
}

// TestCDFAtPowersOfTen: at a count of exactly 10, 100 or 1000 the CDF
// still has the last percentile a report prints (p90, p99, p99.9), which
// the loop ended just short of.
func TestCDFAtPowersOfTen(t *testing.T) {
	for _, n := range []int64{10, 100, 1000} {
		h := New()
		for i := int64(1); i <= n; i++ {
			h.Record(i * 1000)
		}
		q := 1 - 1/float64(n)
		found := false
		for _, p := range h.CDF() {
			if math.Abs(p.Quantile-q) < 1e-9 {
				found = true
				if p.Value != h.Quantile(q) {
					t.Errorf("n=%d: CDF value %d at q=%v, Quantile %d", n, p.Value, q, h.Quantile(q))
				}
			}
		}
		if !found {
			t.Errorf("n=%d: no CDF point at q=%v", n, q)
		}
	}
}

// TestQuantilesIsQuantile: Quantiles gives what Quantile gives for each,
// in one pass.
func TestQuantilesIsQuantile(t *testing.T) {
	h := New()
	for i := int64(1); i <= 1000; i++ {
		h.Record(i * i)
	}
	qs := []float64{0.07, 0.5, 0.9, 0.99, 0.999}
	got := h.Quantiles(qs...)
	for i, q := range qs {
		if want := h.Quantile(q); got[i] != want {
			t.Errorf("Quantiles: q=%v gives %d, Quantile %d", q, got[i], want)
		}
	}
	if v := New().Quantiles(0.5, 0.9); len(v) != 2 || v[0] != 0 || v[1] != 0 {
		t.Errorf("empty histogram: %v, want zeros", v)
	}
}
