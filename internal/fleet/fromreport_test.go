package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// readFixture reads a JSON report of internal/report/testdata.
func readFixture(t *testing.T, name string) (*report.Report, []byte) {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("..", "report", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var r report.Report
	if err := json.Unmarshal(js, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &r, js
}

// TestFromReport turns the report package's full JSON fixture (a run of two
// binaries) into observations, sends them through JSON, and checks that
// the server would read each binary exactly as the report has it.
func TestFromReport(t *testing.T) {
	r, js := readFixture(t, "full.json.golden")
	// The fixture's binaries as the JSON report spells them.
	var raw struct {
		Binaries []json.RawMessage `json:"binaries"`
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	if len(r.Binaries) < 2 {
		t.Fatalf("fixture has %d binaries, want several", len(r.Binaries))
	}
	for _, tc := range []struct {
		name, service string
	}{{"by file name", ""}, {"one service", "checkout"}} {
		t.Run(tc.name, func(t *testing.T) {
			src := Source{Instance: "0123456789abcdef", Host: "web-1", Service: tc.service, Environment: "prod", Labels: map[string]string{LabelK8sPod: "web-1-abc"}}
			b := ReportBatch(r, src, "agent-1", 5)
			body, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			var got Batch
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.AgentID != "agent-1" || got.Seq != 5 || got.Agent.Hostname != "web-1" || got.Agent.ReachVersion != r.Tool.Version {
				t.Errorf("batch head %+v", got)
			}
			if len(got.Observations) != len(r.Binaries) {
				t.Fatalf("%d observations for %d binaries", len(got.Observations), len(r.Binaries))
			}
			instances := make(map[string]bool)
			var gotRaw struct {
				Observations []struct {
					Binary json.RawMessage `json:"binary"`
				} `json:"observations"`
			}
			if err := json.Unmarshal(body, &gotRaw); err != nil {
				t.Fatal(err)
			}
			for i, o := range got.Observations {
				rb := r.Binaries[i]
				want := tc.service
				if want == "" {
					want = filepath.Base(rb.Path)
				}
				if o.Service != want || o.Host != "web-1" || o.Environment != "prod" || o.Mode != r.Mode || o.Labels[LabelK8sPod] != "web-1-abc" {
					t.Errorf("observation %d: service %q host %q env %q mode %q labels %v", i, o.Service, o.Host, o.Environment, o.Mode, o.Labels)
				}
				if !o.Started.Equal(r.Started) || o.Ended == nil || !o.Ended.Equal(r.Finished) {
					t.Errorf("observation %d: %v to %v, want the report's %v to %v", i, o.Started, o.Ended, r.Started, r.Finished)
				}
				if !reflect.DeepEqual(o.PIDs, rb.PIDs) {
					t.Errorf("observation %d: pids %v, want %v", i, o.PIDs, rb.PIDs)
				}
				if !strings.HasPrefix(o.Instance, "0123456789abcdef/") || rb.BuildID != "" && !strings.HasSuffix(o.Instance, "/"+rb.BuildID) {
					t.Errorf("observation %d: instance %q, want the run's and build ID %q", i, o.Instance, rb.BuildID)
				}
				if instances[o.Instance] {
					t.Errorf("instance %q twice", o.Instance)
				}
				instances[o.Instance] = true
				// The binary goes as the report wrote it, to the byte
				// (up to white space).
				var a, b bytes.Buffer
				json.Compact(&a, raw.Binaries[i])
				json.Compact(&b, gotRaw.Observations[i].Binary)
				if a.String() != b.String() {
					t.Errorf("binary %s differs from the report's:\n%s\nreport:\n%s", rb.Path, b.String(), a.String())
				}
			}
		})
	}
}

// TestFromReportSameBuild checks that two binaries of one build in one
// report are two counting instances.
func TestFromReportSameBuild(t *testing.T) {
	r := &report.Report{Mode: "run", Binaries: []*report.Binary{
		{Path: "/a/app", BuildID: "x"}, {Path: "/b/app", BuildID: "x"}, {Path: "/c/tool"},
	}}
	obs := FromReport(r, Source{Instance: "i"})
	got := []string{obs[0].Instance, obs[1].Instance, obs[2].Instance}
	if want := []string{"i/x", "i/x#2", "i/path:/c/tool"}; !reflect.DeepEqual(got, want) {
		t.Errorf("instances %q, want %q", got, want)
	}
	if obs[0].Ended != nil {
		t.Errorf("a report without end time ended at %v", obs[0].Ended)
	}
}

// TestFromReportPIDLabels checks that a binary's labels come from its
// first process, after the run's, which win.
func TestFromReportPIDLabels(t *testing.T) {
	r := &report.Report{Mode: "attach", Binaries: []*report.Binary{
		{Path: "/a/app", PIDs: []int{10, 11}}, {Path: "/b/app"},
	}}
	var asked []int
	obs := FromReport(r, Source{
		Labels: map[string]string{"k": "run"},
		PIDLabels: func(pid int) map[string]string {
			asked = append(asked, pid)
			return map[string]string{LabelContainerID: "c10", "k": "pid"}
		},
	})
	if !reflect.DeepEqual(asked, []int{10}) {
		t.Errorf("labels asked of %v, want the first process alone", asked)
	}
	if want := map[string]string{"k": "run", LabelContainerID: "c10"}; !reflect.DeepEqual(obs[0].Labels, want) {
		t.Errorf("labels %v, want %v", obs[0].Labels, want)
	}
	if want := map[string]string{"k": "run"}; !reflect.DeepEqual(obs[1].Labels, want) {
		t.Errorf("labels of a binary without process %v, want %v", obs[1].Labels, want)
	}
}

func TestNewInstance(t *testing.T) {
	a, b := NewInstance(), NewInstance()
	if len(a) != 16 || a == b {
		t.Errorf("instances %q %q, want 16 random hex digits each", a, b)
	}
}

func TestContainerID(t *testing.T) {
	const id = "3f4e1c0d2b9a8f7e6d5c4b3a291807f6e5d4c3b2a1908f7e6d5c4b3a29180706"
	for _, tc := range []struct {
		name, cgroup, want string
	}{
		{"docker v1", "12:memory:/docker/" + id + "\n11:cpu:/docker/" + id + "\n", id},
		{"docker v2 systemd", "0::/system.slice/docker-" + id + ".scope\n", id},
		{"containerd k8s", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + id + ".scope\n", id},
		{"crio", "0::/kubepods/besteffort/pod5678/crio-" + id + ".scope\n", id},
		{"k8s cgroupfs", "0::/kubepods/burstable/pod0f3c/" + id + "\n", id},
		{"podman", "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope/container\n", id},
		{"host", "0::/user.slice/user-1000.slice/session-3.scope\n", ""},
		{"private namespace", "0::/\n", ""},
		{"short hex", "4:memory:/process_api/8ab170b43ba65b55b9fa1ddb03aa0c1e\n", ""},
		{"upper case", "0::/docker/" + strings.ToUpper(id) + "\n", ""},
		{"empty", "", ""},
	} {
		if got := ContainerID(tc.cgroup); got != tc.want {
			t.Errorf("%s: ContainerID = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEnvLabels(t *testing.T) {
	env := map[string]string{"POD_NAME": "web-1-abc", "POD_NAMESPACE": "shop"}
	got := EnvLabels(func(k string) string { return env[k] })
	if got[LabelK8sPod] != "web-1-abc" || got[LabelK8sNamespace] != "shop" {
		t.Errorf("EnvLabels = %v", got)
	}
	// This process's own container, if any, is the one of /proc/self.
	if want := ProcessLabels(0)[LabelContainerID]; got[LabelContainerID] != want {
		t.Errorf("container.id %q, want /proc/self's %q", got[LabelContainerID], want)
	}
	if got := EnvLabels(func(string) string { return "" }); got != nil && got[LabelK8sPod] != "" {
		t.Errorf("without POD_NAME: %v", got)
	}
}

// TestSendReport checks both kinds of token: an enrolment token enrols,
// then sends as the new agent with its token from Seq 1; an agent token
// sends as the agent given, numbered by the time; anything else is
// refused before a request.
func TestSendReport(t *testing.T) {
	r, _ := readFixture(t, "full.json.golden")
	var (
		mu      sync.Mutex
		batches []Batch
		auths   []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		auths = append(auths, req.Header.Get("Authorization"))
		switch req.URL.Path {
		case PathEnrol:
			json.NewEncoder(w).Encode(EnrolResponse{AgentID: "agt_new", Token: "reach_agent_new"})
		case PathReport:
			var b Batch
			json.NewDecoder(req.Body).Decode(&b)
			batches = append(batches, b)
			json.NewEncoder(w).Encode(BatchResponse{Seq: b.Seq})
		}
	}))
	defer srv.Close()
	src := Source{Instance: NewInstance(), Host: "h"}

	c, _ := NewClient(srv.URL, "reach_enrol_x")
	agent, resps, err := c.SendReport(context.Background(), r, src, "ignored")
	if err != nil || agent != "agt_new" || len(resps) != 1 {
		t.Fatalf("enrolment token: agent %q, %d answers, %v", agent, len(resps), err)
	}
	if want := []string{"Bearer reach_enrol_x", "Bearer reach_agent_new"}; !reflect.DeepEqual(auths, want) {
		t.Errorf("authorizations %q, want %q", auths, want)
	}
	if c.Token != "reach_enrol_x" {
		t.Errorf("SendReport changed the client's token")
	}
	if batches[0].AgentID != "agt_new" || batches[0].Seq != 1 || len(batches[0].Observations) != len(r.Binaries) {
		t.Errorf("batch agent %q seq %d with %d observations", batches[0].AgentID, batches[0].Seq, len(batches[0].Observations))
	}

	before := time.Now().UnixNano()
	c, _ = NewClient(srv.URL, "reach_agent_mine")
	if agent, _, err := c.SendReport(context.Background(), r, src, "agt_mine"); err != nil || agent != "agt_mine" {
		t.Fatalf("agent token: agent %q, %v", agent, err)
	}
	if b := batches[1]; b.AgentID != "agt_mine" || b.Seq < uint64(before) || b.Seq > uint64(time.Now().UnixNano()) {
		t.Errorf("agent token: batch agent %q seq %d, want agt_mine numbered by the time", b.AgentID, b.Seq)
	}
	// Without the agent's ID the batch leaves agent_id empty: the server
	// takes the token's agent.
	if _, _, err := c.SendReport(context.Background(), r, src, ""); err != nil {
		t.Errorf("agent token without ID: %v", err)
	} else if b := batches[len(batches)-1]; b.AgentID != "" {
		t.Errorf("agent token without ID: batch of agent %q, want none", b.AgentID)
	}
	n := len(auths)
	c, _ = NewClient(srv.URL, "hunter2")
	if _, _, err := c.SendReport(context.Background(), r, src, "a"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("not a token: %v", err)
	}
	if len(auths) != n {
		t.Errorf("a request was made with a token that is none")
	}
}
