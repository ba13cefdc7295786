package peer

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/internal/rendezvous"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// FuzzRecvHandoff sends one arbitrary message, with one descriptor
// attached or none, on a SOCK_SEQPACKET socket pair to recvHandoff, the
// connect role's reader of handoff messages: an empty message without
// descriptors is the end (io.EOF); one longer than maxHandoffLen is an
// error; an accepted one decodes as JSON to the same handoffMsg, says as
// many files as arrived, and has a size within 0..frame.DefaultMaxSize;
// and a refused one leaves no descriptor open.
func FuzzRecvHandoff(f *testing.F) {
	enc := func(m handoffMsg) []byte {
		b, err := json.Marshal(&m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(enc(handoffMsg{Endpoint: transports.Endpoint{Transport: "tcp", Address: "127.0.0.1:40000", BufferSize: 65536}, Size: 64}), false)
	f.Add(enc(handoffMsg{Endpoint: transports.Endpoint{Transport: "pipe", NumFiles: 1, Options: map[string]string{"io": "netpoll"}}, Size: 1 << 20, Private: true}), true)
	f.Add(enc(handoffMsg{Endpoint: transports.Endpoint{Transport: "pipe", NumFiles: 2}, Size: 1}), true)
	f.Add(enc(handoffMsg{Endpoint: transports.Endpoint{Transport: "unix", Address: "/x"}, Size: -1}), false)
	f.Add(enc(handoffMsg{Endpoint: transports.Endpoint{Transport: "unix", Address: "/x"}, Size: frame.DefaultMaxSize + 1}), false)
	f.Add([]byte(`{"endpoint":`), false)
	f.Add(bytes.Repeat([]byte(" "), maxHandoffLen+1), false)
	f.Add([]byte{}, false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, withFile bool) {
		if len(data) > 4*maxHandoffLen {
			data = data[:4*maxHandoffLen] // a longer one says nothing more
		}
		before := openFDs(t)
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		var oob []byte
		if withFile {
			oob = unix.UnixRights(fds[0]) // any descriptor will do
		}
		if err := unix.Sendmsg(fds[0], data, oob, nil, 0); err != nil {
			t.Fatal(err)
		}
		buf, roob := make([]byte, maxHandoffLen), make([]byte, rendezvous.OOBSize)
		m, err := recvHandoff(fds[1], buf, roob)
		unix.Close(fds[0])
		unix.Close(fds[1])
		files := 0
		if withFile {
			files = 1
		}
		if err != nil {
			if len(data) == 0 && !withFile && err != io.EOF {
				t.Fatalf("an empty message: %v, want io.EOF", err)
			}
			if n := openFDs(t); n != before {
				t.Fatalf("refusing %q (error %v) left %d descriptors open, had %d", data, err, n, before)
			}
			return
		}
		defer rendezvous.CloseFiles(m.Endpoint.Files)
		if len(data) > maxHandoffLen {
			t.Fatalf("accepted a message of %d bytes, more than %d", len(data), maxHandoffLen)
		}
		if m.Size < 0 || m.Size > frame.DefaultMaxSize {
			t.Fatalf("accepted size %d", m.Size)
		}
		if m.Endpoint.NumFiles != files || len(m.Endpoint.Files) != files {
			t.Fatalf("%d files sent, the message says %d and has %d", files, m.Endpoint.NumFiles, len(m.Endpoint.Files))
		}
		var want handoffMsg
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("accepted %q, which is not JSON: %v", data, err)
		}
		got := m
		got.Endpoint.Files = nil
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Fatalf("recvHandoff(%q) = %s, JSON says %s", data, g, w)
		}
	})
}
