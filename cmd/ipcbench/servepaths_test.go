package main

import (
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// checkServePaths checks that every socket path given to -listen or
// -connect in text works for an ordinary user. serve makes the socket's
// directory when it is missing, but not its parent: either the directory
// or its parent must be one an ordinary user may make entries in (/tmp,
// or the user's own $XDG_RUNTIME_DIR with /tmp when it is unset), not one
// only root may write, such as /run, nor one only its owner may, such as
// /run/user/1000. It fails when text gives no socket path at all.
func checkServePaths(t *testing.T, where, text string) {
	t.Helper()
	// $XDG_RUNTIME_DIR alone is not enough: unset (sudo, cron, many
	// containers), "$XDG_RUNTIME_DIR/ipcb/s" is /ipcb/s, root's to make.
	writable := map[string]bool{"/tmp": true, "${XDG_RUNTIME_DIR:-/tmp}": true}
	arg := regexp.MustCompile(`-(?:listen|connect) "?([^\s"]+)"?`)
	paths := 0
	for _, m := range arg.FindAllStringSubmatch(text, -1) {
		p := m[1]
		if !strings.Contains(p, "/") {
			continue // a host:port
		}
		paths++
		if dir := path.Dir(p); !writable[dir] && !writable[path.Dir(dir)] {
			t.Errorf("%s: %s: neither %s nor its parent is a directory an ordinary user may write in (want it under one of /tmp, ${XDG_RUNTIME_DIR:-/tmp})", where, m[0], dir)
		}
	}
	if paths == 0 {
		t.Fatalf("%s gives no socket path to -listen or -connect", where)
	}
}

// TestReadmeServePathsWork: the socket paths that the README's "Measure
// your own server" section gives serve and run -connect work for an
// ordinary user (checkServePaths).
func TestReadmeServePathsWork(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	const heading = "\n## Measure your own server\n"
	start := strings.Index(text, heading)
	if start < 0 {
		t.Fatalf("README has no section %q", strings.TrimSpace(heading))
	}
	section := text[start+len(heading):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	checkServePaths(t, "README section "+strings.TrimSpace(heading), section)
}

// TestServeHelpPathsWork: the socket paths of serve -help's examples work
// for whoever reads them, as the README's do (checkServePaths).
func TestServeHelpPathsWork(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "serve", "-help")
	if code != exitOK {
		t.Fatalf("serve -help: exit %d: %s", code, stderr)
	}
	_, examples, ok := strings.Cut(stdout, "\nExamples:\n")
	if !ok {
		t.Fatalf("serve -help has no Examples section:\n%s", stdout)
	}
	checkServePaths(t, "serve -help's examples", examples)
}
