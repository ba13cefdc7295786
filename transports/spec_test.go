package transports

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in, label, variant string
	}{
		{"unix", "unix", ""},
		{" unix ", "unix", ""},
		{"unix[]", "unix", ""},
		{"shm-ring[wait=spin]", "shm-ring[wait=spin]", "wait=spin"},
		{"pipe[ b = 2 , a=1 ,]", "pipe[a=1,b=2]", "a=1,b=2"},
		{"tcp-localhost[nodelay=false]", "tcp-localhost[nodelay=false]", "nodelay=false"},
		{"x[k=a=b]", "x[k=a=b]", "k=a=b"},
	}
	for _, tt := range tests {
		sp, err := ParseSpec(tt.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if got := sp.String(); got != tt.label {
			t.Errorf("ParseSpec(%q).String() = %q, want %q", tt.in, got, tt.label)
		}
		if got := sp.Variant(); got != tt.variant {
			t.Errorf("ParseSpec(%q).Variant() = %q, want %q", tt.in, got, tt.variant)
		}
		again, err := ParseSpec(sp.String())
		if err != nil || again.Name != sp.Name || !maps.Equal(again.Options, sp.Options) {
			t.Errorf("%q does not round-trip: %+v, %v", sp.String(), again, err)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		in, problem string
	}{
		{"", "no transport name"},
		{"  ", "no transport name"},
		{"[a=1]", "no transport name"},
		{"unix[", `missing "]"`},
		{"unix]", `unbalanced "]"`},
		{"unix[a]", `option "a" is not key=value`},
		{"unix[a=]", `option "a=" is not key=value`},
		{"unix[=1]", `option "=1" is not key=value`},
		{"unix[a=1,a=2]", `option "a" given twice`},
		{"unix[[a=1]]", "nested"},
		{"unix[a=1]x", `text after "]"`},
		{"unix,pipe", `"," outside brackets`},
		{"un ix", `transport name "un ix"`},
		{"unix[a b=1]", `option key "a b"`},
	}
	for _, tt := range tests {
		sp, err := ParseSpec(tt.in)
		var se *SpecError
		if !errors.Is(err, ErrBadSpec) || !errors.As(err, &se) {
			t.Errorf("ParseSpec(%q) = %+v, %v; want a *SpecError wrapping ErrBadSpec", tt.in, sp, err)
			continue
		}
		if se.Spec != tt.in || !strings.Contains(se.Problem, tt.problem) {
			t.Errorf("ParseSpec(%q): %+v; want Spec %q and a problem naming %q", tt.in, se, tt.in, tt.problem)
		}
		if want := `transport spec "` + tt.in + `": `; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("ParseSpec(%q): message %q does not start with %q", tt.in, err, want)
		}
	}
}

func TestParseSpecList(t *testing.T) {
	specs, err := ParseSpecList("unix, tcp-localhost[nodelay=false,sndbuf=1MiB], ,pipe[b=2,a=1],all")
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, s := range specs {
		labels = append(labels, s.String())
	}
	if got, want := strings.Join(labels, " "), "unix tcp-localhost[nodelay=false,sndbuf=1MiB] pipe[a=1,b=2] all"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
	for _, bad := range []struct{ in, item string }{
		{"", ""},
		{" , ", " , "},
		{"unix],pipe", "unix]"},
		{"pipe,unix[a]", "unix[a]"},
		{"unix[a=1", "unix[a=1"},
	} {
		_, err := ParseSpecList(bad.in)
		var se *SpecError
		if !errors.Is(err, ErrBadSpec) || !errors.As(err, &se) || se.Spec != bad.item {
			t.Errorf("ParseSpecList(%q) = %v; want a *SpecError for %q wrapping ErrBadSpec", bad.in, err, bad.item)
		}
	}
}
