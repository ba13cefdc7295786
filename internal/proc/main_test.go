package proc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipcbench/ipcbench/internal/proc"
)

// modeEnv selects what the test binary does when it runs as a peer.
const modeEnv = "PROC_TEST_MODE"

// TestMain runs the test binary as a helper peer when started by proc.Start
// (the os/exec helper-process pattern), otherwise the tests.
func TestMain(m *testing.M) {
	if proc.IsPeer() {
		os.Exit(helper(os.Getenv(modeEnv)))
	}
	goleak.VerifyTestMain(m)
}

// msg is the control message of the helper peers.
type msg struct {
	Op   string `json:"op"`
	N    int    `json:"n,omitempty"`
	Text string `json:"text,omitempty"`
}

// helper is the body of the helper peers.
func helper(mode string) int {
	if mode == "ignore-eof" {
		// When the parent dies, the kernel closes the stderr pipe before
		// it sends the parent-death signal, so any write of this peer,
		// "helper: up" below included, can land in between: it must fail
		// with EPIPE rather than kill the peer with SIGPIPE first.
		signal.Ignore(syscall.SIGPIPE)
	}
	switch mode {
	case "sleep": // never handshakes
		time.Sleep(time.Minute)
		return 0
	case "garbage":
		fmt.Println("PASS")
		time.Sleep(time.Minute)
		return 0
	case "badversion":
		fmt.Printf("%s99 pid=%d\n", proc.HandshakePrefix, os.Getpid())
		time.Sleep(time.Minute)
		return 0
	case "wrongpid":
		fmt.Printf("%s1 pid=%d\n", proc.HandshakePrefix, os.Getppid())
		time.Sleep(time.Minute)
		return 0
	case "earlyexit":
		fmt.Fprintln(os.Stderr, "helper: cannot start: no transport")
		return 7
	}
	in, out, err := proc.Control()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "helper: up")
	switch mode {
	case "ignore-eof":
		// Log without pause until killed, as a busy peer might (SIGPIPE
		// is ignored from the start, see helper).
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
			fmt.Fprintln(os.Stderr, "helper: still here")
		}
		return 0
	case "files":
		// Report the inherited files and what the first one holds.
		n, _ := strconv.Atoi(os.Getenv("IPCBENCH_TEST_FILES"))
		b, err := io.ReadAll(os.NewFile(3, "inherited"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		json.NewEncoder(out).Encode(msg{Op: "files", N: n, Text: string(b)})
		io.Copy(io.Discard, in)
		return 0
	case "spawner":
		// Start a grandchild peer, report its pid, then wait to be killed.
		// The grandchild ignores EOF on its control pipe: the kernel closes
		// that pipe before it sends the parent-death signal, and an echo
		// peer would exit 0 in between and hide whether Pdeathsig works.
		// A peer starts no peer of its own, unless allowed (CheckStart).
		proc.AllowStartFromPeer()
		p, err := proc.Start(context.Background(), proc.Spec{Env: []string{modeEnv + "=ignore-eof"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		json.NewEncoder(out).Encode(msg{Op: "child", N: p.PID()})
		time.Sleep(time.Minute)
		return 0
	}
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var m msg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			fmt.Fprintln(os.Stderr, "helper: bad line:", err)
			return 1
		}
		switch m.Op {
		case "echo":
			enc.Encode(m)
		case "raw":
			fmt.Fprintln(out, m.Text)
		case "log":
			fmt.Fprint(os.Stderr, strings.Repeat(m.Text, m.N))
		case "exit":
			fmt.Fprintf(os.Stderr, "helper: exiting with %d\n", m.N)
			return m.N
		case "hang":
			time.Sleep(time.Minute)
		}
	}
	return 0
}
