package all

import (
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
)

// TestCanonical checks that transports.Canonical gives each option value
// its one spelling and drops exactly the options spelling out a
// transport's default, so that a list cannot name one variant twice under
// two spellings.
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
		// sizes and counts in one spelling
		"unix[sndbuf=262144,rcvbuf=256k]":   "unix[rcvbuf=256KiB,sndbuf=256KiB]",
		"tcp-localhost[sndbuf=4mib]":        "tcp-localhost[sndbuf=4MiB]",
		"tcp-public[rcvbuf=1000]":           "tcp-public[rcvbuf=1000B]",
		"pipe[pipe_size=1048576,io=raw]":    "pipe[io=raw,pipe_size=1MiB]",
		"shm-ring[spin_ns=020000]":          "shm-ring",
		"shm-ring[spin_ns=+5000,wait=spin]": "shm-ring[spin_ns=5000,wait=spin]",
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

// TestCanonicalValueKeepsWhatItCannotRead checks that an option value a
// transport would refuse comes out of Canonical as it went in, so that the
// error CheckOptions gives names what the user typed.
func TestCanonicalValueKeepsWhatItCannotRead(t *testing.T) {
	for _, c := range []struct{ name, key, value string }{
		{"unix", "sndbuf", "lots"},
		{"unix", "sndbuf", "8GiB"}, // above what SizeOption takes
		{"tcp-localhost", "rcvbuf", "-1"},
		{"pipe", "pipe_size", "1.5k"},
		{"shm-ring", "spin_ns", "2us"},
		{"unix", "io", "RAW"}, // not a size: no spelling of its own
	} {
		tr, err := Lookup(c.name)
		if err != nil {
			t.Fatal(err)
		}
		sp, ok := tr.(transports.OptionSpeller)
		if !ok {
			t.Fatalf("%s: no OptionSpeller", c.name)
		}
		if got := sp.CanonicalValue(c.key, c.value); got != c.value {
			t.Errorf("%s: CanonicalValue(%s, %q) = %q, want it unchanged", c.name, c.key, c.value, got)
		}
	}
}

// TestCanonicalValuesAccepted checks that the one spelling of a valid
// value is a valid value too, and the same one: Canonical must never turn
// a variant into another or into an error.
func TestCanonicalValuesAccepted(t *testing.T) {
	for _, spec := range []string{"unix[sndbuf=262144]", "tcp-veth[rcvbuf=3000]", "pipe[pipe_size=65536]", "shm-ring[spin_ns=0007]"} {
		r, err := Resolve(spec)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", spec, err)
		}
		c := transports.Canonical(r.Transport, r.Spec)
		if err := r.Transport.(transports.OptionChecker).CheckOptions(c.Options); err != nil {
			t.Errorf("%s: its canonical spelling %s is refused: %v", spec, c, err)
		}
		again, err := Resolve(c.String())
		if err != nil {
			t.Fatalf("Resolve(%q): %v", c, err)
		}
		if got := transports.Canonical(again.Transport, again.Spec).String(); got != c.String() {
			t.Errorf("%s: canonical %s is not canonical again: %s", spec, c, got)
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
