package rendezvous

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MaxFiles is the largest number of descriptors one message carries.
const MaxFiles = 16

// OOBSize is the control-message buffer a receiver needs for MaxFiles
// descriptors.
var OOBSize = unix.CmsgSpace(4 * MaxFiles)

// WithRights calls send with an SCM_RIGHTS control message carrying the
// descriptors of files (nil when there are none), while holding a
// reference on each file (through SyscallConn), so that a concurrent Close
// of a file waits until send has returned instead of closing a descriptor
// that sendmsg is about to pass (or that the kernel has already reused).
// Once sendmsg has returned, the message holds its own references: the
// caller may close files at once.
func WithRights(files []*os.File, send func(oob []byte) error) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("%d files, at most %d per message", len(files), MaxFiles)
	}
	return withFds(files, make([]int, 0, len(files)), func(fds []int) error {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		return send(oob)
	})
}

func withFds(files []*os.File, fds []int, fn func([]int) error) error {
	if len(files) == 0 {
		return fn(fds)
	}
	rc, err := files[0].SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: %w", files[0].Name(), err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = withFds(files[1:], append(fds, int(fd)), fn)
	}); err != nil {
		return fmt.Errorf("%s: %w", files[0].Name(), err)
	}
	return ferr
}

// Files returns the descriptors an SCM_RIGHTS control message oob (as
// received, possibly empty) carries, as files named name. The descriptors
// are the caller's; on error none is left open.
func Files(oob []byte, name string) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue // not SCM_RIGHTS
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), name))
		}
	}
	return files, nil
}

// CloseFiles closes every file of files.
func CloseFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
