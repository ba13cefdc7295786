package rendezvous

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
)

// FuzzDecodeMessage checks decodeMessage, the dialer's decoder of the one
// message a rendezvous listener sends: the listener's refusal ({"error"})
// gives an error that names its reason; every other error wraps
// transports.ErrBadEndpoint; an accepted endpoint is of the transport
// asked for, says as many files as arrived, has no Files of its own, and
// the message send makes of it decodes to the same endpoint.
func FuzzDecodeMessage(f *testing.F) {
	enc := func(m message) []byte {
		b, err := json.Marshal(&m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(enc(message{Endpoint: &transports.Endpoint{Transport: "pipe", BufferSize: 65536, NumFiles: 2}}), "pipe", uint8(2))
	f.Add(enc(message{Endpoint: &transports.Endpoint{Transport: "shm-ring", NumFiles: 3, Options: map[string]string{"ring_bytes": "65536", "wait": "futex"}}}), "shm-ring", uint8(3))
	f.Add(enc(message{Endpoint: &transports.Endpoint{Transport: "pipe", NumFiles: 2}}), "shm-lock", uint8(2))
	f.Add(enc(message{Endpoint: &transports.Endpoint{Transport: "pipe", NumFiles: 2}}), "pipe", uint8(1))
	f.Add(enc(message{Error: "making a pipe: too many open files"}), "pipe", uint8(0))
	f.Add([]byte(`{"endpoint":null,"error":""}`), "pipe", uint8(0))
	f.Add([]byte(`{"endpoint":{"transport":"pipe","files":-1}}`), "pipe", uint8(0))
	f.Add([]byte(`{"endpoint":`), "pipe", uint8(0))
	f.Add([]byte{}, "", uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, transport string, nfiles uint8) {
		files := int(nfiles) % (MaxFiles + 1)
		ep, err := decodeMessage(b, transport, files)
		if err != nil {
			var m message
			if json.Unmarshal(b, &m) == nil && m.Error != "" {
				if !strings.Contains(err.Error(), m.Error) {
					t.Fatalf("decodeMessage(%q): the refusal %q is not in the error %v", b, m.Error, err)
				}
				return
			}
			if !errors.Is(err, transports.ErrBadEndpoint) {
				t.Fatalf("decodeMessage(%q, %q, %d): error does not wrap ErrBadEndpoint: %v", b, transport, files, err)
			}
			return
		}
		if ep.Transport != transport || ep.NumFiles != files || ep.Files != nil {
			t.Fatalf("decodeMessage(%q, %q, %d) = %+v", b, transport, files, ep)
		}
		again, err := decodeMessage(enc(message{Endpoint: &ep}), transport, files)
		if err != nil {
			t.Fatalf("decodeMessage(%q) = %+v, whose message does not decode: %v", b, ep, err)
		}
		x, _ := json.Marshal(ep)
		y, _ := json.Marshal(again)
		if !bytes.Equal(x, y) {
			t.Fatalf("decodeMessage(%q) = %s, whose message decodes to %s", b, x, y)
		}
	})
}
