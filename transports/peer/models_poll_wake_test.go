package peer

import (
	"os"
	"testing"

	"github.com/ipcbench/ipcbench/internal/frame"
)

// TestPollShutdownAfterReturnWritesNothing: a job shutdown that comes
// after the poll model has returned (its connections all ended) does not
// write its wake-up to the eventfd's number, closed by then and maybe
// another descriptor's: here a pipe opened after the return, which takes
// the lowest free number.
func TestPollShutdownAfterReturnWritesNothing(t *testing.T) {
	sv := &serving{}
	(&server{}).servePoll(sv, nil, RoleEcho, frame.Config{}, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	sv.closeAll()
	w.Close()
	b := make([]byte, 16)
	if n, _ := r.Read(b); n != 0 {
		t.Fatalf("the shutdown wrote %d bytes to a descriptor opened after the poll model returned (fds %d, %d)", n, r.Fd(), w.Fd())
	}
}
