package main

import (
	"fmt"
	"testing"

	"github.com/ipcbench/ipcbench/internal/exampletest"
	"github.com/ipcbench/ipcbench/transports/all"
)

// TestMain runs the tests inside a private network namespace, so that
// tcp-public has a non-loopback address that is not the host's.
func TestMain(m *testing.M) { exampletest.Main(m) }

// TestHTTPOverEveryTransport starts the example as a server and, separately,
// as a client, over every transport, with keep-alive on and off: 1,000
// requests each, every body checked in both directions by the program.
func TestHTTPOverEveryTransport(t *testing.T) {
	bin := exampletest.Build(t, ".")
	clients := [][]string{
		{"-n", "1000", "-size", "4096", "-keepalive=true"},
		{"-n", "1000", "-size", "4096", "-keepalive=false"},
	}
	exampletest.ServeAndCall(t, bin, all.Names(), clients, func(name string, i int) string {
		conns := []string{"1 connection", "1000 connections"}[i]
		return fmt.Sprintf("1000 requests of 4096 bytes over %s: every body checked, %s", name, conns)
	})
}

// TestServeWithoutAddr: "-serve -t pipe" (shm-lock, shm-ring) with no
// -addr prints a socket path in a fresh private directory that a client
// dials, and the server removes the directory when it stops.
func TestServeWithoutAddr(t *testing.T) {
	bin := exampletest.Build(t, ".")
	exampletest.ServeWithoutAddr(t, bin, []string{"pipe", "shm-lock", "shm-ring"}, []string{"-n", "10", "-size", "64"}, func(name string) string {
		return fmt.Sprintf("10 requests of 64 bytes over %s: every body checked, 1 connection", name)
	})
}
