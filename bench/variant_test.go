package bench

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
)

func TestParseTransportSpecs(t *testing.T) {
	specs, err := ParseTransportSpecs("unix, tcp-localhost[nodelay=false], pipe[b=2,a=1]", all.List(), all.Lookup)
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, s := range specs {
		labels = append(labels, s.Label())
	}
	if got, want := strings.Join(labels, " "), "unix tcp-localhost[nodelay=false] pipe[a=1,b=2]"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
	specs, err = ParseTransportSpecs("all", all.List(), all.Lookup)
	if err != nil || len(specs) != len(all.List()) {
		t.Errorf("all: %d specs, %v", len(specs), err)
	}
	for _, bad := range []string{"", "unix[", "unix]", "unix[a]", "unix[a=1,a=2]", "unix[[a=1]]", "unix[a=1]x", "all[a=1]"} {
		if _, err := ParseTransportSpecs(bad, all.List(), all.Lookup); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%q: err %v, want ErrBadOptions", bad, err)
		}
	}
	if _, err := ParseTransportSpecs("carrier-pigeon", all.List(), all.Lookup); !errors.Is(err, transports.ErrUnknownTransport) {
		t.Errorf("unknown: %v", err)
	}
}
