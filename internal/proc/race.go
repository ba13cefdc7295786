//go:build race

package proc

// raceEnabled reports whether this binary was built with the race
// detector; its peers (the same binary) then are too.
const raceEnabled = true
