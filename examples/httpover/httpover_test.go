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
			os.Stderr.WriteString("httpover tests: no private network namespace (" + err.Error() + "): tcp-public is left out\n")
		}
	}
	os.Exit(m.Run())
}

// TestHTTPOverEveryTransport starts the example as a server and, separately,
// as a client, over every transport, with keep-alive on and off: 1,000
// requests each, every body checked in both directions by the program.
func TestHTTPOverEveryTransport(t *testing.T) {
	bin := exampletest.Build(t, ".")
	for _, name := range all.Names() {
		t.Run(name, func(t *testing.T) {
			if name == "tcp-public" && !netns.HasHermeticNetwork() {
				t.Skip("tcp-public only inside a private network namespace")
			}
			srv := exampletest.Start(t, bin, "-serve", "-t", name)
			for _, keepAlive := range []bool{true, false} {
				out := exampletest.Run(t, bin, "-t", name, "-addr", srv.Addr, "-n", "1000", "-size", "4096", fmt.Sprintf("-keepalive=%v", keepAlive))
				conns := "1 connections"
				if !keepAlive {
					conns = "1000 connections"
				}
				if !strings.Contains(out, "1000 requests of 4096 bytes over "+name+": every body checked, "+conns) {
					t.Errorf("keep-alive %v: %s", keepAlive, out)
				}
			}
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
}
