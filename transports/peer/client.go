package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipcbench/ipcbench/internal/proc"
	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// ErrFailed means the peer reported that a job failed; the message carries
// the peer's reason.
var ErrFailed = errors.New("peer reported a failure")

// ErrProtocol means the peer sent a reply that breaks the control protocol.
var ErrProtocol = errors.New("peer protocol violation")

// maxPending bounds the replies a Client holds for callers that have not
// asked for them yet.
const maxPending = 64

// Client speaks the typed control protocol to a running peer. Its methods
// are safe for concurrent use: replies are matched to jobs by ID, so a cpu
// reply that arrives while Done is waiting reaches the CPU call that asked
// for it.
type Client struct {
	p    *proc.Peer // nil for a Client over another Link
	link Link

	// sem is held by the caller that is reading from the peer.
	sem chan struct{}

	mu        sync.Mutex
	nextID    uint64
	serveID   uint64              // ID of the last serve job
	pending   []Reply             // read, not yet claimed
	abandoned map[uint64]struct{} // IDs whose callers gave up
	// changed is closed, and replaced, when a reply is put in pending: a
	// caller that waits for sem while another reads looks at pending
	// again then, since the reader may go on to wait for its own reply
	// for as long as that takes.
	changed chan struct{}
}

// testHookBeforeSem, when set (by tests), is called by wait after it
// found no pending reply for id and before it waits for sem or a change.
var testHookBeforeSem func(id uint64)

// Link carries jobs to a peer and replies back, one JSON object each: a
// spawned peer (*proc.Peer) or a stand-alone peer's control connection
// (*Control).
type Link interface {
	// Send writes v as one job line.
	Send(v any) error
	// Recv reads one reply line into v, giving up when ctx ends. Calls
	// are not concurrent.
	Recv(ctx context.Context, v any) error
}

// NewClient returns a Client for p, a peer process this module started
// (its *proc.Peer is internal to the module: a program outside it talks to
// a peer or server it reached itself through NewLinkClient, as to a
// stand-alone server's OpenControl). A peer has at most one Client.
func NewClient(p *proc.Peer) *Client {
	c := NewLinkClient(p)
	c.p = p
	return c
}

// NewLinkClient returns a Client that speaks over l. A link has at most
// one Client.
func NewLinkClient(l Link) *Client {
	return &Client{link: l, sem: make(chan struct{}, 1), abandoned: map[uint64]struct{}{}, changed: make(chan struct{})}
}

// Peer returns the process the Client talks to; nil for a Client made by
// NewLinkClient.
func (c *Client) Peer() *proc.Peer { return c.p }

func (c *Client) newID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return c.nextID
}

// Serve sends job as a serve job and waits until the peer has dialed all
// its connections. job.Op is set to OpServe and job.ID is assigned;
// job.Endpoint.NumFiles is set from len(job.Endpoint.Files) when zero, and
// the files must be the ones the peer inherited (proc.Spec.Attach set
// to the endpoint's AttachTo). A failure the peer reports wraps ErrFailed.
func (c *Client) Serve(ctx context.Context, job Job) error {
	ep := &job.Endpoint
	if ep.NumFiles == 0 {
		ep.NumFiles = len(ep.Files)
	} else if len(ep.Files) > 0 && ep.NumFiles != len(ep.Files) {
		return fmt.Errorf("peer: serve: endpoint says %d files but has %d", ep.NumFiles, len(ep.Files))
	}
	job.Op = OpServe
	job.ID = c.newID()
	if err := c.link.Send(job); err != nil {
		return fmt.Errorf("peer: sending serve job: %w", err)
	}
	r, err := c.wait(ctx, job.ID, OpReady)
	if err != nil {
		return fmt.Errorf("peer: waiting for serve to start: %w", err)
	}
	if r.Op == OpError {
		if r.NotApplicable {
			return fmt.Errorf("peer: serve: %w", &remoteError{msg: r.Error, is: ErrNotApplicable})
		}
		return fmt.Errorf("peer: serve: %w: %s", ErrFailed, r.Error)
	}
	c.mu.Lock()
	c.serveID = job.ID
	c.mu.Unlock()
	return nil
}

// Done waits for the done reply of the last serve job that started (whose
// Serve returned nil): the peer sends it
// once every connection has ended. A connection error is in the returned
// Reply (Reply.Error and ConnStats.Error), not in the error, which reports
// only failures to get the reply (the peer exited, ctx ended).
func (c *Client) Done(ctx context.Context) (Reply, error) {
	c.mu.Lock()
	id := c.serveID
	c.mu.Unlock()
	if id == 0 {
		return Reply{}, fmt.Errorf("peer: Done without a serve job: %w", ErrProtocol)
	}
	r, err := c.wait(ctx, id, OpDone)
	if err != nil {
		return Reply{}, fmt.Errorf("peer: waiting for done: %w", err)
	}
	if r.Op == OpError {
		return Reply{}, fmt.Errorf("peer: %w: %s", ErrFailed, r.Error)
	}
	return r, nil
}

// CPU asks the peer for its CPU time so far (getrusage of the peer
// process). A negative time in the reply is an error wrapping
// ErrProtocol.
func (c *Client) CPU(ctx context.Context) (sysinfo.CPUTime, error) {
	id := c.newID()
	if err := c.link.Send(Job{Op: OpCPU, ID: id}); err != nil {
		return sysinfo.CPUTime{}, fmt.Errorf("peer: sending cpu job: %w", err)
	}
	r, err := c.wait(ctx, id, OpCPU)
	if err != nil {
		return sysinfo.CPUTime{}, fmt.Errorf("peer: waiting for cpu time: %w", err)
	}
	if r.Op == OpError || r.Error != "" {
		return sysinfo.CPUTime{}, fmt.Errorf("peer: cpu: %w: %s", ErrFailed, r.Error)
	}
	if r.UserNS < 0 || r.SysNS < 0 {
		return sysinfo.CPUTime{}, fmt.Errorf("peer: cpu: %w: negative CPU time (user %d ns, sys %d ns)", ErrProtocol, r.UserNS, r.SysNS)
	}
	return sysinfo.CPUTime{User: time.Duration(r.UserNS), System: time.Duration(r.SysNS)}, nil
}

// Header asks a stand-alone peer (Serve) for its environment header, as
// JSON.
func (c *Client) Header(ctx context.Context) (json.RawMessage, error) {
	id := c.newID()
	if err := c.link.Send(Job{Op: OpHeader, ID: id}); err != nil {
		return nil, fmt.Errorf("peer: sending header job: %w", err)
	}
	r, err := c.wait(ctx, id, OpHeader)
	if err != nil {
		return nil, fmt.Errorf("peer: waiting for the header: %w", err)
	}
	if r.Op == OpError {
		return nil, fmt.Errorf("peer: header: %w: %s", ErrFailed, r.Error)
	}
	return r.Header, nil
}

// End tells a stand-alone peer that the connect job's last connection
// was made; Done then waits for the job's done reply.
func (c *Client) End() error {
	if err := c.link.Send(Job{Op: OpEnd, ID: c.newID()}); err != nil {
		return fmt.Errorf("peer: sending end: %w", err)
	}
	return nil
}

// Exit asks the peer to close its connections and exit 0. It does not
// wait; use the proc.Peer (Exited, Close) for that.
func (c *Client) Exit() error {
	if err := c.link.Send(Job{Op: OpExit}); err != nil {
		return fmt.Errorf("peer: sending exit: %w", err)
	}
	return nil
}

// wait returns the reply with the given ID whose Op is op or OpError,
// reading replies from the peer and keeping those meant for others.
func (c *Client) wait(ctx context.Context, id uint64, op string) (Reply, error) {
	c.mu.Lock()
	delete(c.abandoned, id) // asking again for an abandoned job's reply
	c.mu.Unlock()
	for {
		c.mu.Lock()
		r, ok := c.takeLocked(id, op)
		changed := c.changed
		c.mu.Unlock()
		if ok {
			return r, nil
		}
		if testHookBeforeSem != nil {
			testHookBeforeSem(id)
		}
		select {
		case c.sem <- struct{}{}:
		case <-changed:
			// The reader put a reply in pending (maybe this one) and
			// may be reading again, for its own, holding sem.
			continue
		case <-ctx.Done():
			c.abandon(id)
			return Reply{}, ctx.Err()
		}
		r, ok, err := c.readOne(ctx, id, op)
		<-c.sem
		if err != nil {
			c.abandon(id)
			return Reply{}, err
		}
		if ok {
			return r, nil
		}
	}
}

// readOne, called with sem held, returns the pending reply for (id, op) or
// reads one reply from the peer: ok when it is the one asked for, else it
// is kept for its caller.
func (c *Client) readOne(ctx context.Context, id uint64, op string) (Reply, bool, error) {
	if r, ok := c.take(id, op); ok {
		return r, true, nil
	}
	var r Reply
	if err := c.link.Recv(ctx, &r); err != nil {
		return Reply{}, false, err
	}
	switch r.Op {
	case OpReady, OpError, OpDone, OpCPU, OpHeader:
	default:
		return Reply{}, false, fmt.Errorf("%w: unknown reply op %q", ErrProtocol, r.Op)
	}
	if r.ID == 0 && r.Op == OpError {
		// The peer could not decode a job line at all.
		return Reply{}, false, fmt.Errorf("%w: %s", ErrFailed, r.Error)
	}
	if matches(r, id, op) {
		return r, true, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, gone := c.abandoned[r.ID]; gone {
		if r.Op != OpReady { // a serve's done may still follow its ready
			delete(c.abandoned, r.ID)
		}
		return Reply{}, false, nil
	}
	if len(c.pending) >= maxPending {
		return Reply{}, false, fmt.Errorf("%w: more than %d unclaimed replies", ErrProtocol, maxPending)
	}
	c.pending = append(c.pending, r)
	close(c.changed)
	c.changed = make(chan struct{})
	return Reply{}, false, nil
}

func matches(r Reply, id uint64, op string) bool {
	return r.ID == id && (r.Op == op || r.Op == OpError)
}

// take removes and returns a pending reply for (id, op).
func (c *Client) take(id uint64, op string) (Reply, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeLocked(id, op)
}

// takeLocked is take with mu held.
func (c *Client) takeLocked(id uint64, op string) (Reply, bool) {
	for i, r := range c.pending {
		if matches(r, id, op) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return r, true
		}
	}
	return Reply{}, false
}

// abandon records that nobody waits for id any more, dropping replies to it
// that are already pending.
func (c *Client) abandon(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.pending[:0]
	for _, r := range c.pending {
		if r.ID != id {
			kept = append(kept, r)
		}
	}
	c.pending = kept
	c.abandoned[id] = struct{}{}
}

// remoteError is an error the peer reported in words, which already name
// the sentinel it stands for.
type remoteError struct {
	msg string
	is  error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.is }
