package plot

import (
	"encoding/xml"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"gonum.org/v1/plot/vg"

	"github.com/ipcbench/ipcbench/bench"
)

// TestFitLines checks the title's line breaking: at " · " first, then at
// spaces, and lines that fit are left alone.
func TestFitLines(t *testing.T) {
	runes := func(s string) vg.Length { return vg.Length(utf8.RuneCountInString(s)) }
	for _, tt := range []struct {
		in    string
		width vg.Length
		want  string
	}{
		{"short\nlines", 10, "short\nlines"},
		{"a · bb · ccc", 12, "a · bb · ccc"},
		{"a · bb · ccc", 8, "a · bb\nccc"},
		{"one two three four · x", 9, "one two\nthree\nfour\nx"},
		{"unbreakableword", 5, "unbreakableword"},
	} {
		if got := fitLines(tt.in, tt.width, runes); got != tt.want {
			t.Errorf("fitLines(%q, %v) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

// TestLongTitlesFit draws charts of a run whose CPU name and network are
// long, and checks that every title line lies inside the chart with room
// for a viewer's wider substitute font.
func TestLongTitlesFit(t *testing.T) {
	var rs []bench.Result
	for rep := range 6 {
		for _, size := range []int{64, 65536} {
			rs = append(rs, okResult(t, "pingpong", "unix", "unpinned", size, rep, int64(20000+size/10+rep*100)))
			rs = append(rs, okResult(t, "stream", "unix", "unpinned", size, rep, 0))
		}
	}
	run := &bench.Records{Source: "long.jsonl", Results: rs, Header: bench.Header{Type: bench.KindHeader, Version: bench.RecordVersion,
		Network: "private-netns (veth ipc0 10.77.0.1/24 <-> ipc1 10.77.0.2/24)",
		Machine: map[string]string{"cpu_model": "Intel(R) Xeon(R) Platinum 8488C CPU @ 2.40GHz, a model name long enough to need a line of its own", "cores": "96"}}}
	paths, err := Write(t.TempDir(), false, run)
	if err != nil {
		t.Fatal(err)
	}
	sty := newPlot("").Title.TextStyle
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := titleLines(t, b)
		if len(lines) < 4 {
			t.Errorf("%s: title in %d lines, want the long facts broken onto more: %v", p, len(lines), lines)
		}
		for _, l := range lines {
			w := sty.Width(l.text)
			if w*fontSlack > chartWidth-2*vg.Points(titleMargin) || l.x < 0 || vg.Length(l.x)+w > chartWidth {
				t.Errorf("%s: title line %q (x=%.1f, width %.1f) does not fit the %v chart", p, l.text, l.x, w, chartWidth)
			}
		}
	}
}

type titleLine struct {
	text string
	x    float64
}

// titleLines returns the text elements of an SVG in the title's font size.
func titleLines(tb testing.TB, svg []byte) []titleLine {
	tb.Helper()
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	var out []titleLine
	var cur *titleLine
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			cur = nil
			if tok.Name.Local != "text" {
				continue
			}
			var x float64
			title := false
			for _, a := range tok.Attr {
				switch a.Name.Local {
				case "x":
					x, _ = strconv.ParseFloat(a.Value, 64)
				case "style":
					title = strings.Contains(a.Value, "font-size:12px")
				}
			}
			if title {
				cur = &titleLine{x: x}
			}
		case xml.CharData:
			if cur != nil {
				cur.text += string(tok)
			}
		case xml.EndElement:
			if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
		}
	}
}
