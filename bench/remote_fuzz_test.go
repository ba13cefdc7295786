package bench

import (
	"bytes"
	"encoding/json"
	"maps"
	"strings"
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
		if got.PeerTool != ph.Tool || !maps.Equal(got.PeerMachine, ph.Machine) {
			t.Fatalf("server header %q: read back peer tool %q, machine %v; kept %q, %v", raw, got.PeerTool, got.PeerMachine, ph.Tool, ph.Machine)
		}
	})
}

// TestServerHeaderTooLarge: a server header within a control line's limit
// whose machine facts grow when the raw header is written (JSON escapes
// each '<' as six bytes) is refused, instead of making a raw file whose
// header line ReadRecords cannot read.
func TestServerHeaderTooLarge(t *testing.T) {
	raw := []byte(`{"machine":{"cpu_model":"` + strings.Repeat("<", 800<<10) + `"}}`)
	ph, err := serverHeader(raw, "unix", "/x")
	if err == nil {
		hdr := Header{PeerMachine: ph.Machine}
		var buf bytes.Buffer
		if err := NewRecordWriter(&buf).WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		_, rerr := ReadRecords(&buf, "big.jsonl")
		t.Fatalf("serverHeader accepted a header of %d bytes; its raw header (%d bytes) reads back with %v", len(raw), buf.Len(), rerr)
	}
	if !strings.Contains(err.Error(), "header") {
		t.Errorf("error %q does not say it is about the header", err)
	}
}
