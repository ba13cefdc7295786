package bench

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// FuzzServerHeader checks serverHeader, run -connect's reading of the
// environment header an ipcbench serve sends: an accepted header names no
// transport or one whose spec parses to the transport asked for; the
// address a refusal tells to -connect to is the one dialed or, for a
// control socket, the address beside it (never empty); and what the run
// keeps of an accepted header (PeerTool, PeerMachine) makes a raw header
// that ReadRecords reads back to the same values.
func FuzzServerHeader(f *testing.F) {
	enc := func(h Header) []byte {
		b, err := json.Marshal(h)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	machine := map[string]string{"kernel": "6.8.0", "cores": "2", "hostname": "h"}
	f.Add(enc(Header{Tool: "ipcbench v1", Machine: machine, Options: map[string]string{"transport": "unix", "listen": "/run/x.sock"}}), "unix", "/run/x.sock")
	f.Add(enc(Header{Tool: "ipcbench v1", Options: map[string]string{"transport": "pipe", "listen": "/run/p", "control": "/run/p.control"}}), "unix", "/run/p.control")
	f.Add(enc(Header{Tool: "ipcbench v1", Options: map[string]string{"transport": "shm-ring:wait=futex"}}), "shm-ring", "/run/r")
	f.Add(enc(Header{Options: map[string]string{"transport": "tcp:nodelay=maybe"}}), "tcp", "127.0.0.1:1")
	f.Add(enc(Header{Options: map[string]string{"control": "x"}}), "unix", ".control")
	f.Add([]byte("null"), "unix", "/x")
	f.Add([]byte(`{"machine":{"a":1}}`), "unix", "/x")
	f.Add([]byte(`{"tool":"\u003c\ufffd"}`), "unix", "/x")
	f.Fuzz(func(t *testing.T, raw []byte, want, addr string) {
		ph, err := serverHeader(raw, want, addr)
		if err != nil {
			var h Header
			if json.Unmarshal(raw, &h) != nil {
				return
			}
			server := serverAddress(addr, h)
			if server == "" || (server != addr && server+peer.ControlSuffix != addr) {
				t.Fatalf("serverAddress(%q) = %q", addr, server)
			}
			return
		}
		if served := ph.Options["transport"]; served != "" {
			sp, err := transports.ParseSpec(served)
			if err != nil || sp.Name != want {
				t.Fatalf("serverHeader accepted transport %q for %q: %+v, %v", served, want, sp, err)
			}
		}
		hdr := Header{Time: time.Unix(0, 0).UTC(), Tool: "ipcbench fuzz", Network: "host", Peer: "serve " + addr, PeerTool: ph.Tool, PeerMachine: ph.Machine}
		var buf bytes.Buffer
		if err := NewRecordWriter(&buf).WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		recs, err := ReadRecords(&buf, "fuzz.jsonl")
		if err != nil {
			t.Fatalf("the raw header of server header %q does not read back: %v", raw, err)
		}
		got := recs.Header
		if got.PeerTool != ph.Tool || len(got.PeerMachine) != len(ph.Machine) {
			t.Fatalf("server header %q: read back peer tool %q, machine %v; kept %q, %v", raw, got.PeerTool, got.PeerMachine, ph.Tool, ph.Machine)
		}
	})
}
