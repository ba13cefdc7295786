package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	mmap "github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
)

// Values of the "mapping" option.
const (
	mappingMemfd = "memfd"
	mappingFile  = "file"
)

const (
	// memfdName is the name memfd_create gives the mapping (it shows in
	// /proc/PID/fd as "/memfd:ipcbench-shm").
	memfdName = "ipcbench-shm"
	// defaultShmDir is where the file mapping creates its file.
	defaultShmDir = "/dev/shm"
	// createTries bounds the attempts at a fresh random file name.
	createTries = 16
)

// createMapping makes the backing file of one channel, size bytes long, and
// returns its descriptor (close-on-exec) and the header flag saying what it
// is. mode is "" (memfd, falling back to a file in /dev/shm),
// mappingMemfd or mappingFile. A listener by address asks for
// mappingMemfd whatever its options (see checkByAddress): only a sealed
// memfd is safe to hand to any dialer.
func createMapping(mode string, size int) (fd int, flags uint32, err error) {
	var memfdErr error
	if mode != mappingFile {
		fd, memfdErr = createMemfd(size)
		if memfdErr == nil {
			return fd, flagMemfd, nil
		}
		if mode == mappingMemfd {
			return -1, 0, memfdErr
		}
	}
	fd, err = createFile(defaultShmDir, size)
	if err != nil {
		if memfdErr != nil {
			err = fmt.Errorf("%w (after %w)", err, memfdErr)
		}
		return -1, 0, err
	}
	return fd, flagFile, nil
}

// createMemfd makes a sealed memfd of size bytes, mode 0600 (internal/private): its size can no longer
// change, so neither end can shrink the file under the other's mapping
// (which would turn accesses into SIGBUS).
func createMemfd(size int) (int, error) {
	fd, err := unix.MemfdCreate(memfdName, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, unavailable("memfd_create", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("sizing memfd to %d bytes: %w", size, err)
	}
	// memfd_create makes the file 0777: nobody else can open it by name,
	// but /proc/PID/fd shows it, and the rule is one mode.
	if err := unix.Fchmod(fd, uint32(private.FileMode)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("chmod memfd: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("sealing memfd: %w", err)
	}
	return fd, nil
}

// createFile makes a 0600 file of size bytes in dir with a fresh random name,
// O_EXCL|O_NOFOLLOW so that it can be neither a file nor a symbolic link
// someone else prepared, and unlinks it at once: the descriptor is all
// either end ever needs, and a crash cannot leave the file behind.
func createFile(dir string, size int) (int, error) {
	if dir == "" {
		dir = defaultShmDir
	}
	var buf [8]byte
	for range createTries {
		if _, err := rand.Read(buf[:]); err != nil {
			return -1, fmt.Errorf("random file name: %w", err)
		}
		path := filepath.Join(dir, "ipcbench-shm-"+hex.EncodeToString(buf[:]))
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(private.FileMode))
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return -1, unavailable("creating "+path, err)
		}
		if err := unix.Unlink(path); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("unlinking %s: %w", path, err)
		}
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("sizing %s to %d bytes: %w", path, size, err)
		}
		return fd, nil
	}
	return -1, fmt.Errorf("no free file name in %s after %d tries", dir, createTries)
}

// unavailable wraps err from op so that it also matches
// transports.ErrUnavailable: the machine cannot give us shared memory.
func unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w (%w)", op, err, transports.ErrUnavailable)
}

// mapShared maps the first size bytes of f read-write and shared (mmap-go:
// MAP_SHARED, PROT_READ|PROT_WRITE). The mapping does not hold f open
// beyond the kernel's own reference: f stays the caller's to close.
func mapShared(f *os.File, size int) ([]byte, error) {
	mem, err := mmap.MapRegion(f, size, mmap.RDWR, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes: %w", size, err)
	}
	return mem, nil
}

// prefaultChunk is how much of a ring prefault faults in at a time.
const prefaultChunk = 256 << 10

// prefault faults in, before this side first touches bytes [i, i+n) of
// its ring, the pages from where it last stopped up to the next
// prefaultChunk boundary past them, with one madvise(2)
// (MADV_POPULATE_WRITE for the writer, MADV_POPULATE_READ for the
// reader) instead of a page fault per page: a ring's first lap otherwise
// takes one fault per 4 KiB on each side, which costs several
// microseconds each where a fault goes through a hypervisor, and with
// many connections the first laps of all their rings last seconds. Pages
// are faulted in only as the ring first reaches them, so a connection
// that moves little (a connect and one message) faults in one chunk, not
// its whole ring. Wrapped indices are within what was faulted in before.
// Where the kernel lacks these advices (before Linux 5.14), or refuses
// them, the pages fault in on first touch, as without this.
func (r *ringView) prefault(i, n uint64) {
	size := uint64(len(r.data))
	if r.faulted >= size || i+n <= r.faulted {
		return
	}
	to := min((min(i+n, size)+prefaultChunk-1)&^(prefaultChunk-1), size)
	advice := unix.MADV_POPULATE_READ
	if r.write {
		advice = unix.MADV_POPULATE_WRITE
	}
	if err := unix.Madvise(r.data[r.faulted:to], advice); err != nil {
		r.faulted = size // not supported here: fault on touch
		return
	}
	r.faulted = to
}

// unmap removes a mapping made by mapShared.
func unmap(mem []byte) error {
	m := mmap.MMap(mem)
	if err := m.Unmap(); err != nil {
		return fmt.Errorf("unmapping: %w", err)
	}
	return nil
}

// attachMapping maps the channel file f as the dialing side: it checks the
// file's seals and size against what a header can describe, maps it whole,
// validates the header, and checks that a memfd is sealed against
// shrinking (so that no access to the mapping can fault). The descriptor
// itself is not kept (the mapping holds the file), so f stays the
// caller's.
//
// With sealed set (a channel fetched from a rendezvous, which any process
// of this user can pose as) the file must be a memfd sealed against
// shrinking, whatever its header says, and anything else is refused with
// an error wrapping transports.ErrBadEndpoint before it is mapped: a file
// that its sender could truncate would turn this process's next access to
// the mapping into SIGBUS. Every honest listener by address sends such a
// memfd (see checkByAddress). Without sealed (channels inherited from the
// parent that made them) a file is accepted, as mapping=file makes one.
//
// The seals are read before the size: seals cannot be removed, so once
// F_SEAL_SHRINK is seen the file can never again be shorter than a size
// read afterwards, neither before the mapping is made nor after. (Read
// the other way round, a sender could shrink the file and seal it in
// between, and the mapping would reach past its end.) F_SEAL_GROW is not
// needed for this side's safety: a file that grows leaves every page of
// the mapping backed, and a size other than the header's is refused as
// corrupt.
func attachMapping(f *os.File, kind Kind, sealed bool) (mem []byte, ringCap int, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, 0, fmt.Errorf("mapping file: %w: %w", err, transports.ErrBadEndpoint)
	}
	var ctlErr error
	seals := -1 // F_GET_SEALS's answer, -1 when the file cannot be sealed
	var size int64
	err = rc.Control(func(fd uintptr) {
		if v, err := unix.FcntlInt(fd, unix.F_GET_SEALS, 0); err == nil {
			seals = v
		}
		var st unix.Stat_t
		if ctlErr = unix.Fstat(int(fd), &st); ctlErr != nil {
			ctlErr = fmt.Errorf("fstat of mapping file: %w: %w", ctlErr, transports.ErrBadEndpoint)
			return
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			ctlErr = fmt.Errorf("mapping file is not a regular file (mode %#o): %w", st.Mode, transports.ErrBadEndpoint)
			return
		}
		if sealed && (seals < 0 || seals&unix.F_SEAL_SHRINK == 0) {
			what := "a file that cannot be sealed"
			if seals >= 0 {
				what = fmt.Sprintf("seals %#x", seals)
			}
			ctlErr = fmt.Errorf("channel from the rendezvous: its mapping is not a memfd sealed against shrinking (%s), which every listener by address sends: its sender could shrink it under this process's mapping and crash this process (SIGBUS): %w", what, transports.ErrBadEndpoint)
			return
		}
		if st.Size < headerSize || st.Size > maxMapSize {
			ctlErr = corruptf("mapping file has %d bytes, want %d to %d", st.Size, headerSize, int64(maxMapSize))
			return
		}
		size = st.Size
	})
	if err != nil { // f is closed, as a Dial closes its channel's files
		return nil, 0, fmt.Errorf("mapping file (closed: a channel already dialed?): %w: %w", err, transports.ErrBadEndpoint)
	}
	if ctlErr != nil {
		return nil, 0, ctlErr
	}
	if mem, err = mapShared(f, int(size)); err != nil {
		return nil, 0, err
	}
	ringCap, err = validateHeader(mem, kind)
	if err == nil && headerOf(mem).flags.Load() == flagMemfd && (seals < 0 || seals&unix.F_SEAL_SHRINK == 0) {
		// Every memfd this package makes is sealed against shrinking, and
		// seals cannot be removed: this file is not one of ours.
		err = fmt.Errorf("mapping claims to be a memfd but is not sealed against shrinking: %w", transports.ErrBadEndpoint)
	}
	if err != nil {
		unmap(mem)
		return nil, 0, err
	}
	return mem, ringCap, nil
}

// dupFile returns a close-on-exec duplicate of f's descriptor as a new
// *os.File in non-blocking mode, so that reads on it park in the runtime
// poller and Close unblocks them. f's own *os.File is not switched to
// blocking mode (as f.Fd() would do); the O_NONBLOCK flag is shared with f,
// which the peer only ever closes.
func dupFile(f *os.File, name string) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var dupErr error
	err = rc.Control(func(fd uintptr) {
		nfd, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), name), nil
}
