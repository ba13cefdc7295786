// Package transporttest is the conformance suite every ipcbench transport
// runs: the behaviour the transports package promises, checked between two
// real processes.
//
// A transport package wires it in with two files:
//
//	// main_test.go
//	func TestMain(m *testing.M) {
//		transporttest.Main(m, transporttest.MainOptions{Transports: []transports.Transport{unix.New()}})
//	}
//
//	// conformance_test.go
//	func TestConformance(t *testing.T) { transporttest.Run(t, unix.New()) }
//
// A transport that keeps the in-process behaviour promises too (close,
// CloseWrite, deadlines, ErrPeerGone, option and endpoint checks) calls
// RunWith with RunOptions.Behaviour, and a Setup hook where its cases need
// one. Pair, MakePipe, EffectiveOptions and RunRawIO serve a transport's
// own in-process tests.
//
// Main makes the test binary double as the peer process (transports/peer),
// which Run starts through internal/proc for its cross-process cases; it
// also gives the binary a private temporary directory, optionally a private
// network namespace, and fails the binary when goroutines or files are
// left behind at the end. Run fails when used without Main.
package transporttest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipcbench/ipcbench/internal/netns"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// Environment variables Main sets for Run (and the peers it starts).
const (
	// envTmp names the private temporary directory Main made; Run refuses
	// to run without it.
	envTmp = "IPCBENCH_TRANSPORTTEST_TMP"
	// envNetns is "ok" when the binary needs a private network namespace
	// and runs inside one, otherwise the reason it does not; unset when no
	// namespace is needed.
	envNetns = "IPCBENCH_TRANSPORTTEST_NETNS"
)

// shmDir is where shared-memory files would be left behind.
const shmDir = "/dev/shm"

// leakMarker is the part of a file name that marks it as ipcbench's.
const leakMarker = "ipcbench"

// MainOptions configures Main.
type MainOptions struct {
	// Transports are the transports the peer process can dial, found by
	// Name: normally the one the package implements.
	Transports []transports.Transport
	// NeedNetns re-executes the test binary inside a private network
	// namespace (internal/netns) with its veth pair set up. When none can
	// be made the tests run anyway and Run skips, saying why.
	NeedNetns bool
	// Helper, if set, is called first, before anything else: a package
	// whose own tests start the test binary as a helper process of their
	// own returns ran = true and the exit code when this process is one.
	Helper func() (code int, ran bool)
}

// Main is the body of a transport package's TestMain; it never returns.
//
// When the process was started as a peer it runs peer.Main with the
// transports of opts and exits (peer.RunIfPeer). Otherwise, with
// opts.NeedNetns, it re-executes the binary inside a private network
// namespace (or, when that is impossible, records why for Run to skip). It then points TMPDIR at a
// fresh private directory, runs the tests, and exits 1 if they failed, if
// goroutines are still running (go.uber.org/goleak), or if files were left
// in the private directory or in /dev/shm (names containing "ipcbench").
func Main(m *testing.M, opts MainOptions) {
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts MainOptions) int {
	peer.RunIfPeer(lookup(opts.Transports))
	if code, ran := serveHelper(opts.Transports); ran {
		return code
	}
	if code, ran := dialHelper(opts.Transports); ran {
		return code
	}
	if opts.Helper != nil {
		if code, ran := opts.Helper(); ran {
			return code
		}
	}
	if opts.NeedNetns {
		code, exit, err := netns.Enter(os.Args[1:]...)
		if exit {
			return code
		}
		status := "ok"
		if err != nil {
			status = "no private network namespace: " + err.Error()
			fmt.Fprintf(os.Stderr, "transporttest: %s; tests that need one are skipped\n", status)
		}
		os.Setenv(envNetns, status)
	}

	tmp, err := os.MkdirTemp("", "transporttest-*")
	if err != nil {
		fmt.Fprintf(os.Stderr, "transporttest: making a private temporary directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// Everything under test (and the peers, which inherit the environment)
	// creates its temporary files here, away from other test binaries.
	os.Setenv("TMPDIR", tmp)
	os.Setenv(envTmp, tmp)
	shmBefore := names(shmDir, leakMarker)

	code := m.Run()

	var problems []string
	if err := goleak.Find(); err != nil {
		problems = append(problems, fmt.Sprintf("goroutines left running: %v", err))
	}
	if left := names(tmp, ""); len(left) > 0 {
		problems = append(problems, fmt.Sprintf("files left in the temporary directory %s: %s", tmp, strings.Join(left, ", ")))
	}
	left := added(shmBefore, names(shmDir, leakMarker))
	if len(left) > 0 {
		// Another test binary's shm-lock[mapping=file] has its file there
		// for a moment: only one that lasts is a leak.
		time.Sleep(time.Second)
		left = added(shmBefore, names(shmDir, leakMarker))
	}
	if len(left) > 0 {
		problems = append(problems, fmt.Sprintf("files left in %s: %s", shmDir, strings.Join(left, ", ")))
	}
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "transporttest: FAIL: %s\n", p)
	}
	if len(problems) > 0 && code == 0 {
		code = 1
	}
	return code
}

// lookup finds a transport of list by name.
func lookup(list []transports.Transport) func(string) (transports.Transport, error) {
	return func(name string) (transports.Transport, error) {
		var known []string
		for _, tr := range list {
			if tr.Name() == name {
				return tr, nil
			}
			known = append(known, tr.Name())
		}
		return nil, fmt.Errorf("%w: %q (this test binary has: %s)", transports.ErrUnknownTransport, name, strings.Join(known, ", "))
	}
}

// names returns the sorted names in dir that contain marker (all names for
// an empty marker); nil when dir cannot be read.
func names(dir, marker string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), marker) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

// added returns the names in after that are not in before.
func added(before, after []string) []string {
	var out []string
	for _, n := range after {
		if _, found := slices.BinarySearch(before, n); !found {
			out = append(out, n)
		}
	}
	return out
}
