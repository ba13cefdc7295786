package rendezvous

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
)

// MaxPath is the longest socket path the kernel accepts: sun_path is 108
// bytes including the terminating NUL.
const MaxPath = 107

// ErrForeignPeer is wrapped by the error returned for a connection whose
// other end runs as another user.
var ErrForeignPeer = errors.New("connection from another user refused")

// Place is a socket path made ready for a listener, by Prepare (a path the
// caller chose) or Private (a fresh private directory). Release removes
// what it made.
type Place struct {
	// Path is the socket path.
	Path string
	// made is the directory Prepare or Private created ("" when none):
	// Private removes it with everything in it, Prepare only when empty.
	made    string
	private bool
	// bound says Bound recorded the socket file at Path, dev and ino
	// its identity.
	bound    bool
	dev, ino uint64
}

// Bound records which file the listener's socket is: call it right after
// bind (and chmod), and turn the listener's own unlink on close off, so
// that Release removes that socket file and no other. A socket path is
// a name: once this socket's file is removed (by hand, or as stale by
// another server's Prepare), another listener may bind the same name, and
// removing by name on close would take that one's socket away.
func (p *Place) Bound() error {
	fi, err := os.Lstat(p.Path)
	if err != nil {
		return fmt.Errorf("the socket just bound: %w", err)
	}
	dev, ino, ok := socketFileID(fi)
	if !ok {
		return fmt.Errorf("the socket just bound at %s is a %v", p.Path, fi.Mode().Type())
	}
	p.bound, p.dev, p.ino = true, dev, ino
	return nil
}

// SocketID returns the device and inode of the socket file at path, which
// tell it from another socket file later at the same path; ok is false
// when there is no socket file there.
func SocketID(path string) (dev, ino uint64, ok bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, 0, false
	}
	return socketFileID(fi)
}

// socketFileID is SocketID of the file fi describes.
func socketFileID(fi fs.FileInfo) (dev, ino uint64, ok bool) {
	st, isStat := fi.Sys().(*syscall.Stat_t)
	if !isStat || fi.Mode().Type() != fs.ModeSocket {
		return 0, 0, false
	}
	return uint64(st.Dev), st.Ino, true
}

// Release removes the socket file Bound recorded, if it is still the one
// at Path, then the directory the Place made, if any (Private's with its
// contents, Prepare's only when it is empty).
func (p Place) Release() error {
	if p.bound {
		if dev, ino, ok := SocketID(p.Path); ok && dev == p.dev && ino == p.ino {
			if err := os.Remove(p.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	switch {
	case p.made == "":
		return nil
	case p.private:
		return os.RemoveAll(p.made)
	}
	if err := os.Remove(p.made); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		return err
	}
	return nil
}

// Private removes the stale private directories of dead processes whose
// names start with prefix in os.TempDir(), then makes a fresh 0700 one,
// named prefix + this process's PID in base 36 + "-" + random, and returns
// the Place of the socket called name inside it. Errors wrap
// transports.ErrUnavailable.
func Private(prefix, name string) (Place, error) {
	dir, err := private.TempDir(prefix)
	if err != nil {
		return Place{}, fmt.Errorf("making a private directory in %s: %w: %w", os.TempDir(), err, transports.ErrUnavailable)
	}
	p := Place{Path: filepath.Join(dir, name), made: dir, private: true}
	if len(p.Path) > MaxPath {
		p.Release()
		return Place{}, fmt.Errorf("socket path %s is %d bytes, longer than the %d sun_path allows; choose a shorter TMPDIR: %w",
			p.Path, len(p.Path), MaxPath, transports.ErrUnavailable)
	}
	return p, nil
}

// Prepare makes path, a socket path the caller chose, ready to listen on:
//
//   - the path fits in sun_path, and is not a host:port (a name with no
//     slash and a numeric port after a colon: "127.0.0.1:5000", ":5000";
//     "./127.0.0.1:5000" is a path);
//   - its directory exists (Prepare makes it, mode 0700, when it is
//     missing but its own parent exists), is a directory and not a
//     symbolic link, is owned by this user and is closed to group and
//     others (no permission bit in 0077);
//   - a socket file already at path that no socket is bound to any more
//     (a listener killed before its Close) is removed; a live one, or a
//     file that is not a socket or belongs to another user, is left alone
//     and refused, and a live listener there never sees a connection
//     from the check (see probe).
//
// Errors wrap transports.ErrBadEndpoint, as each is a reason not to
// listen on this path (another path works), and say what is wrong.
func Prepare(path string) (Place, error) {
	fail := func(format string, args ...any) (Place, error) {
		return Place{}, fmt.Errorf("socket path %s: "+format+": %w", append(append([]any{path}, args...), transports.ErrBadEndpoint)...)
	}
	switch {
	case path == "":
		return fail("empty")
	case looksLikeHostPort(path):
		return fail("looks like a host:port, and this transport listens on a socket path (such as /tmp/ipcb/s; ./%s for a file of that name here)", path)
	case len(path) > MaxPath:
		return fail("%d bytes, longer than the %d sun_path allows", len(path), MaxPath)
	}
	p := Place{Path: path}
	dir := filepath.Dir(path)
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.Mkdir(dir, private.DirMode); err == nil {
			p.made = dir
			st, err = os.Lstat(dir)
		}
	}
	if err != nil {
		return fail("directory: %w", err)
	}
	// Something other than a socket at path is refused in any directory:
	// named first, as it is what is wrong with the path (in /tmp, say, the
	// directory's mode would be refused too, and hide it).
	if pst, err := os.Lstat(path); err == nil && pst.Mode()&fs.ModeSocket == 0 {
		p.Release()
		return fail("%v", errNotSocket(pst))
	}
	if err := checkPrivateDir(dir, st); err != nil {
		p.Release()
		return fail("%v", err)
	}
	if err := removeStaleSocket(path); err != nil {
		p.Release()
		return fail("%w", err)
	}
	return p, nil
}

// looksLikeHostPort reports whether path is more likely a TCP address
// given to a transport of socket paths than a path: no slash, and a
// numeric port after its last colon (a host before it, or none).
func looksLikeHostPort(path string) bool {
	if strings.Contains(path, "/") {
		return false
	}
	_, port, err := net.SplitHostPort(path)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

// checkPrivateDir checks that st, the Lstat of dir, is a directory (not a
// symbolic link) owned by this user with no group or other permission.
func checkPrivateDir(dir string, st fs.FileInfo) error {
	if st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("directory %s is a symbolic link", dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if uid := ownerOf(st); uid != os.Geteuid() {
		return fmt.Errorf("directory %s is owned by uid %d, not this user (uid %d)", dir, uid, os.Geteuid())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("directory %s has mode %04o, open to other users; want 0700", dir, octalMode(st.Mode()))
	}
	return nil
}

// octalMode returns m's permission and special bits as chmod and ls spell
// them in octal: 01777 for /tmp (sticky, rwx for all), not fs.FileMode's
// 0777 and separate ModeSticky.
func octalMode(m fs.FileMode) uint32 {
	o := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		o |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		o |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		o |= 0o1000
	}
	return o
}

// errNotSocket says that st, the Lstat of a socket path, is not a socket.
func errNotSocket(st fs.FileInfo) error {
	return fmt.Errorf("exists and is not a socket (mode %v)", st.Mode())
}

// ownerOf returns the uid that owns the file st describes, -1 when unknown.
func ownerOf(st fs.FileInfo) int { return private.Owner(st.Sys()) }

// removeStaleSocket removes the socket file at path when no socket is
// bound to it any more. A missing file is fine; anything else at path is
// an error.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSocket == 0 {
		return errNotSocket(st)
	}
	if uid := ownerOf(st); uid != os.Geteuid() {
		return fmt.Errorf("existing socket is owned by uid %d, not this user (uid %d)", uid, os.Geteuid())
	}
	switch err := probe(path); {
	case errors.Is(err, syscall.ECONNREFUSED):
		// Nobody listens: a listener died before its Close.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the stale socket: %w", err)
		}
		return nil
	case errors.Is(err, syscall.EPROTOTYPE):
		// A stream or seqpacket socket: a listener of this transport,
		// of another, or another program's.
		return fmt.Errorf("a live listener is bound there (this transport's, another one's or another program's): %w", syscall.EADDRINUSE)
	case err == nil:
		return fmt.Errorf("a live datagram socket of another program is bound there: %w", syscall.EADDRINUSE)
	default:
		return fmt.Errorf("in use (%v): %w", err, syscall.EADDRINUSE)
	}
}

// probe finds out whether a socket is bound at path without connecting to
// it: it connects a datagram socket there. The kernel looks up the socket
// bound to the file first, and fails with ECONNREFUSED when there is none
// (a listener died before its Close); a stream or seqpacket socket is then
// refused with EPROTOTYPE and a datagram one only recorded as the probe's
// destination. A listener is never handed a connection (with a stream or
// seqpacket probe, a live listener would accept one that closes at once:
// a phantom client of the program that listens there).
func probe(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: path})
}

// CheckPeer refuses a connection whose other end runs as another user than
// this process (SO_PEERCRED): the error wraps ErrForeignPeer and names the
// uid and pid. A 0700 directory already keeps other users from reaching a
// socket; this is the second wall, for a socket made reachable on purpose
// or by a mistake.
func CheckPeer(c *net.UnixConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("reading the peer's credentials: %w", cerr)
	}
	if want := uint32(os.Geteuid()); cred.Uid != want {
		return fmt.Errorf("%w: peer pid %d runs as uid %d, this process as uid %d",
			ErrForeignPeer, cred.Pid, cred.Uid, want)
	}
	return nil
}
