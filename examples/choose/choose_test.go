package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/internal/exampletest"
	"github.com/ipcbench/ipcbench/transports/all"
)

// TestChooseThenServe builds the example as a user would, runs it (its
// calibration re-executes it as its own peer: no ipcbench binary exists
// here), and requests over the transport it chose, from this process.
func TestChooseThenServe(t *testing.T) {
	bin := exampletest.Build(t, ".")
	srv := exampletest.Start(t, bin, "-t", "unix,tcp-localhost,pipe,shm-ring", "-s", "4096", "-budget", "3s")
	spec, addr, ok := strings.Cut(srv.Addr, " ")
	if !ok || (spec != "unix" && spec != "tcp-localhost" && spec != "pipe" && spec != "shm-ring") {
		t.Fatalf("first line %q: want the chosen spec and its address", srv.Addr)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return all.Dial(ctx, spec, addr) },
	}}
	resp, err := client.Get("http://server/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "hello over "+spec+"\n" {
		t.Errorf("GET /hello: %q, %v", body, err)
	}
	client.CloseIdleConnections()
	if err := srv.Stop(); err != nil {
		t.Error(err)
	}
}
