package transports

import (
	"encoding/json"
	"errors"
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
// The caller owns the files until it dials: Dial takes the dialed
// channel's files and closes them once the connection holds its own
// descriptors (see Transport.Dial), so that the connection's Close is the
// end the other side sees without the caller touching ep.Files; files of
// channels it does not dial stay the caller's to close (closing all of
// ep.Files after dialing is harmless). It unsets EndpointEnv, so a second
// call, like a call in a process that was handed no endpoint, fails; every
// failure wraps ErrBadEndpoint: the variable is missing or malformed (not
// the JSON object AttachTo writes, an endpoint that names no transport, a
// negative count of files), or a descriptor it names was not inherited
// (not open in this process, or close-on-exec and so opened by this
// process itself: the endpoint counts more files than the parent handed
// down).
func InheritedEndpoint() (Endpoint, error) {
	v, ok := os.LookupEnv(EndpointEnv)
	if !ok {
		return Endpoint{}, fmt.Errorf("%w: no endpoint was handed to this process (%s is not set)", ErrBadEndpoint, EndpointEnv)
	}
	os.Unsetenv(EndpointEnv)
	a, err := parseAttached(v)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%w: %s: %w", ErrBadEndpoint, EndpointEnv, err)
	}
	ep := a.Endpoint
	ep.Files = nil
	for i := 0; i < ep.NumFiles; i++ {
		fd := a.FirstFD + i
		if err := inherited(fd); err != nil {
			for _, f := range ep.Files {
				f.Close()
			}
			return Endpoint{}, fmt.Errorf("%w: %s endpoint file %d of %d (descriptor %d) was not inherited: %w", ErrBadEndpoint, ep.Transport, i, ep.NumFiles, fd, err)
		}
		ep.Files = append(ep.Files, os.NewFile(uintptr(fd), fmt.Sprintf("%s-endpoint-%d", ep.Transport, i)))
	}
	return ep, nil
}

// parseAttached decodes v, the value of EndpointEnv, and checks that it is
// what AttachTo writes: an object with an "endpoint" that names its
// transport, and the descriptor of its first file when it has any.
func parseAttached(v string) (attached, error) {
	const format = `AttachTo writes {"endpoint": {...}, "first_fd": N}`
	var top any
	if err := json.Unmarshal([]byte(v), &top); err != nil {
		return attached{}, err
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return attached{}, fmt.Errorf("not a JSON object (%s)", format)
	}
	if _, ok := obj["endpoint"]; !ok {
		return attached{}, fmt.Errorf(`no "endpoint" in it (%s)`, format)
	}
	var a attached
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return attached{}, err
	}
	ep := a.Endpoint
	switch {
	case ep.Transport == "":
		return attached{}, fmt.Errorf("the endpoint names no transport")
	case ep.NumFiles < 0:
		return attached{}, fmt.Errorf("%s endpoint has %d files", ep.Transport, ep.NumFiles)
	case ep.NumFiles > 0 && a.FirstFD < firstExtraFD:
		return attached{}, fmt.Errorf("%s endpoint has %d files from descriptor %d, want %d or more", ep.Transport, ep.NumFiles, a.FirstFD, firstExtraFD)
	}
	return a, nil
}

// inherited returns nil when descriptor fd is open and was inherited:
// exec closes every descriptor marked close-on-exec, and this process's own
// (the Go runtime's, every file Go opens) are, so one that is marked was
// not handed down.
func inherited(fd int) error {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return err
	}
	if flags&unix.FD_CLOEXEC != 0 {
		return errors.New("it is close-on-exec, opened by this process")
	}
	return nil
}
