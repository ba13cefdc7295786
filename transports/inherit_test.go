package transports_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
)

// childEnv makes the test binary, re-executed by TestAttachToChild, act as
// the child: it reads the endpoint it was handed and reports it on stdout.
const childEnv = "TRANSPORTS_TEST_CHILD"

// childReport is what the child prints: the endpoint it rebuilt (without
// files), what each file held, and the error of a second call.
type childReport struct {
	Endpoint transports.Endpoint `json:"endpoint"`
	Texts    []string            `json:"texts"`
	Again    string              `json:"again"`
	Err      string              `json:"err,omitempty"`
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

func child() int {
	var r childReport
	ep, err := transports.InheritedEndpoint()
	if err != nil {
		r.Err = err.Error()
	}
	for _, f := range ep.Files {
		b, err := io.ReadAll(f)
		if err != nil {
			r.Err = err.Error()
		}
		r.Texts = append(r.Texts, string(b))
		f.Close()
	}
	ep.Files = nil
	r.Endpoint = ep
	_, err = transports.InheritedEndpoint()
	if errors.Is(err, transports.ErrBadEndpoint) {
		r.Again = "ErrBadEndpoint"
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

// pipeWith returns the read end of a pipe holding text, closed at the end
// of the test.
func pipeWith(t *testing.T, text string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := w.WriteString(text); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return r
}

// TestAttachToChild hands an endpoint to a re-executed child after an
// unrelated extra file, so that its files do not start at descriptor 3.
func TestAttachToChild(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{pipeWith(t, "not the endpoint's")}
	ep := transports.Endpoint{
		Transport:  "pipe",
		Address:    "addr",
		BufferSize: 4096,
		Options:    map[string]string{"io": "raw"},
		Index:      1,
		Files:      []*os.File{pipeWith(t, "first"), pipeWith(t, "second")},
	}
	if err := ep.AttachTo(cmd); err != nil {
		t.Fatal(err)
	}
	if len(cmd.ExtraFiles) != 3 {
		t.Fatalf("ExtraFiles has %d files, want 3", len(cmd.ExtraFiles))
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var got childReport
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("child said %q: %v", out, err)
	}
	wantEP := ep
	wantEP.Files, wantEP.NumFiles = nil, 2
	want := childReport{Endpoint: wantEP, Texts: []string{"first", "second"}, Again: "ErrBadEndpoint"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("child saw %+v, want %+v", got, want)
	}
}

func TestAttachToRefuses(t *testing.T) {
	f := pipeWith(t, "")
	for name, ep := range map[string]transports.Endpoint{
		"count differs": {Transport: "pipe", NumFiles: 2, Files: []*os.File{f}},
		"nil file":      {Transport: "pipe", Files: []*os.File{f, nil}},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("true")
			if err := ep.AttachTo(cmd); !errors.Is(err, transports.ErrBadEndpoint) {
				t.Fatalf("AttachTo = %v, want ErrBadEndpoint", err)
			}
			if len(cmd.ExtraFiles) != 0 || cmd.Env != nil {
				t.Fatalf("a refused AttachTo changed the command: %d files, env %v", len(cmd.ExtraFiles), cmd.Env)
			}
		})
	}
}

func TestInheritedEndpointErrors(t *testing.T) {
	tests := []struct {
		name, value, want string
		set               bool
	}{
		{"unset", "", "is not set", false},
		{"malformed", "{", transports.EndpointEnv, true},
		{"files without a descriptor", `{"endpoint":{"transport":"pipe","files":1}}`, "1 files from descriptor 0", true},
		{"descriptor not open", fmt.Sprintf(`{"endpoint":{"transport":"pipe","files":2},"first_fd":%d}`, 1<<20), "was not inherited", true},
		{"empty object", `{}`, `no "endpoint"`, true},
		{"null", `null`, "not a JSON object", true},
		{"not an object", `[1]`, "not a JSON object", true},
		{"endpoint fields at the top", `{"transport":"pipe","files":2}`, `no "endpoint"`, true},
		{"endpoint null", `{"endpoint":null}`, "names no transport", true},
		{"no transport", `{"endpoint":{"files":0}}`, "names no transport", true},
		{"files a list", `{"endpoint":{"transport":"pipe","files":[3,4]},"first_fd":3}`, "files", true},
		{"negative file count", `{"endpoint":{"transport":"pipe","files":-1}}`, "has -1 files", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set {
				t.Setenv(transports.EndpointEnv, tt.value)
			} else {
				t.Setenv(transports.EndpointEnv, "")
				os.Unsetenv(transports.EndpointEnv)
			}
			ep, err := transports.InheritedEndpoint()
			if !errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("InheritedEndpoint = %+v, %v; want ErrBadEndpoint containing %q", ep, err, tt.want)
			}
		})
	}
}

// TestInheritedEndpointOwnDescriptor names, as the endpoint's file, a
// descriptor this process opened itself (close-on-exec, as Go opens every
// descriptor and exec would have closed it): an endpoint that says it has
// more files than the parent handed down must not take the process's own.
func TestInheritedEndpointOwnDescriptor(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd, err := unix.FcntlInt(r.Fd(), unix.F_DUPFD_CLOEXEC, firstFD)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(transports.EndpointEnv, fmt.Sprintf(`{"endpoint":{"transport":"pipe","files":1},"first_fd":%d}`, fd))
	ep, err := transports.InheritedEndpoint()
	if err == nil {
		for _, f := range ep.Files {
			f.Close() // fd
		}
		t.Fatalf("InheritedEndpoint took descriptor %d, which this process opened: %+v", fd, ep)
	}
	unix.Close(fd)
	if !errors.Is(err, transports.ErrBadEndpoint) || !strings.Contains(err.Error(), "close-on-exec") {
		t.Fatalf("InheritedEndpoint = %v, want ErrBadEndpoint saying the descriptor is close-on-exec", err)
	}
}

// firstFD is the lowest descriptor an endpoint file can have in a child:
// exec.Cmd.ExtraFiles start after standard input, output and error.
const firstFD = 3
