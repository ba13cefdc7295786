package all

import (
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
)

// TestCanonical checks that transports.Canonical drops exactly the options
// spelling out a transport's default, so that a list cannot name one
// variant twice under two spellings.
func TestCanonical(t *testing.T) {
	for spec, want := range map[string]string{
		"unix":                                   "unix",
		"unix[io=netpoll]":                       "unix",
		"unix[io=raw]":                           "unix[io=raw]",
		"pipe[io=netpoll,pipe_size=1MiB]":        "pipe[pipe_size=1MiB]",
		"tcp-localhost[nodelay=true,io=netpoll]": "tcp-localhost",
		"tcp-public[nodelay=false]":              "tcp-public[nodelay=false]",
		"tcp-veth[nodelay=true,sndbuf=1MiB]":     "tcp-veth[sndbuf=1MiB]",
		"shm-ring[wait=adaptive]":                "shm-ring",
		"shm-ring[spin_ns=20000,wait=spin]":      "shm-ring[wait=spin]",
		"shm-ring[zerocopy=on]":                  "shm-ring",
		"shm-ring[zerocopy=off]":                 "shm-ring[zerocopy=off]",
		"shm-lock[mapping=memfd]":                "shm-lock[mapping=memfd]", // no fallback: not the default
	} {
		r, err := Resolve(spec)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", spec, err)
		}
		if got := transports.Canonical(r.Transport, r.Spec).String(); got != want {
			t.Errorf("Canonical(%s) = %s, want %s", spec, got, want)
		}
	}
}

// TestDefaultOptionsAccepted checks that every default a transport lists
// is an option value it accepts.
func TestDefaultOptionsAccepted(t *testing.T) {
	for _, tr := range List() {
		do, ok := tr.(transports.DefaultOptioner)
		if !ok {
			continue
		}
		for _, kv := range do.DefaultOptions() {
			k, v, _ := strings.Cut(kv, "=")
			if err := tr.(transports.OptionChecker).CheckOptions(map[string]string{k: v}); err != nil {
				t.Errorf("%s: default %s refused: %v", tr.Name(), kv, err)
			}
		}
	}
}
