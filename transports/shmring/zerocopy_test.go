package shmring

import (
	"errors"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/transporttest"
)

// TestZeroCopyByTypeAssertion checks that both ends of an shm-ring
// connection, as Accept and Dial return them, offer ZeroCopy, and that a
// message goes through it.
func TestZeroCopyByTypeAssertion(t *testing.T) {
	c1, c2, stop, err := transporttest.MakePipe(New(), transports.Config{})()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	w, ok1 := c1.(ZeroCopy)
	r, ok2 := c2.(ZeroCopy)
	if !ok1 || !ok2 {
		t.Fatalf("%T, %T: not ZeroCopy", c1, c2)
	}
	buf, err := w.Reserve(5)
	if err != nil || len(buf) != 5 {
		t.Fatalf("Reserve(5) = %d bytes, %v", len(buf), err)
	}
	copy(buf, "hello")
	if err := w.Commit(5); err != nil {
		t.Fatal(err)
	}
	got, err := r.Peek()
	if err != nil || string(got) != "hello" {
		t.Fatalf("Peek = %q, %v", got, err)
	}
	if err := r.Release(len(got) + 1); !errors.Is(err, ErrBadCommit) {
		t.Errorf("Release beyond the peeked region: %v, want ErrBadCommit", err)
	}
	if err := r.Release(len(got)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve(5); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(6); !errors.Is(err, ErrBadCommit) {
		t.Errorf("Commit beyond the reserved region: %v, want ErrBadCommit", err)
	}
}
