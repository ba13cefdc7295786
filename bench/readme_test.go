package bench

import (
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeServePathsWork: the socket paths that the README's "Measure
// your own server" section gives serve and run -connect work for an
// ordinary user. serve makes the socket's directory when it is missing,
// but not its parent: either the directory or its parent must be one
// every user may make entries in (/tmp, or the user's own
// $XDG_RUNTIME_DIR), not one only root may write, such as /run.
func TestReadmeServePathsWork(t *testing.T) {
	b, err := os.ReadFile("../README.md")
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
	writable := map[string]bool{"/tmp": true, "$XDG_RUNTIME_DIR": true}
	arg := regexp.MustCompile(`-(?:listen|connect) "?([^\s"]+)"?`)
	paths := 0
	for _, m := range arg.FindAllStringSubmatch(section, -1) {
		p := m[1]
		if !strings.Contains(p, "/") {
			continue // a host:port
		}
		paths++
		if dir := path.Dir(p); !writable[dir] && !writable[path.Dir(dir)] {
			t.Errorf("README section %q: %s: neither %s nor its parent is a directory an ordinary user may write in (want it under one of /tmp, $XDG_RUNTIME_DIR)",
				strings.TrimSpace(heading), m[0], dir)
		}
	}
	if paths == 0 {
		t.Fatalf("README section %q gives no socket path to -listen or -connect", strings.TrimSpace(heading))
	}
}
