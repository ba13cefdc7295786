package all

import (
	"context"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
)

// TestDescriptors checks transports.DescriptorConn where it is promised:
// bytes written to the write descriptor arrive at the other end, and bytes
// from the other end are read from the read descriptor; shared memory has
// no descriptor and does not claim one.
func TestDescriptors(t *testing.T) {
	for _, spec := range []string{"unix", "unix[io=raw]", "tcp-localhost", "tcp-localhost[io=raw]", "pipe", "pipe[io=raw]", "shm-ring"} {
		t.Run(spec, func(t *testing.T) {
			r, err := Resolve(spec)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ln, err := r.Transport.Listen(ctx, transports.Config{Options: r.Spec.Options})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			d, err := r.Transport.Dial(ctx, ln.Endpoint())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			a, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			a.SetDeadline(time.Now().Add(10 * time.Second))
			dc, ok := d.(transports.DescriptorConn)
			if spec == "shm-ring" {
				if ok {
					t.Fatal("a shared-memory connection claims descriptors")
				}
				return
			}
			if !ok {
				t.Fatalf("%T does not implement transports.DescriptorConn", d)
			}
			rfd, wfd, err := dc.Descriptors()
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(rfd)
			if wfd != rfd {
				defer unix.Close(wfd)
			}
			if _, err := unix.Write(wfd, []byte("out")); err != nil {
				t.Fatalf("write to the write descriptor: %v", err)
			}
			got := make([]byte, 3)
			if _, err := io.ReadFull(a, got); err != nil || string(got) != "out" {
				t.Fatalf("other end read %q, %v", got, err)
			}
			if _, err := a.Write([]byte("in")); err != nil {
				t.Fatal(err)
			}
			fds := []unix.PollFd{{Fd: int32(rfd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, 10000); err != nil {
				t.Fatal(err)
			}
			n, err := unix.Read(rfd, got)
			if err != nil || string(got[:n]) != "in" {
				t.Fatalf("read descriptor gave %q, %v", got[:n], err)
			}
		})
	}
}
