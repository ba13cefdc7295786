package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
)

// RoleConnect is the role of the connect workload (the HTTP/1.0 pattern):
// a new connection per exchange. The serve job's endpoint has exactly one
// file, the peer's end of a handoff socket (SOCK_SEQPACKET). For every
// exchange the bench process sends one handoff message: a JSON Endpoint,
// with the endpoint's files attached as SCM_RIGHTS (pipe and shm-lock hand
// over a freshly created channel each time; sockets send the address of
// their one listener). The peer then dials it, writes Job.Secret (when
// set), sends one request (payload
// stamped with connection 0 and the exchange's sequence number), reads and
// checks one reply and closes the connection. EOF on the handoff socket
// ends the job: the done reply counts the exchanges.
const RoleConnect = "connect"

// MaxHandoffFiles is the largest number of files one handoff message
// carries.
const MaxHandoffFiles = rendezvous.MaxFiles

// maxHandoffLen bounds the JSON part of a handoff message.
const maxHandoffLen = 4096

// handoffMsg is the JSON part of a handoff message.
type handoffMsg struct {
	Endpoint transports.Endpoint `json:"endpoint"`
	// Size is the payload size of the exchange's request and reply.
	Size int `json:"size"`
	// Private says the endpoint's channel travels only in this message (a
	// pipe or shared-memory channel made for this one exchange): no other
	// process can reach it, so the connection is not proven with the secret.
	Private bool `json:"private,omitempty"`
}

// SendHandoff sends one handoff message over sock: ep as JSON with its
// files attached, and the payload size of the exchange. It is the bench
// side of RoleConnect. private says that ep's channel exists only in these
// files, made for this exchange: the peer then does not prove the
// connection (nobody else could have reached it), so the bench accepts it
// without AcceptProven and neither side adds the secret to the exchange.
func SendHandoff(sock int, ep transports.Endpoint, size int, private bool) error {
	if len(ep.Files) > MaxHandoffFiles {
		return fmt.Errorf("handoff: %d files, at most %d", len(ep.Files), MaxHandoffFiles)
	}
	ep.NumFiles = len(ep.Files)
	b, err := json.Marshal(&handoffMsg{Endpoint: ep, Size: size, Private: private})
	if err != nil {
		return fmt.Errorf("handoff: encoding endpoint: %w", err)
	}
	if len(b) > maxHandoffLen {
		return fmt.Errorf("handoff: endpoint of %d bytes, at most %d", len(b), maxHandoffLen)
	}
	return rendezvous.WithRights(ep.Files, func(oob []byte) error {
		for {
			err = unix.Sendmsg(sock, b, oob, nil, 0)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("handoff: sending endpoint: %w", err)
		}
		return nil
	})
}

// recvHandoff receives one handoff message; io.EOF when the bench closed
// the socket.
func recvHandoff(sock int, buf, oob []byte) (handoffMsg, error) {
	var ep handoffMsg
	var n, oobn, flags int
	var err error
	for {
		n, oobn, flags, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return ep, fmt.Errorf("handoff: receiving: %w", err)
	}
	files, err := rendezvous.Files(oob[:oobn], "ipcbench-handoff")
	if err != nil {
		return ep, fmt.Errorf("handoff: %w", err)
	}
	if n == 0 && oobn == 0 {
		return ep, io.EOF
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		rendezvous.CloseFiles(files)
		return ep, errors.New("handoff: message truncated")
	}
	if err := json.Unmarshal(buf[:n], &ep); err != nil {
		rendezvous.CloseFiles(files)
		return ep, fmt.Errorf("handoff: bad endpoint: %w", err)
	}
	if ep.Endpoint.NumFiles != len(files) {
		rendezvous.CloseFiles(files)
		return ep, fmt.Errorf("handoff: endpoint says %d files, %d arrived", ep.Endpoint.NumFiles, len(files))
	}
	if ep.Size < 0 || ep.Size > frame.DefaultMaxSize {
		rendezvous.CloseFiles(files)
		return ep, fmt.Errorf("handoff: bad size %d", ep.Size)
	}
	ep.Endpoint.Files = files
	return ep, nil
}

// startConnect runs a RoleConnect job in its own goroutine.
func (s *server) startConnect(ctx context.Context, job Job, cfg frame.Config, tr transports.Transport) {
	files, err := s.inherited(job.Endpoint.NumFiles)
	if err != nil || len(files) != 1 {
		rendezvous.CloseFiles(files)
		msg := fmt.Sprintf("connect: want exactly one inherited handoff socket, have %d (%v)", len(files), err)
		s.log.Print(msg)
		s.reply(Reply{Op: OpError, ID: job.ID, Error: msg})
		return
	}
	sctx, sv := s.begin(ctx)
	s.reply(Reply{Op: OpReady, ID: job.ID})
	go func() {
		defer close(sv.done)
		defer sv.cancel()
		handoff := files[0]
		defer handoff.Close()
		cur := &inFlight{fd: int(handoff.Fd())}
		defer cur.end() // before handoff.Close: its number is not shut down after
		var st ConnStats
		var err error
		if sv.onClose(cur.stop) {
			err = connectLoop(sctx, tr, handoff, cfg, job.Secret, &st, cur)
		}
		if err != nil && !sv.isClosing() {
			st.Error = err.Error()
		}
		if !s.finish(sv) {
			return
		}
		r := Reply{Op: OpDone, ID: job.ID, Conns: []ConnStats{st}}
		if st.Error != "" {
			r.Error = fmt.Sprintf("%s connect exchange %d: %s", tr.Name(), st.Messages, st.Error)
			s.log.Print(r.Error)
		}
		s.reply(r)
	}()
}

// inFlight lets a connect job's shutdown end its loop at once: it shuts
// the handoff socket down (a blocked receive returns) and closes the
// connection of the exchange in flight.
type inFlight struct {
	mu    sync.Mutex
	fd    int      // the handoff socket
	c     net.Conn // the exchange's connection, nil between exchanges
	ended bool     // stop ran, or the loop is over (fd may be closed)
}

// stop is the job's shutdown: the loop ends at its next step.
func (f *inFlight) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return
	}
	f.ended = true
	unix.Shutdown(f.fd, unix.SHUT_RDWR)
	if f.c != nil {
		f.c.Close()
	}
}

// end marks the loop over: stop does nothing after it.
func (f *inFlight) end() {
	f.mu.Lock()
	f.ended = true
	f.mu.Unlock()
}

// set records c (nil: none) as the exchange's connection; false, and c
// closed, when the job is shutting down.
func (f *inFlight) set(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended && c != nil {
		c.Close()
		return false
	}
	f.c = c
	return true
}

// connectLoop serves exchanges until the handoff socket reaches EOF, or
// cur is stopped.
func connectLoop(ctx context.Context, tr transports.Transport, handoff *os.File, cfg frame.Config, secret Secret, st *ConnStats, cur *inFlight) error {
	buf := make([]byte, maxHandoffLen)
	oob := make([]byte, rendezvous.OOBSize)
	sock := int(handoff.Fd())
	var req, in []byte
	w, r := frame.NewWriter(nil, cfg), frame.NewReader(nil, cfg)
	for seq := uint64(0); ; seq++ {
		h, err := recvHandoff(sock, buf, oob)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		c, err := tr.Dial(ctx, h.Endpoint)
		rendezvous.CloseFiles(h.Endpoint.Files) // after a failed Dial, still open; after one that worked, closed by Dial already (harmless)
		if err != nil {
			return fmt.Errorf("dialing: %w", err)
		}
		if !cur.set(c) {
			return net.ErrClosed
		}
		if !h.Private {
			if err := Prove(c, secret); err != nil {
				c.Close()
				return err
			}
		}
		n := h.Size
		if cap(req) < n {
			req, in = make([]byte, n), make([]byte, n)
		}
		req, in = req[:n], in[:n]
		frame.Fill(req, 0, seq)
		w.Reset(c)
		r.Reset(c)
		if err := w.WriteMsg(req); err != nil {
			c.Close()
			return fmt.Errorf("writing request: %w", err)
		}
		msg, err := r.ReadMsg(in)
		cur.set(nil)
		c.Close()
		if err != nil {
			return fmt.Errorf("reading reply: %w", err)
		}
		st.Messages++
		st.Bytes += int64(len(msg))
		if len(msg) != n || frame.Check(msg, 0, seq) != nil {
			st.Errors++
		}
	}
}
