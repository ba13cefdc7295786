// Package private is the one rule for what ipcbench creates on the file
// system: every file is 0600 and every directory 0700, owned by the user
// who ran the tool, whatever the umask. That covers the outputs a user asks
// for (run's raw records, floor's table and measurements, plot's SVGs and
// the directories made for them) as well as what the transports make (a
// unix socket and its directory, a shared-memory mapping): raw records name
// the machine and the command, and ipcbench often runs as root in shared
// directories. Share an output with chmod.
//
// New output files are created, never opened through a symbolic link nor
// written over: Create opens with O_CREAT|O_EXCL|O_NOFOLLOW, so a name
// planted in advance (a predictable default name in a shared directory,
// a symlink to a file of root's) is an error wrapping fs.ErrExist, and only
// an explicit request (Replace) removes an existing regular file first.
package private

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The modes of everything ipcbench creates.
const (
	FileMode fs.FileMode = 0o600 // files, sockets and shared-memory mappings
	DirMode  fs.FileMode = 0o700 // directories
)

// How Create treats a path that already exists.
type Existing int

const (
	// Refuse fails with an error wrapping fs.ErrExist.
	Refuse Existing = iota
	// Replace removes an existing regular file (a symbolic link or a
	// directory is still refused) and creates a new one in its place; an
	// existing device or FIFO (/dev/null) is written to as it is.
	Replace
)

// ErrNotRegular is wrapped by the error Create returns, even with Replace,
// for a path that is a symbolic link or a directory.
var ErrNotRegular = errors.New("not a regular file")

// MkdirAll makes dir and its missing parents with DirMode; directories that
// exist already are left as they are.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("creating directory: %w", err)
	}
	return nil
}

// Create makes the new file path for writing, with FileMode, and its
// missing parent directories with DirMode. It never follows a symbolic link
// at path and never writes into an existing file: an existing path is an
// error wrapping fs.ErrExist unless ex is Replace (see Replace).
func Create(path string, ex Existing) (*os.File, error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := MkdirAll(dir); err != nil {
			return nil, err
		}
	}
	f, err := create(path)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return f, err
	}
	st, lerr := os.Lstat(path)
	switch {
	case lerr != nil:
		return nil, err // gone again: report the first error
	case st.Mode()&fs.ModeSymlink != 0 || st.IsDir():
		return nil, fmt.Errorf("%s: %w (%s, %w)", path, fs.ErrExist, kind(st.Mode()), ErrNotRegular)
	case ex != Replace:
		return nil, fmt.Errorf("%s: %w", path, fs.ErrExist)
	case st.Mode().IsRegular():
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("replacing %s: %w", path, err)
		}
		return create(path)
	}
	// A device or FIFO, named by the user and meant to be written to.
	f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if fst, err := f.Stat(); err != nil || fst.Mode().IsRegular() || fst.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s changed while being opened: %w", path, fs.ErrExist)
	}
	return f, nil
}

// create makes path exclusively, then sets FileMode exactly (the umask
// could only narrow it, but the rule is one mode).
func create(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, FileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

func kind(m fs.FileMode) string {
	if m&fs.ModeSymlink != 0 {
		return "a symbolic link"
	}
	return "a directory"
}
