// Package netns runs a program inside a private, hermetic network namespace
// so that TCP on a "non-loopback" address never touches the machine's real
// interfaces.
//
// The pattern is a re-exec: the outer process calls Reexec, which starts the
// same executable with the same arguments and environment plus a marker
// variable, in a fresh network namespace (CLONE_NEWNET as root, or
// CLONE_NEWUSER|CLONE_NEWNET with the caller mapped to root otherwise), waits
// for it, and returns its exit code for the caller to exit with. The
// re-executed process sees Inside() == true and calls Setup, which brings lo
// up and creates a veth pair, ipc0 10.77.0.1/24 <-> ipc1 10.77.0.2/24, both
// ends inside the namespace. Nothing outside the namespace is changed.
//
//	if !netns.Inside() {
//		code, err := netns.Reexec(os.Args[1:]...)
//		if err == nil {
//			os.Exit(code)
//		}
//		// errors.Is(err, netns.ErrUnsupported): carry on outside and say why.
//	} else if err := netns.Setup(); err != nil { ... }
//
// Enter wraps exactly that sequence. The package is Linux-only.
package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnvMarker is the environment variable Reexec sets in the re-executed
// process. Its value is the identity of the network namespace the parent ran
// in ("net:[4026531840]"); Inside reports true only when the current
// namespace differs from it, so a marker copied into an unrelated process
// outside a private namespace does not fool it.
const EnvMarker = "IPCBENCH_NETNS"

// The hermetic network Setup creates.
const (
	Link0 = "ipc0"           // first veth end
	Link1 = "ipc1"           // second veth end
	Addr0 = "10.77.0.1"      // address of Link0
	Addr1 = "10.77.0.2"      // address of Link1
	Cidr0 = "10.77.0.1/24"   // Addr0 with its prefix
	Cidr1 = "10.77.0.2/24"   // Addr1 with its prefix
	name  = "private-netns"  // network kind in Description
	nsDir = "/proc/self/ns/" // where the current namespaces are named
)

var (
	// ErrUnsupported means a private network namespace (or its veth pair)
	// cannot be made here: no permission, user namespaces disabled, no veth
	// support. The error wrapping it says why; callers fall back to running
	// outside and skip what needs the namespace.
	ErrUnsupported = errors.New("private network namespace unsupported")
	// ErrOutside means Setup was called outside a private namespace made by
	// Reexec; Setup refuses so that it never changes the host's network.
	ErrOutside = errors.New("not inside a private network namespace")
)

// Description describes the network Setup creates, for run records:
// "private-netns (veth ipc0 10.77.0.1/24 <-> ipc1 10.77.0.2/24)".
func Description() string {
	return fmt.Sprintf("%s (veth %s %s <-> %s %s)", name, Link0, Cidr0, Link1, Cidr1)
}

// current returns the identity of this process's network namespace.
func current() (string, error) {
	id, err := os.Readlink(nsDir + "net")
	if err != nil {
		return "", fmt.Errorf("netns: read own network namespace: %w", err)
	}
	return id, nil
}

// Inside reports whether this process was started by Reexec and runs in a
// network namespace other than its parent's.
func Inside() bool {
	outer := os.Getenv(EnvMarker)
	if outer == "" {
		return false
	}
	id, err := current()
	if err != nil || id == outer {
		return false
	}
	// Where pid 1's namespace is visible (root, no pid namespace), it names
	// the namespace this machine's real interfaces live in: sharing it means
	// not private, whatever the marker says.
	if init, err := os.Readlink("/proc/1/ns/net"); err == nil && init == id {
		return false
	}
	return true
}

// Reexec runs the current executable again with args (normally
// os.Args[1:]) inside a fresh private network namespace, and returns the
// child's exit code once it exits; the caller should then exit with it. A
// child killed by a signal yields 128+signal.
//
// The child inherits stdin, stdout, stderr and the environment plus
// EnvMarker. It runs in its own process group and is killed (SIGKILL) if
// the calling thread dies; SIGINT, SIGTERM and SIGHUP received by this
// process while the child runs are forwarded to it instead of acting here.
// Job control reaches the child too, which the terminal, whose signals go
// to this process's group alone, would leave running: SIGTSTP (Ctrl-Z)
// stops the child (SIGSTOP), then this process; SIGCONT is forwarded. (A
// SIGTSTP that comes with a SIGCONT, within 50 ms, stops nothing: Go
// delivers two pending signals in the order of their numbers, not of
// their sending.)
// Reexec does not check Inside: called inside a namespace, it nests another.
//
// When the namespace cannot be created, the error wraps ErrUnsupported and
// says why; other failures (no executable) are returned wrapped as they are.
func Reexec(args ...string) (int, error) {
	code, _, err := reexecStatus(args...)
	return code, err
}

// KilledError is Enter's error when the re-executed child was killed by
// SIGKILL (by hand, or by the kernel out of memory), which left it no
// chance to say anything itself; the exit code Enter returns with it is
// 128+Signal.
type KilledError struct {
	Signal syscall.Signal
}

// Error says which signal ended the child.
func (e *KilledError) Error() string {
	return fmt.Sprintf("the process inside the private network namespace was killed by signal %d (%v)", int(e.Signal), e.Signal)
}

// reexecStatus is Reexec, which also returns the signal that killed the child,
// or 0.
func reexecStatus(args ...string) (int, syscall.Signal, error) {
	outer, err := current()
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, 0, fmt.Errorf("netns: find own executable: %w", err)
	}
	argv0 := exe
	if len(os.Args) > 0 {
		argv0 = os.Args[0]
	}
	cmd := &exec.Cmd{
		Path:   exe,
		Args:   append([]string{argv0}, args...),
		Env:    withMarker(os.Environ(), outer),
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Pdeathsig: syscall.SIGKILL,
			Setpgid:   true,
		},
	}
	if uid, gid := os.Getuid(), os.Getgid(); uid == 0 {
		cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWNET
	} else {
		cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNET
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = false
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	// Pdeathsig fires when the thread that forked the child exits, so keep
	// this goroutine on one thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := startChild(cmd); err != nil {
		if unsupported(err) {
			return 0, 0, fmt.Errorf("%w: start %s in a new network namespace: %w", ErrUnsupported, exe, err)
		}
		return 0, 0, fmt.Errorf("netns: start %s: %w", exe, err)
	}
	// Job control only once there is a child to pass it on to: the Go
	// runtime, once it has caught SIGTSTP, never gives it back to the
	// kernel's default, and a caller that goes on without a namespace
	// must still stop on Ctrl-Z.
	signal.Notify(sigs, syscall.SIGTSTP, syscall.SIGCONT)

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var relay jobRelay
		for {
			select {
			case s := <-sigs:
				// The child may be exiting already: errors are moot.
				switch relay.on(s, time.Now()) {
				case relayStop:
					// Ctrl-Z: the terminal stops this process's group, not
					// the child's; stop the child, then this process, as
					// the shell expects of a job it stopped.
					_ = cmd.Process.Signal(syscall.SIGSTOP)
					_ = syscall.Kill(os.Getpid(), syscall.SIGSTOP)
				case relayForward:
					_ = cmd.Process.Signal(s)
				}
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	wg.Wait()

	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, 0, nil
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), ws.Signal(), nil
		}
		return exitErr.ExitCode(), 0, nil
	default:
		return 0, 0, fmt.Errorf("netns: wait for child: %w", err)
	}
}

// startChild starts Reexec's child (a variable so that tests can make
// the start fail).
var startChild = (*exec.Cmd).Start

// contGrace is how soon after a SIGCONT a SIGTSTP is taken to have come
// before it (see jobRelay.on).
const contGrace = 50 * time.Millisecond

// relayAction is what Reexec does with a signal it caught.
type relayAction int

const (
	relayIgnore  relayAction = iota // drop it
	relayStop                       // stop the child, then this process
	relayForward                    // send it on to the child
)

// jobRelay decides what Reexec does with each signal it caught; its
// zero value is ready.
type jobRelay struct {
	lastCont time.Time // when the last SIGCONT came
}

// on returns what to do with signal s, caught at now.
//
// SIGTSTP (Ctrl-Z) stops the child and this process. Two signals that
// came at once leave Go's signal channel in the order of their numbers,
// SIGCONT first: a stop and its continue sent back to back would stop
// both processes for good. The kernel's own rule for the two is that the
// later one wins; here a SIGTSTP within contGrace of a SIGCONT is taken
// to have come before it, and dropped. SIGCONT (fg, bg, kill -CONT) goes
// on to the child, which takes it for the end of a stop, and so does
// every other signal.
func (j *jobRelay) on(s os.Signal, now time.Time) relayAction {
	switch s {
	case syscall.SIGTSTP:
		if !j.lastCont.IsZero() && now.Sub(j.lastCont) < contGrace {
			return relayIgnore
		}
		return relayStop
	case syscall.SIGCONT:
		j.lastCont = now
	}
	return relayForward
}

// withMarker returns env with EnvMarker set to outer, replacing any earlier
// value.
func withMarker(env []string, outer string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, EnvMarker+"=") {
			out = append(out, kv)
		}
	}
	return append(out, EnvMarker+"="+outer)
}

// unsupported reports whether err means namespaces (or the veth device) are
// not available to this process, as opposed to some other failure.
func unsupported(err error) bool {
	for _, e := range []error{unix.EPERM, unix.EACCES, unix.EINVAL, unix.ENOSPC, unix.EUSERS, unix.ENOSYS, unix.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Setup brings lo up and creates the veth pair ipc0 10.77.0.1/24 <->
// ipc1 10.77.0.2/24 with both ends up. It is idempotent: links and
// addresses that already exist are kept. It refuses with an error wrapping
// ErrOutside unless Inside() holds, so it never touches the host's network.
// When the kernel refuses (no veth support, no permission) the error wraps
// ErrUnsupported.
func Setup() error {
	if !Inside() {
		return fmt.Errorf("netns: setup: %w (start the program through Reexec)", ErrOutside)
	}
	if err := setup(); err != nil {
		if unsupported(err) {
			return fmt.Errorf("%w: %w", ErrUnsupported, err)
		}
		return err
	}
	return nil
}

func setup() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns: find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns: set lo up: %w", err)
	}
	if _, err := netlink.LinkByName(Link0); err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("netns: look up %s: %w", Link0, err)
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: Link0}, PeerName: Link1}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("netns: create veth %s <-> %s: %w", Link0, Link1, err)
		}
	}
	for _, l := range []struct{ name, cidr string }{{Link0, Cidr0}, {Link1, Cidr1}} {
		link, err := netlink.LinkByName(l.name)
		if err != nil {
			return fmt.Errorf("netns: look up %s: %w", l.name, err)
		}
		addr, err := netlink.ParseAddr(l.cidr)
		if err != nil {
			return fmt.Errorf("netns: parse %s: %w", l.cidr, err)
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("netns: add %s to %s: %w", l.cidr, l.name, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("netns: set %s up: %w", l.name, err)
		}
	}
	return nil
}

// Enter makes the rest of the program run inside a private network
// namespace. In the outer process it calls Reexec with args and returns
// (code, true, nil): the caller must exit with code; when the child was
// killed by SIGKILL, (137, true, err) with err a *KilledError, for the
// caller to say so as it exits, since the child could not. In the re-executed
// process it calls Setup and returns (0, false, nil): the caller carries on,
// inside. When no namespace can be made it returns (0, false, err) with err
// wrapping ErrUnsupported: the caller carries on outside and reports err as
// the reason whatever needs the namespace is skipped.
func Enter(args ...string) (code int, exit bool, err error) {
	if Inside() {
		return 0, false, Setup()
	}
	code, sig, err := reexecStatus(args...)
	if err != nil {
		return 0, false, err
	}
	if sig == syscall.SIGKILL {
		// Only SIGKILL leaves the child no word of its own. A SIGPIPE is a
		// closed standard output, exit 141 as for any filter; SIGINT and
		// SIGTERM, forwarded, it handles.
		return code, true, &KilledError{Signal: sig}
	}
	return code, true, nil
}

// HasHermeticNetwork reports whether this process is Inside a private
// namespace whose veth pair is in place (Setup has run), so that addresses
// of non-loopback interfaces are safe to use.
func HasHermeticNetwork() bool {
	if !Inside() {
		return false
	}
	ifc, err := net.InterfaceByName(Link0)
	return err == nil && ifc.Flags&net.FlagUp != 0
}
