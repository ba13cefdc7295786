package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/proc"
)

// TestMain lets the test binary serve as its own peer (`ipcbench peer`)
// and runs the tests inside a private network namespace, as `ipcbench run`
// itself does.
func TestMain(m *testing.M) {
	if proc.IsPeer() {
		if dir := os.Getenv(envPeerHang); dir != "" && !takeToken(dir) {
			// Stuck before the handshake, until the bench process gives
			// up on it (it is killed then).
			time.Sleep(time.Hour)
		}
		os.Exit(run(context.Background(), []string{"peer"}, os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv(envAsCLI) != "" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	if !netns.HasHermeticNetwork() {
		code, exit, err := netns.Enter(os.Args[1:]...)
		if exit {
			os.Exit(code)
		}
		if err != nil {
			os.Stderr.WriteString("cmd tests: no private network namespace: " + err.Error() + "\n")
		}
	}
	os.Exit(m.Run())
}

// envPeerHang names a directory of tokens: a test peer started with it in
// its environment takes one token and starts normally, or, when none is
// left, hangs before its handshake, so tests can catch a run during a
// peer's start-up.
const envPeerHang = "IPCBENCH_TEST_PEER_HANG"

// takeToken removes one file of dir and reports whether it got one. Of
// peers racing for the last token, one wins.
func takeToken(dir string) bool {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			return true
		}
	}
	return false
}
