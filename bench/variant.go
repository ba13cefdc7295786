package bench

import (
	"github.com/ipcbench/ipcbench/transports"
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
}

// spec returns s as a transports.Spec.
func (s TransportSpec) spec() transports.Spec {
	return transports.Spec{Name: s.Transport.Name(), Options: s.Options}
}

// Variant returns the canonical variant name: the options as sorted
// "key=value" pairs joined by commas, or "" for the default.
func (s TransportSpec) Variant() string { return s.spec().Variant() }

// Label is the name reports show: "unix" or "shm-ring[wait=spin]".
func (s TransportSpec) Label() string { return s.spec().String() }
