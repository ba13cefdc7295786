package report

import (
	"strings"

	"github.com/ipcbench/ipcbench/bench"
)

// SourceLine compares, for one setting, a transport whose peer reached the
// bench another way (a peer source other than inherit: "via=address",
// "via=serve"; see bench.Options.PeerSources) with the same transport and
// options whose peer inherited its channels: what the source costs. Line
// holds the comparison with Localhost the inherit side and Public the
// other, so Line.Ratio is how many times worse the other source is (below
// 1: better); Inherit and Via name the two variants. The other source is
// named first.
type SourceLine struct {
	Inherit, Via string
	Line         ShortcutLine
}

// sourcesNote explains the peer-source lines below them.
const sourcesNote = "each line compares a peer that inherited its channels with one that reached the bench by address (via=address: a spawned peer dialing the rendezvous or socket) or through a stand-alone ipcbench serve (via=serve); ~ means going that way costs nothing measurable here."

// sourcePrefix starts a peer source's option in a variant.
const sourcePrefix = bench.SourceKey + "="

// PeerSourceCost pairs every "X[...via=S...]" row with its "X[...]" row
// (the inherit source) in each ranking and tests whether they differ, as
// LocalhostShortcut does. A source whose cases were all skipped (by
// address over a socket, which is the inherit case) has no line: the
// ranking already says why.
func PeerSourceCost(s []Summary) []SourceLine {
	var out []SourceLine
	for _, p := range variantPairs(s, func(opt string) bool { return strings.HasPrefix(opt, sourcePrefix) }) {
		if p.twin.Skipped > 0 && p.twin.Failed == 0 && p.twin.OK == 0 {
			continue
		}
		out = append(out, SourceLine{Inherit: p.baseLabel, Via: p.twin.Case.TransportLabel(), Line: shortcut(p.rk, p.twin.Case.Variant, p.m, p.base, p.twin)})
	}
	return out
}

// String renders the line, for example
//
//	peer source: pingpong 64B: pipe[via=address] 4.45µs vs pipe 4.38µs p50 round trip: ~ (no significant difference: ×1.02, 95% CI 0.87–1.19; p=0.818 n=6+6)
func (l SourceLine) String() string {
	return l.Line.pairString("peer source", l.Via, l.Inherit, l.Via)
}
