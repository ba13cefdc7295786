package shm

import (
	"errors"
	"os"
	"runtime/debug"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"golang.org/x/sys/unix"
)

// TestPeerDoorbellMustBeEventfd: a peer whose doorbell is not an eventfd
// (here a pipe nobody reads, whose write blocks once it is full) is
// refused when its wake page is mapped; the poller rings doorbells holding
// its lock, so such a peer stopped every connection of the process.
func TestPeerDoorbellMustBeEventfd(t *testing.T) {
	_, files, err := acquireWake()
	if err != nil {
		t.Skip(err)
	}
	defer releaseWake()
	page, bell := files[0], files[1]

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if p, err := mapPeerWake(page, w); !errors.Is(err, transports.ErrBadEndpoint) {
		if err == nil {
			p.close()
		}
		t.Errorf("a pipe as the doorbell: %v, want an error wrapping ErrBadEndpoint", err)
	}

	p, err := mapPeerWake(page, bell)
	if err != nil {
		t.Fatalf("an eventfd as the doorbell: %v", err)
	}
	p.close()
}

// TestPeerWakeSealsReadFirst: a sender that shrinks its unsealed wake page
// to nothing and then seals it, between mapPeerWake's reads of the seals
// and of the size, is refused. With the size read first, the check saw a
// full page and a seal against shrinking, and this process died of SIGBUS
// reading the mapping (here a panic, as the test asks for one on a fault).
func TestPeerWakeSealsReadFirst(t *testing.T) {
	_, files, err := acquireWake()
	if err != nil {
		t.Skip(err)
	}
	defer releaseWake()
	bell := files[1]

	fd, err := unix.MemfdCreate("ipcbench-test-wake", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Skip(err)
	}
	page := os.NewFile(uintptr(fd), "hostile-wake")
	defer page.Close()
	if err := page.Truncate(wakeSize); err != nil {
		t.Fatal(err)
	}
	testBetweenSealsAndSize = func(fd int) {
		if err := unix.Ftruncate(fd, 0); err != nil {
			t.Errorf("shrinking: %v", err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW); err != nil {
			t.Errorf("sealing: %v", err)
		}
	}
	defer func() { testBetweenSealsAndSize = nil }()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("mapping a wake page shrunk during the check faulted: %v", r)
		}
	}()
	if p, err := mapPeerWake(page, bell); !errors.Is(err, transports.ErrBadEndpoint) {
		if err == nil {
			p.close()
		}
		t.Errorf("a wake page shrunk during the check: %v, want an error wrapping ErrBadEndpoint", err)
	}
}
