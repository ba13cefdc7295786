package main

import (
	"context"
	"os"
	"testing"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/internal/testpeer"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TestMain lets the test binary serve as its own peer (`ipcbench peer`)
// and runs the tests inside a private network namespace, as `ipcbench run`
// itself does.
func TestMain(m *testing.M) {
	if proc.IsPeer() {
		testpeer.Act()
		if len(os.Args) > 1 && os.Args[1] == peer.ServeArg { // a run's serve peer source
			os.Exit(run(signalContext(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		}
		os.Exit(run(context.Background(), []string{"peer"}, os.Stdin, os.Stdout, os.Stderr))
	}
	if os.Getenv(envAsCLI) != "" {
		os.Exit(run(signalContext(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
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
