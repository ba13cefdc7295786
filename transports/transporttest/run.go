package transporttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/private"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// Sizes and limits of the cases.
const (
	// echoMessages is how many messages the echo cases send in all.
	echoMessages = 10_000
	// maxEchoSize is the largest echoed message.
	maxEchoSize = 4 << 20
	// streamBytes is what the stream case pushes; streamBytesShort with
	// -short.
	streamBytes      = 1 << 30
	streamBytesShort = 64 << 20
	// smallBuffer is the Config.BufferSize that forces partial reads and
	// writes: a page, the smallest any kernel or ring buffer gets.
	smallBuffer = 4096
	// hang is how long a call may stay blocked after the peer was killed
	// before the case fails. The transports promise 2 s; on a shared
	// machine the suite only fails a call that hangs, and logs the time.
	hang = 10 * time.Second
	// promise is the bound the transports promise for noticing a dead peer.
	promise = 2 * time.Second
)

// streamSizes are the message sizes of the stream case, in turn: around
// the framing's buffer sizes, tiny ones, and large ones.
var streamSizes = []int{1 << 20, frame.ReadBufferSize - 1, frame.ReadBufferSize, frame.ReadBufferSize + 1, 4099, 1<<20 + 1, 777_777, frame.HeaderLen, 1}

// testCase is one conformance case.
type testCase struct {
	name string
	run  func(*testing.T, transports.Transport)
}

// cases are the subtests of Run, in order.
var cases = []testCase{
	{"nettest", testNettest},
	{"close-ends-both", testCloseEndsBoth},
	{"echo", func(t *testing.T, tr transports.Transport) { testEcho(t, tr, 1, echoMessages, 3, maxEchoSize) }},
	{"echo-conns=4", func(t *testing.T, tr transports.Transport) { testEcho(t, tr, 4, echoMessages/4, 1, maxEchoSize) }},
	{"load", testLoad},
	{"private-endpoint", testPrivateEndpoint},
	{"stream", testStream},
	{"kill-while-reading", testKillWhileReading},
	{"kill-while-writing", testKillWhileWriting},
	{"peer-closes/closewrite", testPeerCloseWrite},
	{"peer-closes/exit", testPeerExit},
	{"peer-closes/inherited-dial", testDialCloseInherited},
	{"truncated/peer-stops-mid-frame", testPeerTruncates},
	{"truncated/bench-stops-mid-frame", testBenchTruncates},
	{"address/nettest", testAddressNettest},
	{"address/sequential", testAddressSequential},
	{"address/concurrent", testAddressConcurrent},
	{"address/missing", testAddressMissing},
	{"address/nobody-listens", testAddressNobodyListens},
	{"address/bad-listen", testAddressBadListen},
	{"address/in-use", testAddressInUse},
	{"address/replaced", testAddressReplaced},
	{"address/server-killed", testAddressServerKilled},
	{"address/other-user", testAddressForeign},
	{"memory", testMemory},
}

// Run runs the conformance suite on tr, one subtest per case:
//
//   - nettest: golang.org/x/net/nettest.TestConn on an in-process pair
//     (Listen, Dial from a goroutine, Accept).
//   - close-ends-both: 50 in-process pairs, each closed while a Read of
//     it is blocked; once that Read returned net.ErrClosed, Write (and
//     WriteBuffers) must fail with net.ErrClosed and deliver nothing.
//   - echo, echo-conns=4: 10,000 messages of 1 B to 4 MiB (a fixed mix,
//     mostly small, every power-of-two size class and the framing's
//     boundaries present, the largest a few times) echoed by a peer process
//     over one connection, then over four at once; every byte checked.
//   - stream: 1 GiB (64 MiB with -short) one way to a sink peer, with
//     Config.BufferSize at 4096 so reads and writes are partial; the peer
//     checks every payload, and its counts must match what was sent; it
//     must have seen short reads.
//   - kill-while-reading, kill-while-writing: the peer is killed (SIGKILL)
//     while this process is blocked reading, then writing; the blocked
//     call must return an error (it fails only when still blocked after
//     10 s; the time taken is logged against the 2 s the transports
//     promise).
//   - load: 64 connections at once, each echoing 200 messages (100,000
//     with IPCBENCH_STRESS=1) of mixed sizes up to 64 KiB, every byte
//     checked; the peak RSS of both processes is logged and bounded.
//   - private-endpoint: a TCP listener is not on a wildcard address; a
//     Unix socket and its directory, and every regular file behind an
//     endpoint descriptor (a memfd or a file mapping), have modes no wider
//     than internal/private's (0600 files, 0700 directories).
//   - peer-closes/closewrite, peer-closes/exit: the peer closes after its
//     last message (on EOF after CloseWrite, and on an exit job); this side
//     must read every byte, then io.EOF.
//   - peer-closes/inherited-dial: a child reads its endpoint with
//     transports.InheritedEndpoint, dials it (channel 0 of one, then
//     channel 1 of two), writes, closes the connection and lives on
//     without touching the endpoint's files; this side must read every
//     byte, then io.EOF within 10 s.
//   - truncated/peer-stops-mid-frame: the peer writes half a frame and ends
//     its side there (CloseWrite where the connection has it, else Close);
//     this side's frame.Reader must fail with frame.ErrTruncated, not
//     return a short message or a clean EOF.
//   - truncated/bench-stops-mid-frame: the same the other way round; the
//     echoing peer must report the truncated frame in its done reply.
//   - address/*: the listener listens on an address (Config.Address a
//     fresh socket path; tcp-public's default when it refuses one) and is
//     dialed with the address alone, no files: nettest.TestConn over such
//     pairs; 1,000 dial/exchange/close cycles one after the other and 64
//     dials at once, every byte checked; a dial to a closed listener's
//     address and to a missing path fails at once, and with the errors
//     transports.Transport.Dial promises (nobody-listens: a closed
//     listener's address; for socket paths a missing one, a stale socket
//     file and a regular file; each error naming the address once);
//     Listen on an address
//     it cannot listen on (a socket path too long for sun_path, under a
//     missing directory, in a directory open to others or on a regular
//     file; a bad port) fails with ErrBadEndpoint, not ErrUnavailable,
//     and leaves nothing; Listen on the address of a live listener fails
//     with an error that is syscall.EADDRINUSE and ErrBadEndpoint, not
//     ErrUnavailable, and names the address, and the live listener goes
//     on serving; a listener whose socket file was removed and whose path
//     a second listener took leaves the second's socket alone when it
//     closes (replaced); a server process
//     killed with SIGKILL leaves its clients with ErrPeerGone or io.EOF
//     (logged against the 2 s promise), a new dial failing at once and a
//     new Listen on the address working; a server of uid 65534 is refused
//     (needs root). RunOptions.NoAddress skips them for a transport that
//     cannot be dialed by address alone.
//   - memory: 64 connections (by address, or by a redialable endpoint for
//     a NoAddress transport) with Config.BufferSize 64 KiB, 256 KiB each
//     way through each, every byte checked, then every buffer filled;
//     shared mappings, kernel buffer memory per direction (SO_MEMINFO,
//     F_GETPIPE_SZ), Go heap and stacks after a GC, goroutines and
//     descriptors must stay within the transport's
//     transports.MemoryReporter statement, both ends counted; then every
//     buffered byte is read and checked.
//
// After each case, no file descriptor, goroutine, child process, temporary
// file, /dev/shm file or shared mapping may be left behind. Run needs Main as the package's
// TestMain, and skips (saying why) when the transport is unavailable here
// or needs a private network namespace that could not be made.
func Run(t *testing.T, tr transports.Transport) { RunWith(t, tr, RunOptions{}) }

// RunOptions adapts the suite to a transport. The zero value runs the
// cases Run lists.
type RunOptions struct {
	// Behaviour adds in-process cases, named behaviour/<name>, after the
	// others: listener-close (Close unblocks Accept with net.ErrClosed, a
	// second Close fails), close-write (the other side reads every byte
	// then io.EOF and can still write back, both ways round), conn-close
	// (Close unblocks Read; I/O after Close fails with a *net.OpError
	// wrapping net.ErrClosed), deadlines (a past read deadline fails with
	// os.ErrDeadlineExceeded and Timeout(), and clearing it heals the
	// connection), peer-gone (writing after the other side closed fails
	// with ErrPeerGone), unknown-option (Listen and Dial refuse with
	// ErrBadOption) and wrong-transport (Dial refuses another transport's
	// endpoint with ErrBadEndpoint). The socket and pipe transports keep
	// these promises; shared memory reports a write after an orderly close
	// as a broken pipe, not ErrPeerGone, and leaves them out.
	Behaviour bool
	// Setup, if not nil, starts every behaviour case and returns its
	// Config (the zero Config otherwise): a fresh directory for unix, or a
	// skip when tcp-public has no private network namespace to listen in.
	Setup func(t *testing.T) transports.Config
	// NoAddress, when not empty, says why the transport cannot be dialed by
	// address alone (its endpoint carries a file every dialer needs, as
	// tcp-veth's namespace); the address/* cases then skip, saying so.
	NoAddress string
}

// RunWith is Run adapted by opts.
func RunWith(t *testing.T, tr transports.Transport, opts RunOptions) {
	if os.Getenv(envTmp) == "" {
		t.Fatal("transporttest.Run needs transporttest.Main as the package's TestMain")
	}
	if status, ok := os.LookupEnv(envNetns); ok && status != "ok" {
		t.Skipf("%s needs a private network namespace: %s", tr.Name(), status)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if opts.NoAddress != "" && strings.HasPrefix(c.name, "address/") {
				t.Skipf("not dialable by address alone: %s", opts.NoAddress)
			}
			NoLeaks(t)
			c.run(t, tr)
		})
	}
	if !opts.Behaviour {
		return
	}
	for _, c := range behaviourCases {
		t.Run("behaviour/"+c.name, func(t *testing.T) {
			NoLeaks(t)
			var cfg transports.Config
			if opts.Setup != nil {
				cfg = opts.Setup(t)
			}
			c.check(t, tr, cfg)
		})
	}
}

// skipUnavailable skips the test when tr cannot listen here
// (ErrUnavailable), and fails it when it cannot listen at all.
func skipUnavailable(t *testing.T, tr transports.Transport) {
	t.Helper()
	ln, err := tr.Listen(t.Context(), transports.Config{})
	if errors.Is(err, transports.ErrUnavailable) {
		t.Skipf("transport unavailable here: %v", err)
	}
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ln.Close()
}

func testNettest(t *testing.T, tr transports.Transport) {
	skipUnavailable(t, tr)
	nettest.TestConn(t, MakePipe(tr, transports.Config{}))
}

// echoSizes returns n message sizes for one connection: a deterministic mix
// from seed, log-uniform within classes (90% up to 1 KiB, 9% up to 64 KiB,
// 0.9% up to 1 MiB, 0.1% up to maxEchoSize), with every power of two from
// 1 B to maxEchoSize, the framing's boundary sizes, and maxEchoSize
// `largest` times spread over the run.
func echoSizes(n, largest int, seed uint64, maxSize int) []int {
	rng := rand.New(rand.NewPCG(seed, 0x1bc))
	sizes := make([]int, n)
	for i := range sizes {
		var lo, hi int
		switch r := rng.IntN(1000); {
		case r < 900:
			lo, hi = 1, 1<<10
		case r < 990:
			lo, hi = 1<<10, 64<<10
		case r < 999:
			lo, hi = 64<<10, 1<<20
		default:
			lo, hi = 1<<20, maxEchoSize
		}
		hi = min(hi, maxSize)
		lo = min(lo, hi/2)
		kLo, kHi := bits.Len(uint(lo))-1, bits.Len(uint(hi))-1
		k := kLo + rng.IntN(kHi-kLo)
		sizes[i] = 1<<k + rng.IntN(1<<k)
	}
	var special []int
	for s := 1; s < maxSize; s <<= 1 {
		special = append(special, s)
	}
	special = append(special, frame.HeaderLen-1, frame.HeaderLen+1,
		frame.CoalesceLimit-1, frame.CoalesceLimit+1, frame.ReadBufferSize+1)
	for range largest {
		special = append(special, maxSize)
	}
	for j, s := range special {
		sizes[(2*j+1)*n/(2*len(special))] = s
	}
	return sizes
}

// sum adds sizes up.
func sum(sizes []int) int64 {
	var n int64
	for _, s := range sizes {
		n += int64(s)
	}
	return n
}

func testEcho(t *testing.T, tr transports.Transport, conns, perConn, largest, maxSize int) *session {
	s := startSession(t, tr, transports.Config{Conns: conns}, peer.RoleEcho, 3*time.Minute)
	start := time.Now()
	errs := make(chan error, 2*len(s.conns))
	var wg sync.WaitGroup
	var volume int64
	for i, c := range s.conns {
		sizes := echoSizes(perConn, largest, uint64(i)+1, maxSize)
		volume += sum(sizes)
		ahead := make(chan struct{}, echoWindow)
		recvDone := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- closeOnError(c, sendAll(c, uint32(i), sizes, ahead, recvDone))
		}()
		go func() {
			defer wg.Done()
			defer close(recvDone)
			errs <- closeOnError(c, recvAll(c, uint32(i), sizes, ahead))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return s
	}
	elapsed := time.Since(start)
	for _, c := range s.conns {
		c.Close()
	}
	// A listener may accept prepared channels in any order, so the peer's
	// connection i need not be ours: compare the counts as sets.
	var got, want []string
	for i, st := range s.done().Conns {
		got = append(got, fmt.Sprintf("%d messages, %d bytes", st.Messages, st.Bytes))
		want = append(want, fmt.Sprintf("%d messages, %d bytes", perConn, sum(echoSizes(perConn, largest, uint64(i)+1, maxSize))))
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("peer echoed %q; want %q", got, want)
	}
	t.Logf("%d connection(s): %d messages, %.1f MiB each way in %v", conns, conns*perConn, float64(volume)/(1<<20), elapsed.Round(time.Millisecond))
	return s
}

// closeOnError closes c when err is not nil, so that the goroutine using
// the other direction of c stops too.
func closeOnError(c net.Conn, err error) error {
	if err != nil {
		c.Close()
	}
	return err
}

// echoWindow is how many messages a connection's writer may be ahead of
// its reader in testEcho. Every buffer on the way (a pipe, a ring, both
// socket buffers) still fills, so writers still block and reads still come
// in pieces; but a writer unbounded by its reader fills the echo's socket
// buffers too (tens of MiB with autotuning), and then the test measures the
// kernel under memory it prunes: over a veth pair a connection whose
// receive queue is full and whose retransmissions are dropped can back its
// retransmission timer off past the test's deadline (seen under make
// stress: a Recv-Q of 27 MB, an RTO of 26 s).
const echoWindow = 64

// sendAll writes one message of each size, stamped (conn, seq), taking a
// place in ahead for each (recvAll gives it back). It stops when recvDone
// is closed before it has a place: the reader gave up.
func sendAll(c net.Conn, conn uint32, sizes []int, ahead chan struct{}, recvDone <-chan struct{}) error {
	w := frame.NewWriter(c, frame.Config{})
	src := make([]byte, slices.Max(sizes))
	frame.Fill(src, conn, 0)
	for seq, size := range sizes {
		select {
		case ahead <- struct{}{}:
		case <-recvDone:
			return nil // the reader's error says what went wrong
		}
		out := src[:size]
		frame.Stamp(out, conn, uint64(seq))
		if err := w.WriteMsg(out); err != nil {
			return fmt.Errorf("connection %d: writing message %d (%d bytes): %w", conn, seq, size, err)
		}
	}
	return nil
}

// recvAll reads one message of each size and checks every byte, giving
// back a place in ahead for each.
func recvAll(c net.Conn, conn uint32, sizes []int, ahead chan struct{}) error {
	r := frame.NewReader(c, frame.Config{})
	buf := make([]byte, frame.ReadBufferSize)
	for seq, size := range sizes {
		msg, err := r.ReadMsg(buf)
		<-ahead
		if err != nil {
			return fmt.Errorf("connection %d: reading echo %d (%d bytes): %w", conn, seq, size, err)
		}
		if len(msg) != size {
			return fmt.Errorf("connection %d: echo %d has %d bytes, want %d", conn, seq, len(msg), size)
		}
		if err := frame.Check(msg, conn, uint64(seq)); err != nil {
			return fmt.Errorf("connection %d: echo %d: %w", conn, seq, err)
		}
	}
	return nil
}

func testStream(t *testing.T, tr transports.Transport) {
	total := int64(streamBytes)
	if testing.Short() {
		total = streamBytesShort
	}
	s := startSession(t, tr, transports.Config{BufferSize: smallBuffer}, peer.RoleSink, 10*time.Minute)
	c := s.conns[0]
	if or, ok := c.(transports.OptionReporter); ok {
		t.Logf("effective options: %s", formatOptions(or.EffectiveOptions()))
	}
	w := frame.NewWriter(c, frame.Config{})
	src := make([]byte, 1<<20+1)
	frame.Fill(src, 0, 0)
	var sent, bytes int64
	start := time.Now()
	for seq := uint64(0); bytes < total; seq++ {
		out := src[:streamSizes[seq%uint64(len(streamSizes))]]
		frame.Stamp(out, 0, seq)
		if err := w.WriteMsg(out); err != nil {
			t.Fatalf("writing message %d (%d bytes) after %d bytes: %v (peer log: %s)", seq, len(out), bytes, err, s.peer.Logs())
		}
		sent++
		bytes += int64(len(out))
	}
	if err := w.WriteMsg(nil); err != nil {
		t.Fatalf("writing the end marker: %v", err)
	}
	msg, err := frame.NewReader(c, frame.Config{}).ReadMsg(nil)
	if err != nil {
		t.Fatalf("reading the sink's acknowledgement: %v (peer log: %s)", err, s.peer.Logs())
	}
	elapsed := time.Since(start)
	ack, err := peer.DecodeAck(msg)
	if err != nil {
		t.Fatal(err)
	}
	if want := (peer.Ack{Messages: sent, Bytes: bytes}); ack != want {
		t.Fatalf("sink acknowledged %+v, sent %+v", ack, want)
	}
	c.Close()
	st := s.done().Conns[0]
	if st.Messages != sent || st.Bytes != bytes || st.Errors != 0 {
		t.Fatalf("peer counted %+v; sent %d messages, %d bytes", st, sent, bytes)
	}
	// A net.Conn's Write returns only once every byte went (or failed), so
	// partial writes are not observable on this side; the sink counts the
	// partial reads.
	if st.ShortReads == 0 {
		t.Errorf("no partial read in %d messages with %d-byte buffers: BufferSize not applied?", sent, smallBuffer)
	}
	t.Logf("%d messages, %d MiB in %v (%.0f MiB/s), %d partial reads at the peer",
		sent, bytes>>20, elapsed.Round(time.Millisecond), float64(bytes)/(1<<20)/elapsed.Seconds(), st.ShortReads)
}

// formatOptions renders options sorted, "k=v k=v".
func formatOptions(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, " ")
}

func testKillWhileReading(t *testing.T, tr transports.Transport) {
	s := startSession(t, tr, transports.Config{}, peer.RoleEcho, time.Minute)
	s.killed = true
	c := s.conns[0]
	w, r := frame.NewWriter(c, frame.Config{}), frame.NewReader(c, frame.Config{})
	msg := make([]byte, 100)
	for seq := range uint64(10) {
		frame.Fill(msg, 0, seq)
		if err := w.WriteMsg(msg); err != nil {
			t.Fatal(err)
		}
		in, err := r.ReadMsg(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := frame.Check(in, 0, seq); err != nil {
			t.Fatal(err)
		}
	}
	// Half a frame: the peer blocks reading the rest, and we block reading
	// its echo when it is killed.
	half := make([]byte, frame.LengthHeaderLen+1000)
	binary.BigEndian.PutUint32(half, 1<<20)
	if _, err := c.Write(half); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				res <- err
				return
			}
			if n > 0 {
				res <- fmt.Errorf("read %d bytes nobody sent", n)
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // most likely blocked by now; either way the read must end
	survivor(t, s, c, res, "Read")
}

func testKillWhileWriting(t *testing.T, tr transports.Transport) {
	// Small buffers, and we never read the echoes: the peer blocks writing
	// them, stops reading, and our writes block.
	s := startSession(t, tr, transports.Config{BufferSize: smallBuffer}, peer.RoleEcho, time.Minute)
	s.killed = true
	c := s.conns[0]
	var written atomic.Int64
	res := make(chan error, 1)
	go func() {
		w := frame.NewWriter(c, frame.Config{})
		msg := make([]byte, 64<<10)
		frame.Fill(msg, 0, 0)
		for seq := uint64(0); ; seq++ {
			frame.Stamp(msg, 0, seq)
			if err := w.WriteMsg(msg); err != nil {
				res <- err
				return
			}
			written.Add(1)
		}
	}()
	// Wait until the writes stall (no progress for 300 ms), at most hang.
	last, still := int64(-1), 0
	for deadline := time.Now().Add(hang); still < 6 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n := written.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	if still < 6 {
		t.Logf("writes never stalled (%d messages written); killing the peer anyway", written.Load())
	}
	survivor(t, s, c, res, "Write")
}

// survivor kills the peer and checks that the blocked call reporting on
// res returns an error, failing only when it is still blocked after hang.
func survivor(t *testing.T, s *session, c net.Conn, res <-chan error, what string) {
	t.Helper()
	select {
	case err := <-res:
		t.Fatalf("%s returned before the peer was killed: %v", what, err)
	default:
	}
	start := time.Now()
	if err := s.peer.Kill(); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(hang)
	defer timer.Stop()
	select {
	case err := <-res:
		elapsed := time.Since(start)
		if err == nil {
			t.Fatalf("%s after the peer was killed returned no error", what)
		}
		t.Logf("%s returned %v after the peer was killed, in %v", what, err, elapsed.Round(time.Millisecond))
		if elapsed > promise {
			t.Logf("note: slower than the %v the transports promise (not failed: timings on a shared machine are noisy)", promise)
		}
	case <-timer.C:
		t.Errorf("%s still blocked %v after the peer was killed", what, hang)
		c.Close()
		<-res
	}
	<-s.peer.Exited()
}

// echoExchange writes n messages from a goroutine and reads their echoes.
func echoExchange(t *testing.T, c net.Conn, r *frame.Reader, n int, closeWrite func() error) {
	t.Helper()
	wrote := make(chan error, 1)
	go func() {
		w := frame.NewWriter(c, frame.Config{})
		msg := make([]byte, 512)
		for seq := range uint64(n) {
			frame.Fill(msg, 0, seq)
			if err := w.WriteMsg(msg); err != nil {
				wrote <- err
				return
			}
		}
		if closeWrite != nil {
			wrote <- closeWrite()
			return
		}
		wrote <- nil
	}()
	for seq := range uint64(n) {
		in, err := r.ReadMsg(nil)
		if err != nil {
			c.Close()
			<-wrote
			t.Fatalf("reading echo %d: %v", seq, err)
		}
		if err := frame.Check(in, 0, seq); err != nil {
			t.Fatalf("echo %d: %v", seq, err)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// wantEOF checks that the next read is the orderly end of the stream.
func wantEOF(t *testing.T, r *frame.Reader) {
	t.Helper()
	msg, err := r.ReadMsg(nil)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the last echo: %d bytes, %v; want io.EOF", len(msg), err)
	}
}

func testPeerCloseWrite(t *testing.T, tr transports.Transport) {
	s := startSession(t, tr, transports.Config{}, peer.RoleEcho, time.Minute)
	c := s.conns[0]
	cw, ok := c.(transports.CloseWriter)
	if !ok {
		t.Skipf("%T does not implement transports.CloseWriter", c)
	}
	const n = 200
	r := frame.NewReader(c, frame.Config{})
	echoExchange(t, c, r, n, cw.CloseWrite)
	// The peer saw EOF after our last message, echoed everything and
	// closed: all its bytes, then EOF.
	wantEOF(t, r)
	if st := s.done().Conns[0]; st.Messages != n {
		t.Fatalf("peer echoed %d messages, want %d", st.Messages, n)
	}
}

func testPeerExit(t *testing.T, tr transports.Transport) {
	s := startSession(t, tr, transports.Config{}, peer.RoleEcho, time.Minute)
	c := s.conns[0]
	const n = 200
	r := frame.NewReader(c, frame.Config{})
	echoExchange(t, c, r, n, nil)
	if err := s.client.Exit(); err != nil {
		t.Fatal(err)
	}
	wantEOF(t, r)
	<-s.peer.Exited()
}

func testPeerTruncates(t *testing.T, tr transports.Transport) {
	s := startSession(t, tr, transports.Config{}, peer.RoleTruncate, time.Minute)
	c := s.conns[0]
	r := frame.NewReader(c, frame.Config{})
	msg, err := r.ReadMsg(nil)
	if !errors.Is(err, frame.ErrTruncated) {
		t.Fatalf("reading a frame the peer left half-written: %d bytes, %v; want frame.ErrTruncated", len(msg), err)
	}
	t.Logf("reader: %v", err)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if st := s.done().Conns[0]; st.Bytes == 0 || st.Bytes >= peer.TruncateSize {
		t.Fatalf("peer wrote %d bytes, want half a frame of %d", st.Bytes, peer.TruncateSize)
	}
}

func testBenchTruncates(t *testing.T, tr transports.Transport) {
	s := startSession(t, tr, transports.Config{}, peer.RoleEcho, time.Minute)
	c := s.conns[0]
	r := frame.NewReader(c, frame.Config{})
	echoExchange(t, c, r, 10, nil)
	var whole bytes.Buffer
	msg := make([]byte, 4096)
	frame.Fill(msg, 0, 0)
	if err := frame.NewWriter(&whole, frame.Config{}).WriteMsg(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(whole.Bytes()[:whole.Len()/2]); err != nil {
		t.Fatalf("writing half a frame: %v", err)
	}
	var err error
	if cw, ok := c.(transports.CloseWriter); ok {
		err = cw.CloseWrite()
	} else {
		err = c.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.client.Done(s.ctx)
	if err != nil {
		t.Fatalf("waiting for the peer: %v", err)
	}
	if !strings.Contains(rep.Error, frame.ErrTruncated.Error()) {
		t.Fatalf("peer's done reply: error %q; want it to report %q", rep.Error, frame.ErrTruncated)
	}
	if got := rep.Conns[0].Messages; got != 10 {
		t.Fatalf("peer counted %d messages, want the 10 whole ones", got)
	}
	t.Logf("peer: %s", rep.Error)
}

// Load: loadConns connections at once, each echoing messages of mixed
// sizes up to loadMaxSize, every byte checked.
const (
	loadConns   = 64
	loadMaxSize = 64 << 10
	// loadMessages is the messages per connection of the short form;
	// IPCBENCH_STRESS=1 (`make stress`) runs loadMessagesStress.
	loadMessages       = 200
	loadMessagesStress = 100_000
	// loadRSSLimit bounds the peak resident memory of either process: the
	// transports buffer a bounded amount per connection, so the peak must
	// not grow with the number of messages.
	loadRSSLimit = 1 << 30
)

func testLoad(t *testing.T, tr transports.Transport) {
	perConn := loadMessages
	if os.Getenv("IPCBENCH_STRESS") != "" {
		perConn = loadMessagesStress
	}
	// Start this process's peak afresh, so it is the load's and not that
	// of an earlier case (Linux ≥ 4.0; without it the figure is an upper
	// bound).
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	s := testEcho(t, tr, loadConns, perConn, 0, loadMaxSize)
	if t.Failed() {
		return
	}
	self, err := peakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	other, err := peakRSS(s.peer.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load: %d connections × %d messages verified; peak RSS: this process %.1f MiB, peer %.1f MiB",
		loadConns, perConn, float64(self)/(1<<20), float64(other)/(1<<20))
	if self > loadRSSLimit || other > loadRSSLimit {
		t.Errorf("peak RSS over %d MiB: this process %d B, peer %d B", loadRSSLimit>>20, self, other)
	}
}

// peakRSS returns the peak resident set size of pid (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the peak RSS of %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("parsing %q of %d: %w", line, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// testPrivateEndpoint checks what a listener exposes to other local users:
// a TCP listener is bound to its chosen address, never a wildcard; a Unix
// socket sits in a directory only its owner can enter; a file behind an
// endpoint descriptor that has a name on a filesystem is readable and
// writable by its owner alone.
func testPrivateEndpoint(t *testing.T, tr transports.Transport) {
	ln, err := tr.Listen(context.Background(), transports.Config{})
	if err != nil {
		if errors.Is(err, transports.ErrUnavailable) {
			t.Skipf("transport unavailable here: %v", err)
		}
		t.Fatalf("Listen: %v", err)
	}
	defer ln.Close()
	switch a := ln.Addr().(type) {
	case *net.TCPAddr:
		if a.IP.IsUnspecified() {
			t.Errorf("TCP listener on the wildcard address %v", a)
		}
	case *net.UnixAddr:
		for p, want := range map[string]os.FileMode{filepath.Dir(a.Name): private.DirMode, a.Name: private.FileMode} {
			st, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm()&^want != 0 {
				t.Errorf("%s has mode %v, wider than %v", p, st.Mode().Perm(), want)
			}
		}
	}
	for _, f := range ln.Endpoint().Files {
		target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("endpoint file %s: %v", target, st.Mode())
		// Only a path names a file others could open: a namespace handle
		// ("net:[4026532528]", mode 0444 by the kernel) or a pipe has none.
		named := strings.HasPrefix(target, "/")
		if named && st.Mode().IsRegular() && st.Mode().Perm()&^private.FileMode != 0 {
			t.Errorf("endpoint file %s has mode %v, wider than %v", target, st.Mode().Perm(), private.FileMode)
		}
	}
}
