package bench

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/ipcbench/ipcbench/internal/hist"
)

// TestHTTPLoopChecksBodies runs the http workload's client loop against an
// in-process server that echoes correctly, then against one that flips a
// byte of every second response: each bad body is counted as an error.
func TestHTTPLoopChecksBodies(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if n++; corrupt && n%2 == 0 {
				b[len(b)/2] ^= 1
			}
			w.Write(b)
		})}
		go srv.Serve(ln)
		cliConn, err := net.Dial("unix", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		cr := &caseRun{spec: CaseSpec{Size: 1000}, limit: 20}
		cr.measure.Store(true)
		h := hist.New()
		msgs, errs, err := httpLoop(cr, cliConn, 0, h)
		srv.Close()
		cliConn.Close()
		if err != nil || msgs != 20 || h.Count() != 20 {
			t.Fatalf("corrupt %v: %d messages, %d timed, err %v", corrupt, msgs, h.Count(), err)
		}
		if want := map[bool]int64{false: 0, true: 10}[corrupt]; errs != want {
			t.Errorf("corrupt %v: %d errors, want %d", corrupt, errs, want)
		}
	}
}
