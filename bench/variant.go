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
	// PeerSource is how the peer reaches the bench (PeerSources: inherit,
	// address, serve); empty means SourceInherit. Any other source is part
	// of the variant, as "via=address", so that reports rank the sources
	// as variants.
	PeerSource string
}

// Peer sources: how a case's peer is started and reaches the bench's
// listener (Options.PeerSources).
const (
	// SourceInherit is a peer process spawned per case that inherits its
	// channels (pipe, shm-*: prepared at Listen and handed down as files;
	// sockets: it dials the listener's address, which it inherits).
	SourceInherit = "inherit"
	// SourceAddress is a peer process spawned per case that connects by
	// address as an unrelated process would: for pipe and shm-* through
	// the listener's rendezvous socket, each dial a fresh channel. For
	// sockets it is what SourceInherit already measures, so such a case is
	// skipped with that reason rather than run twice.
	SourceAddress = "address"
	// SourceServe is a stand-alone server started per case (`ipcbench
	// serve -t SPEC -listen ADDRESS`, the peer's executable with those
	// arguments) and measured as Options.Remote measures one, then stopped
	// with SIGTERM.
	SourceServe = "serve"
	// SourceConnect appears in records only, never among PeerSources: the
	// peer was a server already running at the address the run was given
	// (Options.Remote, `ipcbench run -connect`), started by someone else
	// with a server model the run does not know, so such records leave
	// their peer model empty.
	SourceConnect = "connect"
)

// PeerSources returns the peer sources, SourceInherit first.
func PeerSources() []string { return []string{SourceInherit, SourceAddress, SourceServe} }

// SourceKey is the key under which a TransportSpec's PeerSource appears in
// its Variant and Label ("pipe[via=address]").
const SourceKey = "via"

// ModelKey is the key under which a TransportSpec's PeerModel appears in
// its Variant and Label ("unix[model=poll]").
const ModelKey = "model"

// spec returns s as a transports.Spec for naming: its options, plus the
// peer model unless it is the default.
func (s TransportSpec) spec() transports.Spec {
	sp := s.transportSpec()
	cloned := false
	set := func(k, v string) {
		if !cloned {
			sp.Options, cloned = maps.Clone(s.Options), true
			if sp.Options == nil {
				sp.Options = map[string]string{}
			}
		}
		sp.Options[k] = v
	}
	if m := s.Model(); m != peer.ModelGoroutine {
		set(ModelKey, m)
	}
	if src := s.Source(); src != SourceInherit {
		set(SourceKey, src)
	}
	return sp
}

// Source returns how the peer reaches the bench: PeerSource, or
// SourceInherit when it is empty.
func (s TransportSpec) Source() string {
	if s.PeerSource == "" {
		return SourceInherit
	}
	return s.PeerSource
}

// transportSpec returns s as the transport spec a user types, its options
// only: no peer model or source, which are the runner's.
func (s TransportSpec) transportSpec() transports.Spec {
	return transports.Spec{Name: s.Transport.Name(), Options: s.Options}
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
// model or source other than the default) as sorted "key=value" pairs joined by
// commas, or "" for the default.
func (s TransportSpec) Variant() string { return s.spec().Variant() }

// Label is the name reports show: "unix", "shm-ring[wait=spin]",
// "unix[model=thread]" or "pipe[via=address]".
func (s TransportSpec) Label() string { return s.spec().String() }

// CanonicalLabel is Label with each option value in its one spelling and
// without the options that spell out a default of the transport
// (transports.Canonical): "unix" for "unix[io=netpoll]",
// "unix[sndbuf=256KiB]" for "unix[sndbuf=262144]". Two specs with one
// canonical label are one variant.
func (s TransportSpec) CanonicalLabel() string {
	s.Options = transports.Canonical(s.Transport, s.transportSpec()).Options
	return s.Label()
}
