package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Modes of what ipcbench writes because the user asked for it: raw-record
// files, plots, the floor table and measurements, and the directories made
// to hold them. They are readable by everyone, as a shell redirection or
// any build tool would leave them (the umask still applies), because
// results are meant to be shared and committed. The private state a
// transport creates (socket directories, shared-memory files) is 0700/0600
// (internal/private) and never uses these.
const (
	OutputFileMode fs.FileMode = 0o644
	OutputDirMode  fs.FileMode = 0o755
)

// ErrNotRegular is wrapped by the error CreateOutput returns, even with
// replace, for a path that is a symbolic link or a directory.
var ErrNotRegular = errors.New("not a regular file")

// CreateOutput creates the new output file path for writing, with
// OutputFileMode, and its missing parent directories with OutputDirMode;
// every output file ipcbench writes is made here. It opens with
// O_CREAT|O_EXCL|O_NOFOLLOW, so it never follows a symbolic link at path
// and never writes into a file that exists: a name planted in advance (a
// predictable default name in a shared directory, a symlink to a file of
// root's) is an error wrapping fs.ErrExist. With replace, an existing
// regular file is removed first and a new one created in its place (a hard
// link's other names keep the old contents), and an existing device or FIFO
// (/dev/null) is written to as it is; a symbolic link or a directory is
// still refused, with an error that also wraps ErrNotRegular.
func CreateOutput(path string, replace bool) (*os.File, error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, OutputDirMode); err != nil {
			return nil, err
		}
	}
	f, err := createExcl(path)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return f, err
	}
	st, lerr := os.Lstat(path)
	switch {
	case lerr != nil:
		return nil, err // gone again: report the first error
	case st.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s: %w (a symbolic link, %w)", path, fs.ErrExist, ErrNotRegular)
	case st.IsDir():
		return nil, fmt.Errorf("%s: %w (a directory, %w)", path, fs.ErrExist, ErrNotRegular)
	case !replace:
		return nil, fmt.Errorf("%s: %w", path, fs.ErrExist)
	case st.Mode().IsRegular():
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("replacing %s: %w", path, err)
		}
		return createExcl(path)
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

// createExcl makes path exclusively, never through a symbolic link.
func createExcl(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, OutputFileMode)
}
