package main

import (
	"fmt"

	"github.com/ipcbench/ipcbench/internal/netns"
)

// Network modes recorded in run headers.
const (
	networkHost = "host"
)

// enterNetwork applies -network. With "netns" (the default) it re-runs the
// command line argv (the command's name and its arguments, as run received
// them) inside a private network namespace: in the outer process it
// returns done=true and the inner process's exit code; in the inner process
// (or when already inside one) it returns the mode to record. When no
// namespace can be made it carries on on the host and returns a note saying
// why, which the run records and prints. With "host" it does nothing.
func enterNetwork(mode string, argv []string) (recorded, note string, code int, done bool, err error) {
	switch mode {
	case "host":
		return networkHost, "measured on the host's own interfaces (-network host)", 0, false, nil
	case "netns":
	default:
		return "", "", 0, false, usagef("-network %q: want netns or host", mode)
	}
	if netns.HasHermeticNetwork() {
		return netns.Description(), "", 0, false, nil
	}
	code, exit, err := netns.Enter(argv...)
	if exit {
		if err != nil {
			// The child was killed by a signal (a *netns.KilledError),
			// which it could not say itself.
			return "", "", code, true, &exitError{code: code, err: err}
		}
		return "", "", code, true, nil
	}
	if err != nil {
		return networkHost, fmt.Sprintf("no private network namespace could be made (%v); measuring on the host's own interfaces", err), 0, false, nil
	}
	return netns.Description(), "", 0, false, nil
}
