package main

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/exampletest"
	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/transports/all"
)

// TestMain runs the tests inside a private network namespace, so that
// tcp-public has a non-loopback address that is not the host's.
func TestMain(m *testing.M) {
	if !netns.HasHermeticNetwork() {
		code, exit, err := netns.Enter(os.Args[1:]...)
		if exit {
			os.Exit(code)
		}
		if err != nil {
			os.Stderr.WriteString("grpcover tests: no private network namespace (" + err.Error() + "): tcp-public is left out\n")
		}
	}
	os.Exit(m.Run())
}

// TestGRPCOverEveryTransport starts the example as a server and,
// separately, as a client, over every transport, with one connection for
// every call and with a connection per call: 1,000 calls each, every
// payload checked in both directions by the program.
func TestGRPCOverEveryTransport(t *testing.T) {
	bin := exampletest.Build(t, ".")
	for _, name := range all.Names() {
		t.Run(name, func(t *testing.T) {
			if name == "tcp-public" && !netns.HasHermeticNetwork() {
				t.Skip("tcp-public only inside a private network namespace")
			}
			srv := exampletest.Start(t, bin, "-serve", "-t", name)
			for _, reuse := range []bool{true, false} {
				out := exampletest.Run(t, bin, "-t", name, "-addr", srv.Addr, "-n", "1000", "-size", "4096", fmt.Sprintf("-reuse=%v", reuse))
				conns := "1 connections"
				if !reuse {
					conns = "1000 connections"
				}
				if !strings.Contains(out, "1000 calls of 4096 bytes over "+name+": every payload checked, "+conns) {
					t.Errorf("reuse %v: %s", reuse, out)
				}
			}
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
}
