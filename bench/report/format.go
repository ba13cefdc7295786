package report

import (
	"math"
	"strconv"
	"strings"

	"golang.org/x/perf/benchmath"
)

// FormatNS renders a duration in ns for people with three significant
// digits: "850ns", "18.2µs", "1.23ms", "2.50s" (whole ns below 1µs print
// without decimals: "21ns"). Negative, NaN and infinite
// values render as "-".
func FormatNS(ns float64) string {
	if ns < 0 || !finite(ns) {
		return "-"
	}
	ns = round3(ns)
	switch {
	case ns < 1e3 && ns == math.Trunc(ns):
		return strconv.FormatFloat(ns, 'f', 0, 64) + "ns"
	case ns < 1e3:
		return sig3(ns) + "ns"
	case ns < 1e6:
		return sig3(ns/1e3) + "µs"
	case ns < 1e9:
		return sig3(ns/1e6) + "ms"
	}
	return sig3(ns/1e9) + "s"
}

// FormatRate renders a count per second with an SI prefix and three
// significant digits: "950", "45.6k", "1.23M". The unit is left to the
// caller.
func FormatRate(v float64) string {
	if v < 0 || !finite(v) {
		return "-"
	}
	v = round3(v)
	switch {
	case v < 1e3:
		return sig3(v)
	case v < 1e6:
		return sig3(v/1e3) + "k"
	case v < 1e9:
		return sig3(v/1e6) + "M"
	}
	return sig3(v/1e9) + "G"
}

// FormatMBps renders a throughput in MB/s (10^6 bytes per second) with
// three significant digits and no exponent: "0.512", "12.3", "456",
// "2345". The unit is left to the caller.
func FormatMBps(v float64) string {
	if v < 0 || !finite(v) {
		return "-"
	}
	return sig3(v)
}

// round3 rounds v > 0 to three significant digits, so that unit choices
// see the value as it will be printed (999.7 ns is "1.00µs").
func round3(v float64) float64 {
	if v <= 0 {
		return v
	}
	p := math.Pow(10, math.Floor(math.Log10(v))-2)
	return math.Round(v/p) * p
}

// sig3 formats v >= 0 with three significant digits, never in exponent
// form, and at least the integer part: 0.00123, 1.23, 12.3, 123, 1234.
func sig3(v float64) string {
	if v == 0 {
		return "0"
	}
	dec := 2 - int(math.Floor(math.Log10(v)))
	if dec < 0 {
		dec = 0
	}
	s := strconv.FormatFloat(v, 'f', dec, 64)
	// Rounding can carry into a new digit (9.996 -> "10.00"): trim to
	// three significant digits again.
	if dec > 0 {
		if r, err := strconv.ParseFloat(s, 64); err == nil && math.Floor(math.Log10(r)) > math.Floor(math.Log10(v)) {
			s = strconv.FormatFloat(r, 'f', dec-1, 64)
		}
	}
	return s
}

// formatMetric renders one value of m for people.
func formatMetric(m metric, v float64) string {
	switch {
	case m.isTime:
		return FormatNS(v)
	case m.name == MetricMBps:
		return FormatMBps(v)
	}
	return FormatRate(v)
}

// FormatCI renders a confidence interval around center as benchstat does:
// "±3%", "±∞" when it is unbounded, "" when there is no center.
func FormatCI(center, lo, hi float64) string {
	if center == 0 && lo == 0 && hi == 0 {
		return ""
	}
	s := benchmath.Summary{Center: center, Lo: lo, Hi: hi}.PctRangeString()
	return "±" + s
}

// FormatRatio renders a ratio to the best row: "1.00×", "2.35×", "∞×"
// for a best row that measured nothing, "-" for no ratio.
func FormatRatio(r float64) string {
	if math.IsInf(r, 1) {
		return "∞×"
	}
	if !finite(r) {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "×"
}

// formatP renders a p-value as benchstat does: "p=0.008".
func formatP(p float64) string {
	return "p=" + strconv.FormatFloat(p, 'f', 3, 64)
}

// oneLine replaces newlines and tabs so that a value fits on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
