package peer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
	"golang.org/x/sys/unix"
)

// connChildEnv marks a process started by ModelProcess to serve one
// connection; its value is the connChild description, as JSON.
const connChildEnv = "IPCBENCH_PEER_CONN"

// The descriptors a connection child inherits (exec.Cmd.ExtraFiles).
const (
	childReadFD  = 3
	childWriteFD = 4
)

// connChild tells a ModelProcess child what to serve.
type connChild struct {
	Role  string    `json:"role"`
	Frame FrameSpec `json:"frame"`
	Index int       `json:"index"`
	// Socket: the read and write descriptors are one socket.
	Socket bool `json:"socket"`
}

// isConnChild reports whether this process was started by ModelProcess.
func isConnChild() bool { return os.Getenv(connChildEnv) != "" }

// childReady is the line a ModelProcess child writes on stdout once it is
// about to serve, before its counts.
const childReady = "ready"

// connChildMain is the body of a ModelProcess child: it writes childReady
// on stdout, serves the role on the inherited descriptors and writes the
// connection's ConnStats as one JSON line on stdout. It returns 0, or 2
// when its description is bad.
func connChildMain(stdout, stderr io.Writer) int {
	var cc connChild
	if err := json.Unmarshal([]byte(os.Getenv(connChildEnv)), &cc); err != nil {
		fmt.Fprintf(stderr, "ipcbench peer connection child: bad %s: %v\n", connChildEnv, err)
		return 2
	}
	cfg, err := cc.Frame.Config()
	if err != nil {
		fmt.Fprintf(stderr, "ipcbench peer connection child: framing: %v\n", err)
		return 2
	}
	loop, err := loopFor(cc.Role, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "ipcbench peer connection child: %v\n", err)
		return 2
	}
	fds := fdSet{r: childReadFD, w: childWriteFD}
	if cc.Socket {
		unix.Close(childWriteFD)
		fds.w = childReadFD
	}
	st := &fdStream{fds: fds}
	if _, err := fmt.Fprintln(stdout, childReady); err != nil {
		fmt.Fprintf(stderr, "ipcbench peer connection child: %v\n", err)
		return 1
	}
	var stats ConnStats
	if err := loop(st, cfg, cc.Index, &stats); err != nil {
		stats.Error = err.Error()
	}
	st.Close()
	if err := json.NewEncoder(stdout).Encode(stats); err != nil {
		fmt.Fprintf(stderr, "ipcbench peer connection child: writing counts: %v\n", err)
		return 1
	}
	return 0
}

// children tracks the live ModelProcess children, so that the peer's CPU
// time includes theirs.
type children struct {
	mu   sync.Mutex
	pids map[int]bool
}

func (c *children) add(pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pids == nil {
		c.pids = map[int]bool{}
	}
	c.pids[pid] = true
}

func (c *children) remove(pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pids, pid)
}

// cpu returns the CPU time of the live children (10 ms grained, from
// /proc) plus that of the children already waited for (getrusage
// RUSAGE_CHILDREN).
func (c *children) cpu() (user, sys int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, err := sysinfo.ChildrenCPUTime(); err == nil {
		user, sys = int64(t.User), int64(t.System)
	}
	for pid := range c.pids {
		if t, err := sysinfo.ProcessCPUTime(pid); err == nil {
			user += int64(t.User)
			sys += int64(t.System)
		}
	}
	return user, sys
}

// serveProcesses is ModelProcess: one child process per connection, each
// started from (and waited for on) a thread of its own, so that the
// child's parent-death signal fires only when this process dies.
// It closes up once every child has started.
func (s *server) serveProcesses(sv *serving, fds []fdSet, role string, cfg frame.Config, stats []ConnStats, up chan<- struct{}) {
	exe, exeErr := os.Executable()
	perConn(sv, fds, stats, up, func(i int, f fdSet, ready func()) error {
		if exeErr != nil {
			f.close()
			sv.conns[i].Close()
			return fmt.Errorf("find own executable: %w", exeErr)
		}
		return s.runChild(sv, exe, f, connChild{Role: role, Frame: FrameSpecOf(cfg), Index: i, Socket: f.sock()}, &stats[i], ready)
	})
}

// runChild starts the child for one connection, hands it the descriptors
// (closing this process's copies and the connection, so that the child
// alone holds it), calls started once the child says it serves, and waits
// for its counts.
func (s *server) runChild(sv *serving, exe string, f fdSet, cc connChild, st *ConnStats, started func()) error {
	defer sv.conns[cc.Index].Close()
	desc, err := json.Marshal(cc)
	if err != nil {
		f.close()
		return err
	}
	if err := f.setBlocking(true); err != nil {
		f.close()
		return err
	}
	rf := os.NewFile(uintptr(f.r), "conn-read")
	wf := rf
	if !f.sock() {
		wf = os.NewFile(uintptr(f.w), "conn-write")
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), connChildEnv+"="+string(desc))
	cmd.ExtraFiles = []*os.File{rf, wf}
	cmd.Stderr = s.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		f.close()
		return fmt.Errorf("connection child: %w", err)
	}
	err = cmd.Start()
	rf.Close()
	wf.Close()                 // a second Close of a socket's one file does nothing
	sv.conns[cc.Index].Close() // the child holds the connection now
	if err != nil {
		return fmt.Errorf("start connection child: %w", err)
	}
	pid := cmd.Process.Pid
	s.children.add(pid)
	if !sv.onClose(func() { cmd.Process.Kill() }) {
		cmd.Process.Kill()
	}
	br := bufio.NewReader(out)
	line, derr := br.ReadString('\n')
	if derr == nil && strings.TrimSpace(line) != childReady {
		derr = fmt.Errorf("child said %q, not %q", line, childReady)
	}
	started()
	if derr == nil {
		derr = json.NewDecoder(br).Decode(st)
	}
	io.Copy(io.Discard, br)
	werr := cmd.Wait()
	s.children.remove(pid)
	switch {
	case werr != nil:
		return fmt.Errorf("connection child %d: %w", pid, werr)
	case derr != nil:
		return fmt.Errorf("connection child %d: reading its counts: %w", pid, derr)
	}
	return nil
}
