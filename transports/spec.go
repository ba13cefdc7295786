package transports

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// ErrBadSpec means a transport spec is malformed: brackets that do not
// pair, an option that is not key=value or is given twice, no name.
var ErrBadSpec = errors.New("bad transport spec")

// Spec is a transport spec as users write it: a transport name, optionally
// followed by a variant's options in brackets,
//
//	unix
//	shm-ring[wait=spin]
//	tcp-localhost[nodelay=false,sndbuf=1MiB]
//
// The name is not resolved here and the options are not checked against
// any transport: package transports/all does both (all.Resolve).
type Spec struct {
	// Name is the transport's name ("shm-ring"), or "all" where a list
	// allows it.
	Name string
	// Options are the variant's key=value settings, nil for the default
	// variant. They go to Config.Options.
	Options map[string]string
}

// SpecError reports a transport spec that cannot be used, and what is wrong
// with it. It unwraps to ErrBadSpec (malformed), ErrUnknownTransport (no
// transport has the name) or a transport's own error wrapping ErrBadOption
// (an option key or value the transport does not accept), so callers test
// it with errors.Is and read the spec with errors.As.
type SpecError struct {
	// Spec is the text as given: one spec, or the list it was found in.
	Spec string
	// Problem says what is wrong, for people: `missing "]"`,
	// `unix: unknown option nodelay (known: sndbuf, rcvbuf, io)`, ...
	Problem string
	// Err is the sentinel or transport error the SpecError unwraps to.
	Err error
}

// Error returns `transport spec "SPEC": PROBLEM`.
func (e *SpecError) Error() string {
	return "transport spec " + strconv.Quote(e.Spec) + ": " + e.Problem
}

// Unwrap returns e.Err.
func (e *SpecError) Unwrap() error { return e.Err }

// badSpec returns a *SpecError wrapping ErrBadSpec.
func badSpec(spec, problem string) error {
	return &SpecError{Spec: spec, Problem: problem, Err: ErrBadSpec}
}

// ParseSpec parses one transport spec ("shm-ring[wait=spin]"). Spaces
// around the name, the options, keys and values are ignored. A malformed
// spec gives a *SpecError wrapping ErrBadSpec.
func ParseSpec(s string) (Spec, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return Spec{}, badSpec(s, "no transport name")
	}
	open := strings.IndexByte(text, '[')
	name, inner := text, ""
	if open >= 0 {
		if !strings.HasSuffix(text, "]") {
			if strings.Contains(text[open:], "]") {
				return Spec{}, badSpec(s, `text after "]"`)
			}
			return Spec{}, badSpec(s, `missing "]"`)
		}
		name, inner = strings.TrimSpace(text[:open]), text[open+1:len(text)-1]
		if strings.ContainsAny(inner, "[]") {
			return Spec{}, badSpec(s, `nested or unbalanced brackets`)
		}
	}
	if strings.Contains(name, "]") {
		return Spec{}, badSpec(s, `unbalanced "]"`)
	}
	if strings.Contains(name, ",") {
		return Spec{}, badSpec(s, `"," outside brackets: one spec expected, not a list`)
	}
	if name == "" {
		return Spec{}, badSpec(s, "no transport name")
	}
	if !validWord(name) {
		return Spec{}, badSpec(s, "transport name "+strconv.Quote(name)+" has characters other than letters, digits, '-', '_' and '.'")
	}
	var opts map[string]string
	for _, kv := range strings.Split(inner, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return Spec{}, badSpec(s, "option "+strconv.Quote(kv)+" is not key=value")
		}
		if !validWord(k) {
			return Spec{}, badSpec(s, "option key "+strconv.Quote(k)+" has characters other than letters, digits, '-', '_' and '.'")
		}
		if _, dup := opts[k]; dup {
			return Spec{}, badSpec(s, "option "+strconv.Quote(k)+" given twice")
		}
		if opts == nil {
			opts = map[string]string{}
		}
		opts[k] = v
	}
	return Spec{Name: name, Options: opts}, nil
}

// ParseSpecList parses a comma-separated list of transport specs, the
// commas inside brackets belonging to the options:
//
//	unix,tcp-localhost[nodelay=false],pipe[pipe_size=1MiB,io=raw]
//
// Empty items are skipped; a list with none gives a *SpecError wrapping
// ErrBadSpec, as does any malformed item (the error names that item).
func ParseSpecList(s string) ([]Spec, error) {
	var out []Spec
	for _, item := range splitList(s) {
		if strings.TrimSpace(item) == "" {
			continue
		}
		sp, err := ParseSpec(item)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	if len(out) == 0 {
		return nil, badSpec(s, "no transports given")
	}
	return out, nil
}

// splitList splits s at the commas outside brackets. A stray "]" closes
// nothing, so the comma after it still separates items and ParseSpec
// reports the item that holds it.
func splitList(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '[':
			depth++
		case ']':
			depth = max(depth-1, 0)
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// validWord reports whether w is a name or option key: letters, digits,
// '-', '_' and '.'.
func validWord(w string) bool {
	for _, c := range w {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return w != ""
}

// Variant returns the canonical name of the spec's variant: its options as
// "key=value" pairs sorted by key and joined by commas, or "" for the
// default variant (no options).
func (s Spec) Variant() string {
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

// String returns the canonical spec, the label reports show: "unix", or
// "shm-ring[spin_ns=500,wait=adaptive]" with the options sorted by key.
// ParseSpec(s.String()) gives back s.
func (s Spec) String() string {
	if v := s.Variant(); v != "" {
		return s.Name + "[" + v + "]"
	}
	return s.Name
}
