package rendezvous

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReadMessageBeforeClose sends one message on a SOCK_SEQPACKET socket
// pair and closes at once, as a listener does, while the other end polls
// it with non-blocking reads, many times over: readMessage must return the
// message every time, never the end. Without its second look, Linux
// reports the end before the message a few times in ten thousand rounds.
func TestReadMessageBeforeClose(t *testing.T) {
	rounds := 20000
	if os.Getenv("IPCBENCH_STRESS") != "" {
		rounds = 500000
	}
	msg := []byte("the one message")
	buf := make([]byte, 64)
	for i := range rounds {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		go func(fd int) {
			unix.Write(fd, msg)
			unix.Close(fd)
		}(fds[0])
		n, _, _, err := readMessage(func(buf, oob []byte) (int, int, int, error) {
			for polls := 1; ; polls++ {
				n, oobn, flags, _, err := unix.Recvmsg(fds[1], buf, oob, 0)
				switch {
				case err == unix.EAGAIN || err == unix.EINTR:
					// Poll: every look may meet the send and close,
					// made on another processor. Yield now and then,
					// so that with one processor the sender runs too.
					if polls%256 == 0 {
						runtime.Gosched()
					}
					continue
				case err != nil:
					return 0, 0, 0, err
				case n == 0 && oobn == 0:
					return 0, 0, 0, io.EOF
				}
				return n, oobn, flags, nil
			}
		}, buf, nil)
		unix.Close(fds[1])
		if err != nil || !bytes.Equal(buf[:n], msg) {
			t.Fatalf("round %d of %d: read %q, %v; want %q", i+1, rounds, buf[:n], err, msg)
		}
	}
}
