package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// envDial makes the test binary a dialer helper (see dialHelper): any
// non-empty value.
const envDial = "IPCBENCH_TRANSPORTTEST_DIAL"

// dialMessage is what the dialer helper writes before it closes.
const dialMessage = "hello from the inheriting child"

// testDialCloseInherited starts a child that does what a program following
// the package doc does with an inherited endpoint, and no more: it reads
// it with transports.InheritedEndpoint, dials it, writes a message, closes
// the connection and stays alive without ever touching the endpoint's
// files. The accepting side must read the message and then io.EOF: the
// child's Close must be the end, not its exit. With Config.Conns 2 the
// child dials the second channel, leaving the first's files alone.
func testDialCloseInherited(t *testing.T, tr transports.Transport) {
	skipUnavailable(t, tr)
	for _, conns := range []int{1, 2} {
		t.Run(fmt.Sprintf("conns=%d", conns), func(t *testing.T) {
			dialCloseInherited(t, tr, conns)
		})
	}
}

func dialCloseInherited(t *testing.T, tr transports.Transport, conns int) {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	ln, err := tr.Listen(ctx, transports.Config{Conns: conns})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envDial+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe() // the child lives until it is closed
	if err != nil {
		t.Fatal(err)
	}
	ep := ln.Endpoint()
	ep.Index = conns - 1
	if err := ep.AttachTo(cmd); err != nil {
		t.Fatalf("AttachTo: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child: %v (stderr: %s)", err, stderr.Bytes())
		}
	}()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- result{c, err}
	}()
	var c net.Conn
	select {
	case r := <-accepted:
		if r.err != nil {
			t.Fatalf("Accept: %v (child's stderr: %s)", r.err, stderr.Bytes())
		}
		c = r.c
	case <-ctx.Done():
		ln.Close() // ends the Accept
		if r := <-accepted; r.c != nil {
			r.c.Close()
		}
		t.Fatalf("Accept: nothing after %v (child's stderr: %s)", hang, stderr.Bytes())
	}
	defer c.Close()
	// The child's Close comes at once; the exit, only when stdin closes.
	if err := c.SetReadDeadline(time.Now().Add(hang)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("read %q, then no io.EOF within %v though the child closed its connection: its inherited files keep the channel open", got, hang)
	case err != nil:
		t.Fatalf("read %q, then %v; want io.EOF", got, err)
	case string(got) != dialMessage:
		t.Fatalf("read %q, want %q", got, dialMessage)
	}
}

// dialHelper is the dialer helper's body: it dials the endpoint it
// inherited, writes dialMessage, closes the connection and waits for its
// standard input to end, leaving the endpoint's files as Dial left them.
// ran is false when the process is not a dialer helper.
func dialHelper(list []transports.Transport) (code int, ran bool) {
	if os.Getenv(envDial) == "" {
		return 0, false
	}
	fail := func(format string, args ...any) (int, bool) {
		fmt.Fprintf(os.Stderr, "dialer helper: "+format+"\n", args...)
		return 1, true
	}
	ep, err := transports.InheritedEndpoint()
	if err != nil {
		return fail("%v", err)
	}
	tr, err := lookup(list)(ep.Transport)
	if err != nil {
		return fail("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := tr.Dial(ctx, ep)
	if err != nil {
		return fail("dial: %v", err)
	}
	if _, err := c.Write([]byte(dialMessage)); err != nil {
		c.Close()
		return fail("write: %v", err)
	}
	if err := c.Close(); err != nil {
		return fail("close: %v", err)
	}
	io.Copy(io.Discard, os.Stdin) // until the test is done
	return 0, true
}
