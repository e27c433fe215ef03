package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/testprog"
)

// protocolRecorder speaks the agent side of the protocol as
// docs/server.md has it, enrolling with one enrolment token, and keeps
// the batches it is sent. (The end-to-end tests run the real server.)
type protocolRecorder struct {
	enrolToken string
	mu         sync.Mutex
	agents     map[string]string // token -> agent ID
	batches    []fleet.Batch
}

func newProtocolRecorder(enrolToken string) *protocolRecorder {
	return &protocolRecorder{enrolToken: enrolToken, agents: map[string]string{"reach_agent_preset": "preset"}}
}

func (p *protocolRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.URL.Path {
	case fleet.PathEnrol:
		if token != p.enrolToken {
			http.Error(w, `{"error":"invalid token"}`, http.StatusUnauthorized)
			return
		}
		id := "agent-" + itoa(uint64(len(p.agents)))
		p.agents["reach_agent_"+id] = id
		json.NewEncoder(w).Encode(fleet.EnrolResponse{AgentID: id, Token: "reach_agent_" + id})
	case fleet.PathReport:
		var b fleet.Batch
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, `{"error":"malformed"}`, http.StatusBadRequest)
			return
		}
		if id, ok := p.agents[token]; !ok || id != b.AgentID {
			http.Error(w, `{"error":"forbidden"}`, http.StatusForbidden)
			return
		}
		p.batches = append(p.batches, b)
		json.NewEncoder(w).Encode(fleet.BatchResponse{Seq: b.Seq, Updates: 1})
	default:
		http.NotFound(w, r)
	}
}

// startRecorder serves a protocolRecorder of enrolment token
// reach_enrol_test until the test ends.
func startRecorder(t *testing.T) (*protocolRecorder, *httptest.Server) {
	t.Helper()
	rec := newProtocolRecorder("reach_enrol_test")
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, srv
}

func (p *protocolRecorder) sent() []fleet.Batch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]fleet.Batch(nil), p.batches...)
}

// TestRunSendsReport runs textyaml under reach run -server: the server
// gets, as a new agent enrolled with the enrolment token, one observation
// whose binary is the one of the report reach wrote, to the byte; a server
// that is down or refuses the token loses no report and, unless
// -server-required, changes no exit code.
func TestRunSendsReport(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "textyaml"), testprog.Plain)
	rec, srv := startRecorder(t)
	host, _ := os.Hostname()

	t.Run("enrol and send", func(t *testing.T) {
		t.Setenv(envServerToken, "reach_enrol_test")
		out := filepath.Join(t.TempDir(), "report.json")
		res := runReach(t, "run", "-db", db, "-format", "json", "-o", out, "-server", srv.URL, "-environment", "ci", "--", bin)
		if res.code != 0 || res.stdout != "en-US\n" {
			t.Fatalf("exit %d, stdout %q\n%s", res.code, res.stdout, res.stderr)
		}
		if strings.Contains(res.stderr, "reach:") {
			t.Errorf("reach printed something:\n%s", res.stderr)
		}
		r := readReport(t, out)
		batches := rec.sent()
		if len(batches) != 1 {
			t.Fatalf("server got %d batches, want 1", len(batches))
		}
		b := batches[0]
		if b.Seq != 1 || b.AgentID == "" || b.Agent.Hostname != host || b.Agent.ReachVersion != r.Tool.Version {
			t.Errorf("batch seq %d agent %q state %+v", b.Seq, b.AgentID, b.Agent)
		}
		if len(b.Observations) != len(r.Binaries) || len(b.Observations) != 1 {
			t.Fatalf("%d observations for the report's %d binaries, want 1", len(b.Observations), len(r.Binaries))
		}
		o := b.Observations[0]
		if o.Service != filepath.Base(bin) || o.Environment != "ci" || o.Mode != "run" || o.Host != host {
			t.Errorf("observation service %q env %q mode %q host %q", o.Service, o.Environment, o.Mode, o.Host)
		}
		want := observedBinary(t, r, bin)
		if len(o.PIDs) != 1 || o.PIDs[0] != want.PIDs[0] || !strings.HasSuffix(o.Instance, "/"+want.BuildID) || want.BuildID == "" {
			t.Errorf("observation pids %v instance %q, want the report's %v and build ID %q", o.PIDs, o.Instance, want.PIDs, want.BuildID)
		}
		if !o.Started.Equal(r.Started) || o.Ended == nil || !o.Ended.Equal(r.Finished) {
			t.Errorf("observation from %v to %v, want the report's %v to %v", o.Started, o.Ended, r.Started, r.Finished)
		}
		if got, want := jsonOf(t, o.Binary), jsonOf(t, want); got != want {
			t.Errorf("binary sent differs from the report's:\n%s\nreport:\n%s", got, want)
		}
		if f, _ := observedSymbol(t, o.Binary, textOSV, textPkg, "Parse"); f.Status != report.Reached {
			t.Errorf("%s sent as %s, want reached", textOSV, f.Status)
		}
	})

	t.Run("agent token", func(t *testing.T) {
		t.Setenv(envServerToken, "reach_agent_preset")
		t.Setenv(envServerAgentID, "preset")
		before := len(rec.sent())
		out := filepath.Join(t.TempDir(), "report.json")
		res := runReach(t, "run", "-db", db, "-format", "json", "-o", out, "-server", srv.URL, "-service", "shop", "--", bin)
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		batches := rec.sent()[before:]
		if len(batches) != 1 || batches[0].AgentID != "preset" || batches[0].Seq < 1e18 || batches[0].Observations[0].Service != "shop" {
			t.Fatalf("batches %+v, want one from agent preset, numbered by the time, service shop", batches)
		}
	})

	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()
	lifecycle := testprog.Build(t, testprog.Dir(t, "lifecycle"), testprog.Plain)
	for _, tc := range []struct {
		name, url, token string
		required         bool
		prog             []string // textyaml when nil
		code             int
		msg              string
	}{
		{"server down", down, "reach_enrol_test", false, nil, 0, "reach: warning: report not sent to the server: enrol: server " + down + fleet.PathEnrol},
		{"wrong token", srv.URL, "reach_enrol_wrong", false, nil, 0, "the token is not valid for this server: enrol again"},
		{"wrong token required", srv.URL, "reach_enrol_wrong", true, nil, ExitError, "reach: report not sent to the server: enrol: server " + srv.URL + fleet.PathEnrol + " answered 401: invalid token"},
		// The program's own failure wins; the error is printed.
		{"wrong token required program fails", srv.URL, "reach_enrol_wrong", true, []string{lifecycle, "exit", "7"}, 7, "reach: report not sent to the server: enrol: server " + srv.URL + fleet.PathEnrol + " answered 401"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envServerToken, tc.token)
			out := filepath.Join(t.TempDir(), "report.json")
			args := []string{"run", "-db", db, "-format", "json", "-o", out, "-server", tc.url}
			if tc.required {
				args = append(args, "-server-required")
			}
			prog := tc.prog
			if prog == nil {
				prog = []string{bin}
			}
			res := runReach(t, append(append(args, "--"), prog...)...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.msg) {
				t.Errorf("exit %d, want %d with %q:\n%s", res.code, tc.code, tc.msg, res.stderr)
			}
			if strings.Contains(res.stderr, tc.token) {
				t.Errorf("standard error shows the token:\n%s", res.stderr)
			}
			// The report is written all the same.
			observedSymbol(t, observedBinary(t, readReport(t, out), prog[0]), textOSV, textPkg, "Parse")
		})
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAttachSendsReport attaches to a serving HTTP server with -server:
// reach attach stops on SIGINT, which ends its context, and still sends
// the report it wrote, as an attach observation of the server's process.
func TestAttachSendsReport(t *testing.T) {
	testprog.RequireRoot(t)
	db := realDB(t)
	bin := testprog.Build(t, testprog.Dir(t, "httpserve"), testprog.Plain)
	rec, hs := startRecorder(t)
	t.Setenv(envServerToken, "reach_enrol_test")

	srv := startServer(t, bin)
	pid := srv.cmd.Process.Pid
	out := filepath.Join(t.TempDir(), "report.json")
	a := startAttach(t, "attach", "-db", db, "-format", "json", "-o", out, "-fail-on", "never", "-server", hs.URL, "-service", "web", itoa(uint64(pid)))
	srv.get(t, "/parse", "en-US", "en-US\n")
	if err := a.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := a.wait(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, a.errText())
	}
	r := readReport(t, out)
	batches := rec.sent()
	if len(batches) != 1 || len(batches[0].Observations) != 1 {
		t.Fatalf("server got %+v, want one batch of one observation\n%s", batches, a.errText())
	}
	o := batches[0].Observations[0]
	if o.Mode != "attach" || o.Service != "web" || len(o.PIDs) != 1 || o.PIDs[0] != pid {
		t.Errorf("observation mode %q service %q pids %v, want attach web [%d]", o.Mode, o.Service, o.PIDs, pid)
	}
	if got, want := jsonOf(t, o.Binary), jsonOf(t, observedBinary(t, r, bin)); got != want {
		t.Errorf("binary sent differs from the report's:\n%s\nreport:\n%s", got, want)
	}
	if _, sym := observedSymbol(t, o.Binary, textOSV, textPkg, "Parse"); sym.Status != report.Reached {
		t.Errorf("Parse sent as %s, want reached", sym.Status)
	}
}
