package transports

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// EndpointEnv is the environment variable through which AttachTo hands an
// Endpoint to a child process and InheritedEndpoint reads it back: the
// Endpoint as JSON, with the descriptor number of its first file.
const EndpointEnv = "IPCBENCH_ENDPOINT"

// firstExtraFD is the descriptor of exec.Cmd.ExtraFiles[0] in the child.
const firstExtraFD = 3

// attached is the value of EndpointEnv.
type attached struct {
	Endpoint Endpoint `json:"endpoint"`
	// FirstFD is the child's descriptor of Endpoint.Files[0]; the others
	// follow it in order.
	FirstFD int `json:"first_fd,omitempty"`
}

// AttachTo hands ep to the child process that cmd will start: it appends
// ep.Files to cmd.ExtraFiles and sets EndpointEnv in cmd.Env (starting from
// os.Environ() when cmd.Env is nil) to ep as JSON, with the descriptor its
// first file will have in the child. The child calls InheritedEndpoint.
// Call it before cmd.Start, at most once per command. The files stay owned
// by the caller, which may close them once the child has started. It fails
// with an error wrapping ErrBadEndpoint when ep.NumFiles is set and differs
// from len(ep.Files), or when a file is nil.
func (ep Endpoint) AttachTo(cmd *exec.Cmd) error {
	if ep.NumFiles != 0 && ep.NumFiles != len(ep.Files) {
		return fmt.Errorf("%w: %s endpoint says %d files but has %d", ErrBadEndpoint, ep.Transport, ep.NumFiles, len(ep.Files))
	}
	for i, f := range ep.Files {
		if f == nil {
			return fmt.Errorf("%w: %s endpoint file %d is nil", ErrBadEndpoint, ep.Transport, i)
		}
	}
	ep.NumFiles = len(ep.Files)
	a := attached{Endpoint: ep}
	if len(ep.Files) > 0 {
		a.FirstFD = firstExtraFD + len(cmd.ExtraFiles)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("%w: encoding the %s endpoint: %w", ErrBadEndpoint, ep.Transport, err)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, EndpointEnv+"="+string(b))
	cmd.ExtraFiles = append(cmd.ExtraFiles, ep.Files...)
	return nil
}

// InheritedEndpoint returns the Endpoint that the parent process handed to
// this one with AttachTo, its Files made from the inherited descriptors.
// The caller owns the files (Dial duplicates what it keeps, so they may be
// closed once dialed). It unsets EndpointEnv, so a second call, like a call
// in a process that was handed no endpoint, fails; every failure wraps
// ErrBadEndpoint: the variable is missing or malformed, or a descriptor it
// names is not open in this process.
func InheritedEndpoint() (Endpoint, error) {
	v, ok := os.LookupEnv(EndpointEnv)
	if !ok {
		return Endpoint{}, fmt.Errorf("%w: no endpoint was handed to this process (%s is not set)", ErrBadEndpoint, EndpointEnv)
	}
	os.Unsetenv(EndpointEnv)
	var a attached
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return Endpoint{}, fmt.Errorf("%w: %s: %w", ErrBadEndpoint, EndpointEnv, err)
	}
	ep := a.Endpoint
	if ep.NumFiles < 0 || ep.NumFiles > 0 && a.FirstFD < firstExtraFD {
		return Endpoint{}, fmt.Errorf("%w: %s: %d files from descriptor %d", ErrBadEndpoint, EndpointEnv, ep.NumFiles, a.FirstFD)
	}
	ep.Files = nil
	for i := 0; i < ep.NumFiles; i++ {
		fd := a.FirstFD + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			for _, f := range ep.Files {
				f.Close()
			}
			return Endpoint{}, fmt.Errorf("%w: %s endpoint file %d (descriptor %d) was not inherited: %w", ErrBadEndpoint, ep.Transport, i, fd, err)
		}
		ep.Files = append(ep.Files, os.NewFile(uintptr(fd), fmt.Sprintf("%s-endpoint-%d", ep.Transport, i)))
	}
	return ep, nil
}
