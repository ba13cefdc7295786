//go:build cgo && linux

package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAddressSpaceLimit runs the CLI under address-space limits (ulimit -v)
// from 100 MB, where the Go runtime cannot even start, to 1.5 GB, where it
// dies later wherever a reservation fails: each run must end with exit
// code exitLimits and one line saying what to raise, never a runtime
// crash dump.
func TestAddressSpaceLimit(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, kib := range []int{100_000, 500_000, 1_000_000, 1_500_000} {
		t.Run(strconv.Itoa(kib/1000)+"MB", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -v "$1" && shift && exec "$@"`, "sh", strconv.Itoa(kib),
				exe, "run", "-network", "host", "-t", "pipe", "-w", "pingpong", "-s", "64", "-d", "10ms", "-repeats", "1", "-q", "-out", "-")
			cmd.Env = append(os.Environ(), envAsCLI+"=1")
			var errb strings.Builder
			cmd.Stderr = &errb
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitLimits {
				t.Errorf("exit %v, want %d", err, exitLimits)
			}
			stderr := errb.String()
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, "ulimit -v") {
				t.Errorf("want one line naming ulimit -v, got:\n%.2000s", stderr)
			}
		})
	}
}
