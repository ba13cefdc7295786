package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
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

// namesDir returns the error of a path that ends in a slash: it names a
// directory, never a file to write.
func namesDir(path string) error {
	if strings.HasSuffix(path, "/") {
		return fmt.Errorf("%s: the name ends in '/', so it names a directory (%w)", path, ErrNotRegular)
	}
	return nil
}

// PartialSuffix is what the name of an output being written ends with
// before its number: the file at path is written as path+PartialSuffix+N
// in the same directory and only takes path's name when it is complete.
// When that name would be too long for the file system, the end of path's
// last element is cut off to make room for PartialSuffix+N, so that the
// file's name is no longer than path's own.
const PartialSuffix = ".partial-"

// partialDigits is the most digits the N of PartialSuffix+N has.
const partialDigits = len("4294967295")

// Output is an output file being written, made by CreateOutput. Its
// contents take the name asked for only through Commit (or Keep); until
// then whatever is at that name stays as it was, and Abort removes what
// was written. Every Output must end with Commit, Keep or Abort; Abort
// after either of the others does nothing, so it can be deferred.
type Output struct {
	f        *os.File
	path     string       // the name asked for
	tmp      string       // the name written to until Commit; "" when f is path itself (a device or FIFO)
	replace  bool         // Commit may replace a file at path
	numbered bool         // the output takes the first free name of numberedName(base, n)
	base     string       // the name asked for, of a numbered output
	replaces bool         // path was a regular file when the output was created
	dirs     []string     // the directories CreateOutput made for it, outermost first
	written  atomic.Int64 // bytes written
	done     bool
}

// CreateOutput starts the new output file path, with OutputFileMode, and
// makes its missing parent directories with OutputDirMode (removed again,
// while empty, when it fails or the output is aborted); every output
// file ipcbench writes is made here. It writes to a new file beside path,
// created with O_CREAT|O_EXCL|O_NOFOLLOW, which Commit renames to path:
// nothing at path changes before the output is complete, a name is never
// followed as a symbolic link, and whatever goes wrong before Commit (an
// error, an interrupt) leaves an existing file as it was. A name that
// exists is an error wrapping fs.ErrExist (a predictable default name in
// a shared directory, a symlink to a file of root's), checked here and
// again by Commit, which never replaces a file without replace. With
// replace, Commit puts the new file in place of an existing regular file
// (a hard link's other names keep the old contents), and an existing
// device or FIFO (/dev/null) is written to as it is; a symbolic link or a
// directory is still refused, with an error that also wraps ErrNotRegular.
func CreateOutput(path string, replace bool) (*Output, error) {
	return createOutput(path, replace, false)
}

// MaxNumberedNames is how many names a numbered output (CreateNumberedOutput)
// tries: path, then path with -2 to -MaxNumberedNames before its extension.
const MaxNumberedNames = 1000

// CreateNumberedOutput starts a new output file whose name is made up, not
// chosen by the user (ipcbench run's default ipcbench-TIME.jsonl), as
// CreateOutput(path, false) does, except that a name that is taken is no
// error: the output takes the first free one of path, then path with -2,
// -3, ... before its extension (ipcbench-TIME-2.jsonl), up to
// MaxNumberedNames. It takes it only when complete (Commit) or cut short
// (Keep), with the same rename that never replaces a file, moving on to
// the next number when a name was taken meanwhile: two outputs started at
// once, with one path, get two names, and neither replaces the other or
// anything else (a file, a symbolic link, a directory) that was there.
// Name returns the name taken once it is taken.
func CreateNumberedOutput(path string) (*Output, error) {
	return createOutput(path, false, true)
}

// numberedName returns path with -n before its extension, or path itself
// for n = 1.
func numberedName(path string, n int) string {
	if n == 1 {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + strconv.Itoa(n) + ext
}

// createOutput is CreateOutput, and with numbered CreateNumberedOutput.
func createOutput(path string, replace, numbered bool) (_ *Output, err error) {
	if err := namesDir(path); err != nil {
		return nil, err // before a directory is made for it (CheckOutput checks the same)
	}
	var dirs []string
	dir := filepath.Dir(path)
	if dir != "." {
		if dirs, err = MakeOutputDirs(dir); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			RemoveOutputDirs(dirs)
		}
	}()
	o := &Output{path: path, replace: replace, dirs: dirs}
	var st fs.FileInfo
	if numbered {
		// What is at path now matters not: the name is chosen when the
		// output takes one.
		o.numbered, o.base = true, path
	} else {
		st, err = outputTarget(path, replace)
	}
	switch {
	case err != nil:
		return nil, err
	case st == nil:
	case st.Mode().IsRegular():
		o.replaces = true
	default:
		// A device or FIFO, named by the user and meant to be written to.
		return openSpecial(o)
	}
	short := false
	for range 100 {
		o.tmp = partialName(path, strconv.FormatUint(uint64(rand.Uint32()), 10), short)
		o.f, err = createExcl(o.tmp)
		if errors.Is(err, syscall.ENAMETOOLONG) && !short {
			short = true // path itself is not: outputTarget looked it up
			continue
		}
		if errors.Is(err, fs.ErrNotExist) && dir != "." {
			// Another output's Abort removed the directory it had made
			// for itself, which is this one's too: make it again.
			more, derr := MakeOutputDirs(dir)
			if derr != nil {
				return nil, derr
			}
			if len(more) == 0 {
				// The directory is there and still refuses a new file:
				// its removal is under way (the kernel has marked it
				// dead, and will unlink its name in a moment, later if
				// the remover was preempted). Give it that moment.
				time.Sleep(time.Millisecond)
			}
			dirs = append(dirs, more...)
			o.dirs = dirs
			continue
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// What cannot be made beside path is what path cannot be.
		return nil, &fs.PathError{Op: pe.Op, Path: path, Err: pe.Err}
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// partialName returns the name an output to path is written to until it
// takes path's name: path+PartialSuffix+n, or with short (that name is too
// long) path with the end of its last element cut off, at a rune's start,
// so that the name is no longer than path.
func partialName(path, n string, short bool) string {
	if !short {
		return path + PartialSuffix + n
	}
	dir, base := filepath.Split(path)
	cut := max(len(base)-len(PartialSuffix)-partialDigits, 0)
	for cut > 0 && !utf8.RuneStart(base[cut]) {
		cut--
	}
	return dir + base[:cut] + PartialSuffix + n
}

// CheckOutput returns the error CreateOutput(path, replace) would give
// for what is at path now, without creating anything: a command checks
// its output this way before work that must not start for a name it then
// refuses.
func CheckOutput(path string, replace bool) error {
	if err := namesDir(path); err != nil {
		return err
	}
	_, err := outputTarget(path, replace)
	return err
}

// outputTarget looks at what is at path, an output's name: nil when
// nothing is, what is there when replace may replace it (a regular file,
// or a device or FIFO to write to in place), and otherwise the error
// CreateOutput gives.
func outputTarget(path string, replace bool) (fs.FileInfo, error) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	case st.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s: %w (a symbolic link, %w)", path, fs.ErrExist, ErrNotRegular)
	case st.IsDir():
		return nil, fmt.Errorf("%s: %w (a directory, %w)", path, fs.ErrExist, ErrNotRegular)
	case st.Mode()&fs.ModeSocket != 0:
		return nil, fmt.Errorf("%s: %w (a socket, %w)", path, fs.ErrExist, ErrNotRegular)
	case !replace && !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: %w (%w)", path, fs.ErrExist, ErrSpecial)
	case !replace:
		return nil, fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	return st, nil
}

// ErrSpecial is wrapped, with fs.ErrExist, by the error for an output
// name where a device or FIFO is: replace (-force) writes to it in place
// instead of replacing it.
var ErrSpecial = errors.New("a device or FIFO, which -force writes to in place")

// openSpecial opens o.path, a device or FIFO, to write to it in place.
func openSpecial(o *Output) (*Output, error) {
	f, err := os.OpenFile(o.path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if fst, err := f.Stat(); err != nil || fst.Mode().IsRegular() || fst.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s changed while being opened: %w", o.path, fs.ErrExist)
	}
	o.f = f
	return o, nil
}

// createExcl makes path exclusively, never through a symbolic link.
func createExcl(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, OutputFileMode)
}

// Write writes to the output.
func (o *Output) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	o.written.Add(int64(n))
	return n, err
}

// Name returns the name the output was asked for (not the name it is
// written to until Commit); for a numbered output (CreateNumberedOutput),
// once Commit or Keep gave it a name, that name.
func (o *Output) Name() string { return o.path }

// Commit ends a complete output: it flushes it to disk and gives it its
// name, in place of the file there with replace and only if there is none
// without (an error wrapping fs.ErrExist). When that fails, the name keeps
// what it had, and the output stays where it was written, which Where
// returns and the error names: measured records are never thrown away.
func (o *Output) Commit() error {
	if o.done {
		return fmt.Errorf("%s: output already ended", o.path)
	}
	o.done = true
	if o.tmp == "" {
		return o.f.Close()
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = o.rename(o.replace)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w (what was written is in %s)", o.path, err, o.tmp)
	}
	o.tmp = ""
	return nil
}

// Where returns the name the output's contents are under: the name asked
// for once Commit (or Keep) gave it to them, and before that, or when
// Commit failed, the name they are written to.
func (o *Output) Where() string {
	if o.tmp != "" {
		return o.tmp
	}
	return o.path
}

// Keep ends an output cut short whose contents are still worth keeping
// (the records measured before an interrupt or a failure). A name that
// was free when the output was created gets them, as Commit would give
// them (unless a file appeared there since); an existing file that
// replace would have replaced stays as it was, and they stay under the
// name they were written to. Keep returns the name they are under: ""
// when nothing was written, which is removed as Abort removes it, and
// after Commit or Abort, when it does nothing.
func (o *Output) Keep() (string, error) {
	if o.done {
		return "", nil
	}
	if o.written.Load() == 0 && o.tmp != "" {
		o.Abort()
		return "", nil
	}
	o.done = true
	err := o.f.Close()
	if o.tmp == "" {
		return o.path, err
	}
	if err != nil {
		return o.tmp, fmt.Errorf("writing %s: %w", o.tmp, err)
	}
	if o.replaces {
		return o.tmp, nil
	}
	if err := o.rename(false); err != nil {
		return o.tmp, nil // the name was taken meanwhile: they stay where they are
	}
	o.tmp = ""
	return o.path, nil
}

// Abort ends an output that is not to be kept: what was written is
// removed and the name keeps what it had. After Commit or Keep it does
// nothing.
func (o *Output) Abort() {
	if o.done {
		return
	}
	o.done = true
	o.f.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
		RemoveOutputDirs(o.dirs)
	}
}

// MakeOutputDirs makes dir and its missing parents with OutputDirMode,
// one at a time from the outermost, and returns the ones it made itself,
// outermost first (one another process makes meanwhile is not counted), for
// RemoveOutputDirs. CreateOutput makes an output's directory so; a command
// that writes several outputs into one directory makes it first.
func MakeOutputDirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break // there (or not ours to judge: Mkdir reports it)
		}
		missing = append(missing, d)
		p := filepath.Dir(d)
		if p == d {
			break
		}
		d = p
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], OutputDirMode)
		switch {
		case err == nil:
			made = append(made, missing[i])
		case errors.Is(err, fs.ErrExist):
			if st, serr := os.Stat(missing[i]); serr != nil || !st.IsDir() {
				RemoveOutputDirs(made)
				return nil, err
			}
		default:
			RemoveOutputDirs(made)
			return nil, err
		}
	}
	return made, nil
}

// RemoveOutputDirs removes the directories MakeOutputDirs made, innermost
// first, each only while it is empty: an output that ends without a file
// leaves no directory behind that was made for it.
func RemoveOutputDirs(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		if os.Remove(dirs[i]) != nil {
			return
		}
	}
}

// rename gives o.tmp the name o.path, replacing a file there only with
// replace. Without replace it is renameat2's RENAME_NOREPLACE, or, on a
// file system without it, a hard link and the old name's removal. A
// numbered output takes the first of its names that is free, and o.path
// becomes that name.
func (o *Output) rename(replace bool) error {
	if o.numbered {
		for n := 1; n <= MaxNumberedNames; n++ {
			name := numberedName(o.base, n)
			err := renameNoReplace(o.tmp, name)
			if err == nil {
				o.path = name
				return nil
			}
			if !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		return fmt.Errorf("%s and %d more names with -N before the extension: %w", o.base, MaxNumberedNames-1, fs.ErrExist)
	}
	if replace {
		return os.Rename(o.tmp, o.path)
	}
	return renameNoReplace(o.tmp, o.path)
}

// renameNoReplace renames old to new unless something is at new (an error
// wrapping fs.ErrExist): renameat2's RENAME_NOREPLACE, or, on a file
// system without it, a hard link and the old name's removal.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		if err != nil {
			return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
		}
		return nil
	}
	if err := os.Link(old, new); err != nil {
		return err
	}
	return os.Remove(old)
}
