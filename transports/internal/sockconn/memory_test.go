package sockconn

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestBufferLimitsMatchTheKernel: for a requested size, BufferLimits gives
// exactly what the kernel reads back after SO_SNDBUF/SO_RCVBUF, and for a
// Unix socket with no request, what a new socket has; a request above
// net.core.wmem_max is clamped as the kernel clamps it.
func TestBufferLimitsMatchTheKernel(t *testing.T) {
	for _, req := range []int{0, 1, 64 << 10, 1 << 30} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fd := fds[0]
		if req > 0 {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, req); err != nil {
				t.Fatal(err)
			}
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, req); err != nil {
				t.Fatal(err)
			}
		}
		snd, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		rcv, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
		unix.Close(fds[0])
		unix.Close(fds[1])
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		wantSnd, wantRcv := BufferLimits(false, req, req)
		if req == 1 {
			// Below the kernel's minimum: BufferLimits bounds it from above.
			if int64(snd) > wantSnd || int64(rcv) > wantRcv {
				t.Errorf("request %d: kernel has %d/%d, above BufferLimits' %d/%d", req, snd, rcv, wantSnd, wantRcv)
			}
			continue
		}
		if int64(snd) != wantSnd {
			t.Errorf("request %d: kernel's SO_SNDBUF is %d, BufferLimits says %d", req, snd, wantSnd)
		}
		if req > 0 && int64(rcv) != wantRcv {
			t.Errorf("request %d: kernel's SO_RCVBUF is %d, BufferLimits says %d", req, rcv, wantRcv)
		}
	}
}
