package shm

import (
	"errors"
	"os"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
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
