package bench

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ipcbench/ipcbench/transports"
)

// TransportSpec is a transport with the options of one named variant.
// docs/methodology.md §11: an option that helps one transport (larger
// buffers, busy waiting, raw syscalls) is a named variant in the results,
// never a silent default; the default variant has no options.
type TransportSpec struct {
	Transport transports.Transport
	// Options are passed to Listen (and travel to the peer's Dial).
	Options map[string]string
}

// Variant returns the canonical variant name: the options as sorted
// "key=value" pairs joined by commas, or "" for the default.
func (s TransportSpec) Variant() string {
	if len(s.Options) == 0 {
		return ""
	}
	keys := make([]string, 0, len(s.Options))
	for k := range s.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + s.Options[k]
	}
	return strings.Join(parts, ",")
}

// Label is the name reports show: "unix" or "shm-ring[wait=spin]".
func (s TransportSpec) Label() string {
	if v := s.Variant(); v != "" {
		return s.Transport.Name() + "[" + v + "]"
	}
	return s.Transport.Name()
}

// ParseTransportSpecs parses a comma-separated list of transports, each
// optionally followed by variant options in brackets:
//
//	tcp-localhost,unix,tcp-localhost[nodelay=false],pipe[pipe_size=1MiB]
//
// "all" expands to every transport of list. lookup resolves a name.
func ParseTransportSpecs(s string, list []transports.Transport, lookup func(string) (transports.Transport, error)) ([]TransportSpec, error) {
	items, err := splitTopLevel(s)
	if err != nil {
		return nil, err
	}
	var out []TransportSpec
	for _, it := range items {
		name, opts, err := parseItem(it)
		if err != nil {
			return nil, err
		}
		if name == "all" {
			if len(opts) > 0 {
				return nil, fmt.Errorf("%w: %q: \"all\" takes no options", ErrBadOptions, it)
			}
			for _, t := range list {
				out = append(out, TransportSpec{Transport: t})
			}
			continue
		}
		t, err := lookup(name)
		if err != nil {
			return nil, err
		}
		out = append(out, TransportSpec{Transport: t, Options: opts})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no transports given", ErrBadOptions)
	}
	return out, nil
}

// splitTopLevel splits s at commas outside brackets.
func splitTopLevel(s string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
			if depth > 1 {
				return nil, fmt.Errorf("%w: %q: nested brackets", ErrBadOptions, s)
			}
		case ']':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("%w: %q: unbalanced ]", ErrBadOptions, s)
			}
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%w: %q: missing ]", ErrBadOptions, s)
	}
	out = append(out, strings.TrimSpace(s[start:]))
	var kept []string
	for _, o := range out {
		if o != "" {
			kept = append(kept, o)
		}
	}
	return kept, nil
}

// parseItem parses "name" or "name[k=v,k=v]".
func parseItem(it string) (string, map[string]string, error) {
	open := strings.IndexByte(it, '[')
	if open < 0 {
		return it, nil, nil
	}
	if !strings.HasSuffix(it, "]") {
		return "", nil, fmt.Errorf("%w: %q: text after ]", ErrBadOptions, it)
	}
	name := strings.TrimSpace(it[:open])
	opts := map[string]string{}
	for _, kv := range strings.Split(it[open+1:len(it)-1], ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return "", nil, fmt.Errorf("%w: %q: option %q is not key=value", ErrBadOptions, it, kv)
		}
		if _, dup := opts[k]; dup {
			return "", nil, fmt.Errorf("%w: %q: option %q given twice", ErrBadOptions, it, k)
		}
		opts[k] = v
	}
	if len(opts) == 0 {
		opts = nil
	}
	return name, opts, nil
}
