package bench

import (
	"maps"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TransportSpec is a transport with the options of one named variant.
// docs/methodology.md §11: an option that helps one transport (larger
// buffers, busy waiting, raw syscalls) is a named variant in the results,
// never a silent default; the default variant has no options.
//
// Programs build it from the strings users type with package
// transports/all: all.Resolve and all.ResolveList give the transport and
// the checked options. NewRunner checks the options of every transport
// that implements transports.OptionChecker before anything runs.
type TransportSpec struct {
	Transport transports.Transport
	// Options are passed to Listen (and travel to the peer's Dial).
	Options map[string]string
	// PeerModel is the server model the peer serves the connections with
	// (peer.Models: goroutine, thread, process, poll); empty means
	// peer.ModelGoroutine. Any other model is part of the variant, as
	// "model=thread", so that reports rank the models as variants.
	PeerModel string
}

// ModelKey is the key under which a TransportSpec's PeerModel appears in
// its Variant and Label ("unix[model=poll]").
const ModelKey = "model"

// spec returns s as a transports.Spec for naming: its options, plus the
// peer model unless it is the default.
func (s TransportSpec) spec() transports.Spec {
	sp := transports.Spec{Name: s.Transport.Name(), Options: s.Options}
	if m := s.Model(); m != peer.ModelGoroutine {
		sp.Options = maps.Clone(s.Options)
		if sp.Options == nil {
			sp.Options = map[string]string{}
		}
		sp.Options[ModelKey] = m
	}
	return sp
}

// Model returns the peer's server model: PeerModel, or
// peer.ModelGoroutine when it is empty.
func (s TransportSpec) Model() string {
	if s.PeerModel == "" {
		return peer.ModelGoroutine
	}
	return s.PeerModel
}

// Variant returns the canonical variant name: the options (and a peer
// model other than the default) as sorted "key=value" pairs joined by
// commas, or "" for the default.
func (s TransportSpec) Variant() string { return s.spec().Variant() }

// Label is the name reports show: "unix", "shm-ring[wait=spin]" or
// "unix[model=thread]".
func (s TransportSpec) Label() string { return s.spec().String() }
