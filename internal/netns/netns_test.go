package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// helperEnv selects what the re-executed test binary does instead of
// running the tests: see helper.
const helperEnv = "IPCBENCH_NETNS_TEST_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(failStartEnv); dir != "" {
		os.Exit(failedStart(dir))
	}
	if mode := os.Getenv(helperEnv); mode != "" {
		if !Inside() {
			fmt.Fprintln(os.Stderr, "netns helper: re-executed but Inside() is false")
			os.Exit(9)
		}
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helper runs inside the namespace and returns the exit code the parent
// test checks; it explains failures on stderr.
func helper(mode string) int {
	switch mode {
	case "setup":
		if err := checkSetup(); err != nil {
			fmt.Fprintln(os.Stderr, "netns helper:", err)
			return 1
		}
		return 0
	case "link":
		if err := checkLink(); err != nil {
			fmt.Fprintln(os.Stderr, "netns helper:", err)
			return 1
		}
		return 0
	case "exit":
		return 3
	case "signal":
		return awaitSignal(syscall.SIGTERM, 7)
	case "jobcontrol":
		return awaitSignal(syscall.SIGCONT, 8)
	}
	fmt.Fprintln(os.Stderr, "netns helper: unknown mode", mode)
	return 2
}

// awaitSignal writes this process's PID to the file
// IPCBENCH_NETNS_TEST_READY names, then waits (at most 20 s) for sig, which
// the parent's Reexec forwards; it returns code when sig came.
func awaitSignal(sig syscall.Signal, code int) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, sig)
	if err := os.WriteFile(os.Getenv("IPCBENCH_NETNS_TEST_READY"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "netns helper:", err)
		return 1
	}
	select {
	case <-sigs:
		return code
	case <-time.After(20 * time.Second):
		fmt.Fprintf(os.Stderr, "netns helper: no %v forwarded\n", sig)
		return 1
	}
}

// checkSetup runs Setup twice (it must be idempotent), then checks the
// links, their addresses, and that TCP crosses from one end to the other.
func checkSetup() error {
	if HasHermeticNetwork() {
		return errors.New("veth pair present before Setup: namespace not fresh")
	}
	for i := range 2 {
		if err := Setup(); err != nil {
			return fmt.Errorf("Setup #%d: %w", i+1, err)
		}
	}
	if !HasHermeticNetwork() {
		return errors.New("HasHermeticNetwork false after Setup")
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil || lo.Flags&net.FlagUp == 0 {
		return fmt.Errorf("lo not up: %v %v", lo, err)
	}
	for _, l := range []struct{ name, cidr string }{{Link0, Cidr0}, {Link1, Cidr1}} {
		ifc, err := net.InterfaceByName(l.name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", l.name, err)
		}
		if ifc.Flags&net.FlagUp == 0 {
			return fmt.Errorf("interface %s is down", l.name)
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", l.name, err)
		}
		var got []string
		for _, a := range addrs {
			got = append(got, a.String())
		}
		if !slices.Contains(got, l.cidr) {
			return fmt.Errorf("interface %s has %v, want %s", l.name, got, l.cidr)
		}
	}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(netip.MustParseAddr(Addr0), 0).String())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", Addr0, err)
	}
	defer ln.Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(Addr1)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		return fmt.Errorf("dial %s from %s: %w", ln.Addr(), Addr1, err)
	}
	return c.Close()
}

// reexec runs this test binary again inside a namespace in helper mode and
// returns its exit code, skipping the test when namespaces are unsupported.
func reexec(t *testing.T, mode string) int {
	t.Helper()
	if Inside() {
		t.Skip("already inside a private network namespace")
	}
	t.Setenv(helperEnv, mode)
	code, err := Reexec("-test.run=^$")
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("cannot make a network namespace here: %v", err)
	}
	if err != nil {
		t.Fatalf("Reexec: %v", err)
	}
	return code
}

func TestReexec(t *testing.T) {
	tests := []struct {
		mode string
		want int
	}{
		{"setup", 0},
		{"link", 0},
		{"exit", 3},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			if got := reexec(t, tt.mode); got != tt.want {
				t.Fatalf("child exit code %d, want %d (see its stderr above)", got, tt.want)
			}
		})
	}
	// The child's veth pair lives and dies with its namespace.
	if _, err := net.InterfaceByName(Link0); err == nil && !Inside() {
		t.Errorf("%s exists outside the private namespace", Link0)
	}
}

func TestReexecForwardsSignals(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	t.Setenv("IPCBENCH_NETNS_TEST_READY", ready)
	stop := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				sent <- nil
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := os.Stat(ready); err == nil {
				// Reexec is running (the child made the file), so this
				// process's SIGTERM is captured and forwarded.
				sent <- syscall.Kill(os.Getpid(), syscall.SIGTERM)
				return
			}
		}
	}()
	code := reexec(t, "signal")
	close(stop)
	if err := <-sent; err != nil {
		t.Fatalf("send SIGTERM: %v", err)
	}
	if code != 7 {
		t.Fatalf("child exit code %d, want 7 (it exits 7 on a forwarded SIGTERM)", code)
	}
}

// TestReexecJobControl: Ctrl-Z (SIGTSTP to this process) stops the child
// as well as this process, and the SIGCONT that continues this process
// (a shell's fg) continues the child, which sees it. A shell started
// first looks at the child's state once this process is stopped, then
// sends this process the SIGCONT.
func TestReexecJobControl(t *testing.T) {
	dir := t.TempDir()
	ready, state := filepath.Join(dir, "ready"), filepath.Join(dir, "state")
	t.Setenv("IPCBENCH_NETNS_TEST_READY", ready)
	done := make(chan struct{})
	sent := make(chan error, 1)
	var cont *exec.Cmd
	go func() {
		for {
			select {
			case <-done:
				sent <- errors.New("the child never became ready")
				return
			case <-time.After(10 * time.Millisecond):
			}
			b, err := os.ReadFile(ready)
			if err != nil || len(b) == 0 {
				continue
			}
			// Field 3 of /proc/PID/stat is the state: T when stopped.
			// The shell waits (at most 10 s) until this process and the
			// child are stopped, so that its continue cannot come before
			// the stop and leave this process stopped for good, then
			// records the child's state and continues this process; a
			// second continue a second later is harmless, and saves the
			// test should this process have stopped only after the wait.
			cont = exec.Command("sh", "-c", `
for i in $(seq 1000); do
  [ "$(cut -d' ' -f3 /proc/$PPID/stat)" = T ] && [ "$(cut -d' ' -f3 /proc/$1/stat)" = T ] && break
  sleep 0.01
done
cut -d' ' -f3 /proc/$1/stat > "$2"
kill -CONT $PPID
sleep 1
kill -CONT $PPID`, "sh", string(b), state)
			if err := cont.Start(); err != nil {
				sent <- err
				return
			}
			sent <- syscall.Kill(os.Getpid(), syscall.SIGTSTP)
			return
		}
	}()
	code := reexec(t, "jobcontrol")
	close(done)
	if err := <-sent; err != nil {
		t.Fatalf("sending SIGTSTP: %v", err)
	}
	if err := cont.Wait(); err != nil {
		t.Errorf("the shell that continued this process: %v", err)
	}
	if code != 8 {
		t.Fatalf("child exit code %d, want 8 (it exits 8 on a forwarded SIGCONT)", code)
	}
	if b, err := os.ReadFile(state); err != nil || string(b) != "T\n" {
		t.Errorf("the child's state while this process was stopped: %q, %v; want T (stopped)", b, err)
	}
}

// failStartEnv makes the test binary, instead of running the tests, call
// Reexec with a start that fails and then wait to be stopped (see
// failedStart); its value is a directory for the files it exchanges with
// the test.
const failStartEnv = "IPCBENCH_NETNS_TEST_FAILSTART"

// failedStart calls Reexec with a child whose start fails (EPERM, as
// without user namespaces), as `ipcbench run` does before it measures in
// its own process, then writes dir/ready and waits (at most 20 s) for
// dir/done; 0 when all went so.
func failedStart(dir string) int {
	startChild = func(*exec.Cmd) error { return syscall.EPERM }
	if _, err := Reexec("-test.run=^$"); !errors.Is(err, ErrUnsupported) {
		fmt.Fprintln(os.Stderr, "netns helper: Reexec with a failing start:", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "netns helper:", err)
		return 1
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "netns helper: never told it was done")
	return 1
}

// TestReexecFailedStartKeepsCtrlZ: a Reexec whose child could not start
// leaves SIGTSTP as it was, so that the caller, going on without a
// namespace, still stops on Ctrl-Z (the Go runtime never gives back a
// signal it once caught).
func TestReexecFailedStartKeepsCtrlZ(t *testing.T) {
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), failStartEnv+"="+dir)
	cmd.Stderr = os.Stderr
	// A process group of its own, whose parent (this process) is in
	// another group of the session: the kernel drops SIGTSTP, rather than
	// stop, in an orphaned process group, which this test's own group is
	// when its starter has gone (a CI job started in the background).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
		cmd.Process.Signal(syscall.SIGCONT)
		if err := cmd.Wait(); err != nil {
			t.Errorf("the helper: %v", err)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the helper never got past its Reexec")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTSTP); err != nil {
		t.Fatal(err)
	}
	state := ""
	for deadline := time.Now().Add(5 * time.Second); state != "T" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		// The state is the field after the command's name in parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			state = string(b[i+2])
		}
	}
	if state != "T" {
		t.Errorf("after SIGTSTP the helper's state is %q, want T (stopped)", state)
	}
}

func TestInside(t *testing.T) {
	id, err := current()
	if err != nil {
		t.Skipf("no /proc/self/ns/net: %v", err)
	}
	if os.Getenv(EnvMarker) != "" {
		t.Skip("test runs with the marker already set")
	}
	tests := []struct {
		name, marker string
		want         bool
	}{
		{"no marker", "", false},
		{"same namespace as parent", id, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvMarker, tt.marker)
			if got := Inside(); got != tt.want {
				t.Fatalf("Inside() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSetupRefusesOutside(t *testing.T) {
	if Inside() {
		t.Skip("inside a private namespace")
	}
	err := Setup()
	if !errors.Is(err, ErrOutside) {
		t.Fatalf("Setup outside: %v, want ErrOutside", err)
	}
	if HasHermeticNetwork() {
		t.Fatal("HasHermeticNetwork true outside")
	}
}

func TestWithMarker(t *testing.T) {
	env := []string{"A=1", EnvMarker + "=old", "B=2", EnvMarker + "=older"}
	got := withMarker(env, "net:[7]")
	want := []string{"A=1", "B=2", EnvMarker + "=net:[7]"}
	if !slices.Equal(got, want) {
		t.Fatalf("withMarker = %q, want %q", got, want)
	}
}

func TestDescription(t *testing.T) {
	const want = "private-netns (veth ipc0 10.77.0.1/24 <-> ipc1 10.77.0.2/24)"
	if got := Description(); got != want {
		t.Fatalf("Description() = %q, want %q", got, want)
	}
}

// TestJobRelay checks the decision Reexec makes for each signal it
// catches: a Ctrl-Z stops, a continue and everything else go on to the
// child, and a stop that arrives within contGrace of a continue is taken
// to have come before it (Go hands two pending signals over in the order
// of their numbers, SIGCONT first).
func TestJobRelay(t *testing.T) {
	t0 := time.Unix(1000, 0)
	steps := []struct {
		sig  os.Signal
		at   time.Duration // after t0
		want relayAction
	}{
		{syscall.SIGTSTP, 0, relayStop}, // no continue yet: a plain Ctrl-Z
		{syscall.SIGCONT, time.Second, relayForward},
		{syscall.SIGTSTP, time.Second + contGrace/2, relayIgnore}, // came before that continue
		{syscall.SIGTSTP, time.Second + contGrace, relayStop},     // the grace is over
		{syscall.SIGINT, 2 * time.Second, relayForward},
		{syscall.SIGCONT, 3 * time.Second, relayForward},
		{syscall.SIGTERM, 3*time.Second + time.Millisecond, relayForward}, // the grace is for stops only
		{syscall.SIGTSTP, 3*time.Second + 2*time.Millisecond, relayIgnore},
		{syscall.SIGHUP, 4 * time.Second, relayForward},
	}
	var j jobRelay
	for i, s := range steps {
		if got := j.on(s.sig, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: %v at +%v: got action %d, want %d", i, s.sig, s.at, got, s.want)
		}
	}
}
