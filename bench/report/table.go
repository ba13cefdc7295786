package report

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// grid is a table of text cells rendered either aligned for a terminal or
// as a GitHub Markdown table.
type grid struct {
	cols []gridCol
	rows [][]string
}

type gridCol struct {
	name  string
	group string // label spanning consecutive columns with the same group
	right bool   // right-aligned (numbers)
}

func (g *grid) add(cells ...string) { g.rows = append(g.rows, cells) }

// widths returns each column's width in runes.
func (g *grid) widths() []int {
	w := make([]int, len(g.cols))
	for i, c := range g.cols {
		w[i] = utf8.RuneCountInString(c.name)
	}
	for _, r := range g.rows {
		for i := range w {
			if i < len(r) {
				w[i] = max(w[i], utf8.RuneCountInString(r[i]))
			}
		}
	}
	return w
}

// text writes the grid aligned with two spaces between columns, indented by
// indent. Column groups get a line of their own above the names, centred
// over their columns between dashes.
func (g *grid) text(w io.Writer, indent string) error {
	ws := g.widths()
	const gap = "  "
	var b strings.Builder
	if g.hasGroups() {
		line := indent
		for i := 0; i < len(g.cols); {
			j := i
			for j+1 < len(g.cols) && g.cols[j+1].group == g.cols[i].group {
				j++
			}
			span := 0
			for k := i; k <= j; k++ {
				span += ws[k]
			}
			span += len(gap) * (j - i)
			label := g.cols[i].group
			if label == "" {
				line += strings.Repeat(" ", span)
			} else {
				line += banner(label, span)
			}
			if j+1 < len(g.cols) {
				line += gap
			}
			i = j + 1
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	row := func(cells []string) {
		line := indent
		for i, c := range g.cols {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			pad := strings.Repeat(" ", ws[i]-utf8.RuneCountInString(cell))
			if c.right {
				line += pad + cell
			} else {
				line += cell + pad
			}
			if i+1 < len(g.cols) {
				line += gap
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	names := make([]string, len(g.cols))
	for i, c := range g.cols {
		names[i] = c.name
	}
	row(names)
	for _, r := range g.rows {
		row(r)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// banner centres label in a field of width n between dashes:
// "── round trip ──".
func banner(label string, n int) string {
	l := utf8.RuneCountInString(label) + 2
	if l >= n {
		return fmt.Sprintf("%-*s", n, label)
	}
	left := (n - l) / 2
	right := n - l - left
	return strings.Repeat("─", left) + " " + label + " " + strings.Repeat("─", right)
}

func (g *grid) hasGroups() bool {
	for _, c := range g.cols {
		if c.group != "" {
			return true
		}
	}
	return false
}

// markdown writes the grid as a GitHub table. Group labels are prefixed to
// the column names ("round trip p50").
func (g *grid) markdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range g.cols {
		name := c.name
		if c.group != "" {
			name = c.group + " " + name
		}
		b.WriteString(" " + mdEscape(name) + " |")
	}
	b.WriteString("\n|")
	for _, c := range g.cols {
		if c.right {
			b.WriteString("---:|")
		} else {
			b.WriteString(":---|")
		}
	}
	b.WriteString("\n")
	for _, r := range g.rows {
		b.WriteString("|")
		for i := range g.cols {
			cell := ""
			if i < len(r) {
				cell = r[i]
			}
			b.WriteString(" " + mdEscape(cell) + " |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape makes s safe inside a Markdown table cell.
func mdEscape(s string) string {
	s = oneLine(s)
	return strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}
