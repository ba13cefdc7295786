// Package proc starts the ipcbench peer process and carries its control
// channel.
//
// A measurement always runs between two processes (docs/methodology.md §1,
// "Two processes"): the bench process listens and measures, the peer
// process dials and serves. The peer is the same executable run as a hidden
// subcommand (`ipcbench peer`; in tests, the test binary re-executed by its
// TestMain). This package is both ends of that arrangement:
//
//   - the bench side: Start spawns the peer with the files it must inherit,
//     waits for its handshake and returns a Peer, whose Send and Recv carry
//     one JSON value per line over the peer's stdin and stdout;
//   - the peer side: IsPeer tells a program it was started as a peer,
//     Control (or Announce) writes the handshake and returns the control
//     channel.
//
// # Handshake and cookie
//
// After the hashicorp/go-plugin idea, the peer is started with the
// environment variable CookieEnv set to CookieValue; a program started
// without it is not a peer and refuses to act as one (the value is not a
// secret, it only stops people from running the peer by hand). The peer's
// first line on stdout is the handshake
//
//	ipcbench-peer/<HandshakeVersion> pid=<pid>\n
//
// and Start fails, with an error wrapping ErrPeerStart, unless exactly this
// line, with this version and the pid of the process it started, arrives
// within Spec.StartTimeout. After the handshake stdout carries only
// control lines; the peer writes its logs to stderr, which the Peer keeps
// (the last LogTailSize bytes) for error messages.
//
// A process that was itself started as a peer starts no peer (CheckStart,
// ErrStartFromPeer): a program that forgot to serve in the copy started
// as its peer would otherwise start copies of itself without end.
//
// # Lifetime
//
// A peer never outlives the bench process:
//
//   - it is started with Pdeathsig = SIGKILL, so the kernel kills it when
//     the bench process dies. Pdeathsig fires when the OS thread that forked
//     the child exits, not the process (golang/go#27505); Start therefore
//     forks from a goroutine locked to its OS thread
//     (runtime.LockOSThread), and that goroutine stays locked, waiting for
//     the child, until the child has been reaped. The thread cannot exit
//     while the peer lives, whichever goroutine called Start.
//   - the parent's pid travels in ParentEnv; the peer side (Announce) checks
//     getppid against it before the handshake and gives up with
//     ErrParentGone when the parent died before the death signal was armed.
//   - the peer runs in its own process group, so a Ctrl-C at a terminal
//     reaches only the bench process, which then closes its peers in order.
//   - Close ends it in order (control EOF, a grace period of CloseGrace,
//     then SIGKILL) and always reaps it.
package proc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/lineio"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// Limits and defaults of the bench side.
const (
	// DefaultStartTimeout bounds Start when Spec.StartTimeout is zero.
	DefaultStartTimeout = 30 * time.Second
	// CloseGrace is how long Close waits for the peer to exit after closing
	// its control channel before killing it.
	CloseGrace = 2 * time.Second
	// SendTimeout bounds one Send: a peer that does not drain its control
	// channel within it is stuck.
	SendTimeout = 10 * time.Second
	// LogTailSize is how many bytes of the peer's stderr a Peer keeps.
	LogTailSize = 64 << 10
	// MaxLineSize is the longest control line accepted, in bytes.
	MaxLineSize = 1 << 20
	// errTailSize is how much of the stderr tail an error message quotes.
	errTailSize = 2 << 10
)

// Sentinel errors, tested with errors.Is.
var (
	// ErrPeerStart means the peer could not be started: the executable did
	// not run, the handshake did not arrive within the start timeout, it was
	// not a valid handshake, or the peer exited before it.
	ErrPeerStart = errors.New("peer failed to start")
	// ErrPeerExited means the peer process has exited; the error message
	// gives its exit status and the tail of its stderr.
	ErrPeerExited = errors.New("peer exited")
	// ErrClosed means the Peer was closed by this process.
	ErrClosed = errors.New("peer closed")
	// ErrStartFromPeer means this process, itself started as a peer (the
	// cookie is in its environment, IsPeer), tried to start a peer: a
	// program that re-executes itself as its peer but did not call
	// peer.RunIfPeer first in main (or TestMain) runs its normal main in
	// that copy, which would start a copy of its own, and so on. Start
	// refuses, with an error wrapping ErrPeerStart too, before anything
	// is started.
	ErrStartFromPeer = errors.New("this process was started as an ipcbench peer, yet starts peers itself")
)

// startFromPeer lets this process start peers although it is itself a
// peer; only tests set it (a peer that starts a grandchild, to check that
// the death signal reaches it).
var startFromPeer atomic.Bool

// CheckStart returns an error wrapping ErrPeerStart and ErrStartFromPeer
// when this process was started as a peer (IsPeer), which must then serve
// rather than start peers of its own; nil otherwise. Start calls it first;
// a caller that is about to start peers calls it to fail before doing
// anything else.
func CheckStart() error {
	if !IsPeer() || startFromPeer.Load() {
		return nil
	}
	return fmt.Errorf("%w: %w: call peer.RunIfPeer first in main (or TestMain), so that the copy started as the peer serves instead of running the program again", ErrPeerStart, ErrStartFromPeer)
}

// Spec says how to start a peer. The zero value starts os.Executable()
// without arguments.
type Spec struct {
	// Path is the executable; empty means os.Executable(). A name without
	// a slash is looked up in PATH.
	Path string
	// Args are the arguments after the program name (the CLI uses
	// ["peer"]; a test binary re-executing itself uses none).
	Args []string
	// Env is added to os.Environ(), together with CookieEnv and ParentEnv
	// (which always win). In a binary built with the race detector, GORACE
	// also gets atexit_sleep_ms=0 unless it sets that option, so that peers
	// exit without the detector's 1 s pause.
	Env []string
	// Attach, if not nil, is called with the command after its environment
	// is set and before it starts, to hand the peer what it must inherit:
	// transports.Endpoint.AttachTo, which adds the endpoint's files to
	// ExtraFiles and the endpoint to the environment. Whatever it adds stays
	// owned by the caller.
	Attach func(cmd *exec.Cmd) error
	// StartTimeout bounds the whole start, exec and handshake; 0 means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// CPUs, if not empty, pins the peer to these CPUs: it is forked from a
	// thread with this affinity, so it runs there from its first
	// instruction (a Go peer's runtime starts with GOMAXPROCS = the number
	// of these CPUs), and every thread it has after the handshake is
	// pinned again with sysinfo.SetAffinity.
	CPUs []int
	// Stderr receives the peer's logs as they arrive; nil discards them.
	// Either way the last LogTailSize bytes are kept for Logs and for
	// error messages.
	Stderr io.Writer
}

// Peer is a running peer process seen from the bench side. Its methods are
// safe for concurrent use; concurrent Recv calls receive distinct lines.
type Peer struct {
	cmd  *exec.Cmd
	pid  int
	path string

	stdin  *os.File // write end of the peer's stdin
	stdout *os.File // read end of the peer's stdout
	stderr *os.File // read end of the peer's stderr

	lines      chan lineItem // control lines, closed at stdout EOF
	quit       chan struct{} // closed by Close: stops the line reader
	exited     chan struct{} // closed once the process is reaped
	stderrDone chan struct{} // closed when the stderr copier ends
	readers    sync.WaitGroup

	state   *os.ProcessState // set before exited is closed
	waitErr error            // set before exited is closed

	logs *tailBuffer
	tee  io.Writer

	sendMu    sync.Mutex
	sendDone  bool // stdin was closed (guarded by sendMu)
	closeOnce sync.Once
	closeErr  error
}

// lineItem is one control line, or the error that ended reading.
type lineItem struct {
	line []byte
	err  error
}

// Start spawns the peer described by s and waits for its handshake. ctx
// and s.StartTimeout bound the start only; once Start returns, the peer
// lives until it exits or the Peer is closed (ctx no longer matters).
//
// On any failure the process, if it ran, is killed and reaped, and the
// error wraps ErrPeerStart and quotes the tail of the peer's stderr. A
// process that was itself started as a peer starts nothing: the error
// wraps ErrStartFromPeer as well (see CheckStart).
func Start(ctx context.Context, s Spec) (*Peer, error) {
	if err := CheckStart(); err != nil {
		return nil, err
	}
	timeout := s.StartTimeout
	if timeout < 0 {
		return nil, fmt.Errorf("%w: negative start timeout %v", ErrPeerStart, timeout)
	}
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errStartTimeout)
	defer cancel()

	path := s.Path
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("%w: finding this executable: %w", ErrPeerStart, err)
		}
		path = exe
	}
	cpuSet, err := cpuSetOf(s.CPUs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeerStart, err)
	}

	var pipes [6]*os.File // stdin r/w, stdout r/w, stderr r/w
	closeAll := func() {
		for _, f := range pipes {
			if f != nil {
				f.Close()
			}
		}
	}
	for i := 0; i < 3; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("%w: making pipes: %w", ErrPeerStart, err)
		}
		pipes[2*i], pipes[2*i+1] = r, w
	}

	cmd := exec.Command(path, s.Args...)
	cmd.Env = append(append(os.Environ(), s.Env...), raceEnv()...)
	cmd.Env = append(cmd.Env, peerEnv()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pipes[0], pipes[3], pipes[5]
	if s.Attach != nil {
		if err := s.Attach(cmd); err != nil {
			closeAll()
			return nil, fmt.Errorf("%w: %w", ErrPeerStart, err)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}

	p := &Peer{
		cmd:        cmd,
		path:       path,
		stdin:      pipes[1],
		stdout:     pipes[2],
		stderr:     pipes[4],
		lines:      make(chan lineItem),
		quit:       make(chan struct{}),
		exited:     make(chan struct{}),
		stderrDone: make(chan struct{}),
		logs:       &tailBuffer{max: LogTailSize},
		tee:        s.Stderr,
	}
	started := make(chan error, 1)
	go p.spawnAndWait(started, cpuSet)
	if err := <-started; err != nil {
		closeAll()
		return nil, fmt.Errorf("%w: starting %s: %w", ErrPeerStart, path, err)
	}
	p.pid = cmd.Process.Pid
	// The child holds its own copies; ours would keep the pipes open.
	pipes[0].Close()
	pipes[3].Close()
	pipes[5].Close()

	p.readers.Add(2)
	go p.readLines()
	go p.copyStderr()

	if err := p.handshake(ctx, timeout); err != nil {
		p.abort()
		return nil, fmt.Errorf("%w: %s (pid %d): %w%s", ErrPeerStart, path, p.pid, err, p.tailSuffix())
	}
	if len(s.CPUs) > 0 {
		if err := sysinfo.SetAffinity(p.pid, s.CPUs); err != nil {
			p.abort()
			return nil, fmt.Errorf("%w: pinning peer %d: %w%s", ErrPeerStart, p.pid, err, p.tailSuffix())
		}
	}
	return p, nil
}

// raceEnv returns the environment that stops a race-enabled peer from
// sleeping for a second before it exits with status 0 (GORACE
// atexit_sleep_ms defaults to 1000 ms), which would slow every Close; an
// atexit_sleep_ms already given in GORACE is kept.
func raceEnv() []string {
	gorace := os.Getenv("GORACE")
	if !raceEnabled || strings.Contains(gorace, "atexit_sleep_ms") {
		return nil
	}
	return []string{"GORACE=" + strings.TrimSpace(gorace+" atexit_sleep_ms=0")}
}

// cpuSetOf converts a CPU list to a CPU set; nil for an empty list.
func cpuSetOf(cpus []int) (*unix.CPUSet, error) {
	if len(cpus) == 0 {
		return nil, nil
	}
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c > sysinfo.MaxCPU {
			return nil, fmt.Errorf("%w: CPU %d outside 0..%d", sysinfo.ErrBadCPUList, c, sysinfo.MaxCPU)
		}
		set.Set(c)
	}
	return &set, nil
}

// spawnAndWait forks the peer on a locked OS thread and keeps that thread
// until the peer is reaped, because Pdeathsig is tied to the thread that
// forked (golang/go#27505). With cpus set, the thread's affinity is
// narrowed for the fork so the child inherits it, then restored.
func (p *Peer) spawnAndWait(started chan<- error, cpus *unix.CPUSet) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var err error
	if cpus != nil {
		var old unix.CPUSet
		if err = unix.SchedGetaffinity(0, &old); err != nil {
			err = fmt.Errorf("reading thread affinity: %w", err)
		} else if err = unix.SchedSetaffinity(0, cpus); err != nil {
			err = fmt.Errorf("pinning to CPUs: %w", err)
		} else {
			err = p.cmd.Start()
			// Failing to restore leaves this locked thread narrower until
			// it is released by UnlockOSThread, which is harmless.
			_ = unix.SchedSetaffinity(0, &old)
		}
	} else {
		err = p.cmd.Start()
	}
	started <- err
	if err != nil {
		return
	}
	p.waitErr = p.cmd.Wait()
	p.state = p.cmd.ProcessState
	close(p.exited)
}

// handshake waits for the handshake line.
func (p *Peer) handshake(ctx context.Context, timeout time.Duration) error {
	select {
	case it, ok := <-p.lines:
		if !ok {
			select {
			case <-p.exited:
				return fmt.Errorf("exited before the handshake: %s", p.exitStatus())
			case <-ctx.Done():
				return errors.New("closed its stdout before the handshake")
			}
		}
		if it.err != nil {
			return fmt.Errorf("reading the handshake: %w", it.err)
		}
		return checkHandshake(it.line, p.pid)
	case <-ctx.Done():
		// Only Start's own timer is the start timeout; a deadline of the
		// caller's (a case timeout) that passes first is the caller's.
		if errors.Is(context.Cause(ctx), errStartTimeout) {
			return fmt.Errorf("no handshake within %v", timeout)
		}
		return fmt.Errorf("waiting for the handshake: %w", ctx.Err())
	}
}

// errStartTimeout is the cause of Start's context when its own timer, the
// start timeout, ends it.
var errStartTimeout = errors.New("start timeout")

// quote quotes a line for an error message, shortened to 200 bytes.
func quote(b []byte) string {
	if len(b) > 200 {
		return strconv.Quote(string(b[:200])) + "..."
	}
	return strconv.Quote(string(b))
}

// readLines reads control lines from the peer's stdout until EOF or Close.
func (p *Peer) readLines() {
	defer p.readers.Done()
	defer close(p.lines)
	br := bufio.NewReaderSize(p.stdout, 64<<10)
	for {
		line, err := readLine(br, MaxLineSize)
		var it lineItem
		switch {
		case err == nil:
			it.line = line
		case errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed):
			return
		default:
			it.err = err
		}
		select {
		case p.lines <- it:
		case <-p.quit:
			return
		}
		if it.err != nil {
			return
		}
	}
}

// readLine reads one control line of at most max bytes (lineio.Read), with
// errors that say it is a control line.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	line, err := lineio.Read(br, max)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("control line %s without newline: %w", quote(line), err)
	case errors.Is(err, lineio.ErrTooLong):
		return nil, fmt.Errorf("control %w", err)
	}
	return line, err
}

// copyStderr keeps the peer's stderr tail and copies it to the tee.
func (p *Peer) copyStderr() {
	defer p.readers.Done()
	defer close(p.stderrDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := p.stderr.Read(buf)
		if n > 0 {
			p.logs.Write(buf[:n])
			if p.tee != nil {
				_, _ = p.tee.Write(buf[:n]) // a failing log sink must not stop the peer
			}
		}
		if err != nil {
			return
		}
	}
}

// PID returns the peer's process id.
func (p *Peer) PID() int { return p.pid }

// Send writes v as one JSON line on the peer's stdin. It fails with an
// error wrapping ErrPeerExited when the peer has exited, ErrClosed after
// Close, and os.ErrDeadlineExceeded when the peer has not drained its
// control channel within SendTimeout.
func (p *Peer) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("proc: encoding control message: %w", err)
	}
	b = append(b, '\n')
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	if p.sendDone {
		return fmt.Errorf("proc: sending to peer %d: %w", p.pid, ErrClosed)
	}
	if err := p.stdin.SetWriteDeadline(time.Now().Add(SendTimeout)); err != nil {
		return fmt.Errorf("proc: sending to peer %d: %w", p.pid, err)
	}
	if _, err := p.stdin.Write(b); err != nil {
		switch {
		case errors.Is(err, os.ErrClosed):
			return fmt.Errorf("proc: sending to peer %d: %w", p.pid, ErrClosed)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("proc: peer %d did not read its control channel within %v: %w", p.pid, SendTimeout, err)
		}
		select {
		case <-p.exited:
			return p.exitedError()
		case <-time.After(time.Second):
			return fmt.Errorf("proc: sending to peer %d: %w", p.pid, err)
		}
	}
	return nil
}

// Recv decodes the next control line into v. It returns an error wrapping
// ctx.Err() when ctx ends first, ErrPeerExited (with exit status and stderr
// tail) when the peer exited without sending another line, ErrClosed after
// Close, and an error for a line that is not valid JSON for v (the line is
// consumed).
func (p *Peer) Recv(ctx context.Context, v any) error {
	return p.recv(ctx, func(line []byte) error {
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("proc: peer %d sent control line %s: %w", p.pid, quote(line), err)
		}
		return nil
	})
}

// recv waits for the next stdout line and hands it to use.
func (p *Peer) recv(ctx context.Context, use func(line []byte) error) error {
	select {
	case it, ok := <-p.lines:
		if !ok {
			return p.eofError(ctx)
		}
		if it.err != nil {
			return fmt.Errorf("proc: reading control channel of peer %d: %w", p.pid, it.err)
		}
		return use(it.line)
	case <-p.quit:
		return fmt.Errorf("proc: receiving from peer %d: %w", p.pid, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("proc: waiting for peer %d: %w", p.pid, ctx.Err())
	}
}

// RecvLine returns the next line the peer wrote on stdout, without its
// newline and without decoding it, for a peer whose stdout after the
// handshake is not the control protocol (a stand-alone server's "listening
// on ADDRESS"). Its errors are Recv's.
func (p *Peer) RecvLine(ctx context.Context) (string, error) {
	var line string
	err := p.recv(ctx, func(b []byte) error { line = string(b); return nil })
	return line, err
}

// eofError explains the end of the peer's stdout.
func (p *Peer) eofError(ctx context.Context) error {
	select {
	case <-p.quit:
		return fmt.Errorf("proc: receiving from peer %d: %w", p.pid, ErrClosed)
	default:
	}
	t := time.NewTimer(CloseGrace)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.exitedError()
	case <-ctx.Done():
		return fmt.Errorf("proc: peer %d closed its control channel: %w", p.pid, io.ErrUnexpectedEOF)
	case <-t.C:
		return fmt.Errorf("proc: peer %d closed its control channel but did not exit: %w", p.pid, io.ErrUnexpectedEOF)
	}
}

// exitedError describes the exit of the (reaped) peer.
func (p *Peer) exitedError() error {
	return fmt.Errorf("%w: peer %d (%s): %s%s", ErrPeerExited, p.pid, p.path, p.exitStatus(), p.tailSuffix())
}

// exitStatus describes how the reaped peer ended: "exit status 3",
// "signal: killed".
func (p *Peer) exitStatus() string {
	if p.state == nil {
		return fmt.Sprintf("unknown status (wait failed: %v)", p.waitErr)
	}
	return p.state.String()
}

// tailSuffix returns "; peer stderr: ..." with the end of the peer's log,
// or "" when it logged nothing. Once the process has exited it waits
// briefly for the log to be drained, so the last words are included.
func (p *Peer) tailSuffix() string {
	select {
	case <-p.exited:
		select {
		case <-p.stderrDone:
		case <-time.After(time.Second):
		}
	default:
	}
	tail := strings.TrimSpace(p.logs.Tail(errTailSize))
	if tail == "" {
		return ""
	}
	return "; peer stderr: " + tail
}

// Exited returns a channel that is closed once the peer process has exited
// and been reaped.
func (p *Peer) Exited() <-chan struct{} { return p.exited }

// Kill sends SIGKILL to the peer. It returns nil when the peer has already
// exited.
func (p *Peer) Kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("proc: killing peer %d: %w", p.pid, err)
	}
	return nil
}

// Signal sends sig to the peer. It fails with an error wrapping
// ErrPeerExited when the peer has already exited.
func (p *Peer) Signal(sig os.Signal) error {
	select {
	case <-p.exited:
		return p.exitedError()
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			<-p.exited
			return p.exitedError()
		}
		return fmt.Errorf("proc: signalling peer %d: %w", p.pid, err)
	}
	return nil
}

// Close ends the peer in order: it closes the control channel (the peer
// exits on EOF), waits up to CloseGrace, then kills it. It always reaps the
// process and stops the Peer's goroutines. It returns nil when the peer
// exited with status 0, otherwise an error wrapping ErrPeerExited that
// describes how it ended; later calls return the same.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.closeStdin()
		killed := false
		t := time.NewTimer(CloseGrace)
		select {
		case <-p.exited:
		case <-t.C:
			killed = true
			_ = p.Kill()
			<-p.exited
		}
		t.Stop()
		p.stopReaders()
		switch {
		case killed:
			p.closeErr = fmt.Errorf("%w: peer %d did not exit within %v of closing its control channel and was killed%s", ErrPeerExited, p.pid, CloseGrace, p.tailSuffix())
		case p.state == nil || !p.state.Success():
			p.closeErr = p.exitedError()
		}
	})
	return p.closeErr
}

// closeStdin closes the control channel towards the peer.
func (p *Peer) closeStdin() {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.sendDone = true
	p.stdin.Close()
}

// abort kills and reaps a peer whose start failed.
func (p *Peer) abort() {
	p.closeOnce.Do(func() {
		p.closeStdin()
		_ = p.Kill()
		<-p.exited
		p.stopReaders()
		p.closeErr = fmt.Errorf("proc: peer %d: %w", p.pid, ErrClosed)
	})
}

// stopReaders ends the line reader and the stderr copier of a reaped peer.
func (p *Peer) stopReaders() {
	close(p.quit)
	p.stdout.Close()
	// The stderr pipe reaches EOF when the process is gone, unless a
	// descendant holds it open: drain what is there, but not forever.
	select {
	case <-p.stderrDone:
	case <-time.After(time.Second):
	}
	p.stderr.Close()
	p.readers.Wait()
}

// Logs returns the tail of the peer's stderr, up to LogTailSize bytes.
func (p *Peer) Logs() string { return p.logs.String() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write appends b, dropping the oldest bytes beyond max. It never fails.
func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(b)
	if len(b) >= t.max {
		t.buf = append(t.buf[:0], b[len(b)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(b) - t.max; over > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[over:])]
	}
	t.buf = append(t.buf, b...)
	return n, nil
}

// String returns the kept bytes.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Tail returns the last n kept bytes, starting at a line boundary where
// there is one.
func (t *tailBuffer) Tail(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return string(b)
}
