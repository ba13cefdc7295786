package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionOf checks where the version comes from: the Makefile's stamp
// first, then the build information of go build / go install.
func TestVersionOf(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tt := range []struct {
		name    string
		stamped string
		info    *debug.BuildInfo
		want    string
	}{
		{"stamped by make", "abc1234", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs("true")}, "abc1234"},
		{"no build info", "", nil, "unknown"},
		{"go build, no VCS", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "unknown"},
		{"go build, clean tree", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")}, "0123456789ab"},
		{"go build, dirty tree", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")}, "0123456789ab-dirty"},
		{"pseudo-version of the same revision", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130113000-0123456789ab+dirty"}, Settings: vcs("true")}, "0123456789ab-dirty"},
		{"go install module@version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"release built from a checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs("false")}, "v1.2.3 0123456789ab"},
	} {
		if got := versionOf(tt.stamped, tt.info); got != tt.want {
			t.Errorf("%s: versionOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestVersionCommand checks that `ipcbench version` prints what version()
// returns, on one line.
func TestVersionCommand(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != exitOK || out != "ipcbench "+version()+"\n" || strings.Count(out, "\n") != 1 {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
