package sockconn

import (
	"os"
	"strconv"
	"strings"

	"github.com/ipcbench/ipcbench/transports"
)

// minSockBuf is at least the smallest send or receive buffer the kernel
// gives a socket (SOCK_MIN_SNDBUF: two minimal buffers of 2 KiB plus their
// struct sk_buff, about 4.5 KiB), rounded up so that it bounds it on
// every kernel.
const minSockBuf = 8 << 10

// Values the kernel starts with, used when /proc/sys cannot be read.
const (
	defaultWmemDefault = 212992
	defaultCoreMax     = 212992
	defaultTCPWmemMax  = 4 << 20
	defaultTCPRmemMax  = 6 << 20
)

// BufferLimits returns the largest SO_SNDBUF and SO_RCVBUF, in the
// kernel's accounting, that a socket of a transport gets when it asks for
// snd and rcv bytes (ParseOptions' SndBuf and RcvBuf; 0 asks for
// nothing). The kernel clamps a request to net.core.wmem_max (rmem_max),
// doubles it for its overhead, and never goes below its minimum. With no
// request, a TCP socket's buffers grow by autotuning up to the maxima of
// net.ipv4.tcp_wmem and tcp_rmem, and a Unix socket's send buffer is
// net.core.wmem_default (its receive buffer limits nothing on a stream
// socket). The values are those of this process's network namespace.
func BufferLimits(tcp bool, snd, rcv int) (sndMax, rcvMax int64) {
	limit := func(req int, coreMax, autoMax, unixDefault int64) int64 {
		switch {
		case req > 0:
			return max(2*min(int64(req), coreMax), minSockBuf)
		case tcp:
			return max(autoMax, minSockBuf)
		default:
			return max(unixDefault, minSockBuf)
		}
	}
	wmemDefault := sysctl("net/core/wmem_default", 0, defaultWmemDefault)
	rmemDefault := sysctl("net/core/rmem_default", 0, defaultWmemDefault)
	sndMax = limit(snd, sysctl("net/core/wmem_max", 0, defaultCoreMax), sysctl("net/ipv4/tcp_wmem", 2, defaultTCPWmemMax), wmemDefault)
	rcvMax = limit(rcv, sysctl("net/core/rmem_max", 0, defaultCoreMax), sysctl("net/ipv4/tcp_rmem", 2, defaultTCPRmemMax), rmemDefault)
	return sndMax, rcvMax
}

// sysctl returns field i of /proc/sys/name, or def when it cannot be read.
func sysctl(name string, i int, def int64) int64 {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return def
	}
	f := strings.Fields(string(b))
	if i >= len(f) {
		return def
	}
	v, err := strconv.ParseInt(f[i], 10, 64)
	if err != nil {
		return def
	}
	return v
}

// heapPerEnd bounds the Go heap one end of a socket connection keeps: its
// net.Conn (netFD, poll descriptor) and this package's wrapper. Measured
// with 64 connections (transporttest's memory case, a mean over 128 ends
// that span-sized steps of the heap make noisy): 0.3-2.6 KiB per end, up
// to 3.3 KiB with io=raw under the race detector; 8 KiB leaves room for
// that noise and for allocation classes that differ between Go releases.
const heapPerEnd = 8 << 10

// Memory is the transports.MemoryReporter statement of the stream-socket
// transports for cfg: per direction, the sender's send buffer plus (TCP)
// the receiver's receive buffer at their largest (BufferLimits), or (Unix)
// the sender's send buffer, each plus the one buffer the kernel admits
// past the send buffer's limit (it checks the limit before it allocates):
// a Unix stream socket's is at most half its send buffer, a TCP segment
// at most half the receive window; per end, one socket (and with io=raw
// the eventfd that wakes its waiters on Close) and heapPerEnd bytes of Go heap; no goroutine.
// Options that ParseOptions refuses count as absent (Listen refuses them).
func Memory(transport string, tcp bool, cfg transports.Config) transports.Memory {
	set, err := ParseOptions(transport, tcp, cfg.BufferSize, cfg.Options)
	if err != nil {
		set.SndBuf, set.RcvBuf = max(cfg.BufferSize, 0), max(cfg.BufferSize, 0)
	}
	snd, rcv := BufferLimits(tcp, set.SndBuf, set.RcvBuf)
	kernel := snd + snd/2 // Unix: the queue is charged to the sender
	if tcp {
		kernel = snd + rcv + rcv/2
	}
	fds := 1
	if set.Raw {
		fds = 2 // and rawio's eventfd that Close signals
	}
	return transports.Memory{KernelBytes: kernel, HeapBytes: heapPerEnd, Descriptors: fds}
}
