package main

import (
	"runtime/debug"
	"strings"
)

// commit is set at build time by the Makefile (-ldflags -X main.commit=...).
// Binaries built otherwise (go build, go install) leave it empty and take
// their version from the build information the Go toolchain embeds.
var commit string

// version returns this binary's version, as `ipcbench version` prints it
// and raw-record headers record it after "ipcbench ".
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	return versionOf(commit, info)
}

// versionOf is version over explicit inputs: the commit stamped by the
// Makefile when there is one; otherwise the VCS revision the toolchain
// recorded (12 hex digits, "-dirty" when the tree had uncommitted changes),
// after the module version when that is a release rather than a
// development build or a pseudo-version made from the same revision; and
// "unknown" when none of these is known.
func versionOf(stamped string, info *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if info == nil {
		return "unknown"
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	mod := info.Main.Version
	if mod == "(devel)" || (rev != "" && strings.Contains(mod, strings.TrimSuffix(rev, "-dirty"))) {
		mod = "" // says nothing the revision does not
	}
	switch {
	case mod != "" && rev != "":
		return mod + " " + rev
	case mod != "":
		return mod
	case rev != "":
		return rev
	}
	return "unknown"
}
