//go:build linux || darwin || windows || freebsd

package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/testprog"
)

// serverProc is a reach server process.
type serverProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *bufio.Reader
	lines  []string // stderr so far
}

var listening = regexp.MustCompile(`^reach: server listening on (https?://\S+) `)

// startServerProc runs reach server with args and waits until it listens.
func startServerProc(t *testing.T, args ...string) *serverProc {
	t.Helper()
	cmd := exec.Command(reachBin(t), append([]string{"server"}, args...)...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	p := &serverProc{cmd: cmd, stderr: bufio.NewReader(pipe)}
	for p.url == "" {
		line := readLine(t, p.stderr, 30*time.Second)
		p.lines = append(p.lines, line)
		if m := listening.FindStringSubmatch(line); m != nil {
			p.url = m[1]
		}
	}
	return p
}

// stop sends sig and returns reach's exit code and the rest of its
// stderr.
func (p *serverProc) stop(t *testing.T, sig os.Signal) (int, string) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(p.stderr)
		rest <- string(b)
	}()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("reach server still running 15s after %v", sig)
	}
	return p.cmd.ProcessState.ExitCode(), strings.Join(p.lines, "\n") + "\n" + <-rest
}

func httpDo(t *testing.T, c *http.Client, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestServerCommand runs reach server as a user does: the first start
// makes the admin token, enrol-token makes an agent's, an agent enrols
// and reports, SIGTERM stops the server cleanly (ending a long poll), and
// a restart keeps the data and the token.
func TestServerCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := startServerProc(t, "-data", data, "-listen", "127.0.0.1:0")
	if !strings.Contains(strings.Join(p.lines, "\n"), "made an admin token and wrote it to "+filepath.Join(data, "admin-token")) {
		t.Errorf("first start does not say where the admin token is: %q", p.lines)
	}
	for path, want := range map[string]os.FileMode{data: 0o700 | os.ModeDir, filepath.Join(data, "admin-token"): 0o600, filepath.Join(data, "reach.db"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	raw, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(raw))

	res := runReach(t, "server", "enrol-token", "-data", data, "-name", "ci", "-expires", "1h")
	enrol := strings.TrimSpace(res.stdout)
	if res.code != 0 || enrol == "" || strings.ContainsAny(enrol, " \n") {
		t.Fatalf("enrol-token: %+v", res)
	}
	c := http.DefaultClient
	var agent fleet.EnrolResponse
	code, body := httpDo(t, c, "POST", p.url+fleet.PathEnrol, enrol, fleet.EnrolRequest{Hostname: "h"})
	if code != 200 || json.Unmarshal(body, &agent) != nil {
		t.Fatalf("enrol: %d %s", code, body)
	}
	code, body = httpDo(t, c, "POST", p.url+fleet.PathReport, agent.Token, fleet.Batch{AgentID: agent.AgentID, Seq: 1, Agent: fleet.AgentState{Hostname: "h"}})
	if code != 200 {
		t.Errorf("report: %d %s", code, body)
	}
	if code, body := httpDo(t, c, "GET", p.url+"/api/v1/config", admin, nil); code != 200 {
		t.Errorf("admin API with the first admin token: %d %s", code, body)
	}
	if code, _ := httpDo(t, c, "GET", p.url+"/api/v1/config", agent.Token, nil); code != 401 {
		t.Errorf("admin API with an agent token: %d", code)
	}
	// The dashboard and the exports are mounted, behind the login.
	if code, body := httpDo(t, c, "GET", p.url+"/", admin, nil); code != 200 || !strings.Contains(string(body), "<html") {
		t.Errorf("dashboard with the admin token: %d %.200s", code, body)
	}
	if code, body := httpDo(t, c, "GET", p.url+"/api/v1/export/csv", admin, nil); code != 200 || !strings.HasPrefix(string(body), "id,service,") {
		t.Errorf("CSV export with the admin token: %d %.200s", code, body)
	}
	for _, path := range []string{"/", "/agents", "/config", "/api/v1/export/csv", "/api/v1/export/webhook-secret"} {
		if code, _ := httpDo(t, c, "GET", p.url+path, agent.Token, nil); code != 401 {
			t.Errorf("%s with an agent token: %d, want 401", path, code)
		}
	}

	// A long poll waiting when SIGTERM comes ends at once.
	poll := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", p.url+fleet.PathConfig+"?version=0&wait=60", nil)
		req.Header.Set("Authorization", "Bearer "+agent.Token)
		resp, err := c.Do(req)
		if err != nil {
			poll <- -1
			return
		}
		resp.Body.Close()
		poll <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	exit, stderr := p.stop(t, syscall.SIGTERM)
	if got := <-poll; got != 304 {
		t.Errorf("long poll at SIGTERM: %d, want 304", got)
	}
	t.Logf("stopped in %v", time.Since(start))
	if exit != 0 || !strings.Contains(stderr, "reach: server stopped") {
		t.Errorf("SIGTERM: exit %d, stderr:\n%s", exit, stderr)
	}
	if strings.Contains(stderr, admin) || strings.Contains(stderr, enrol) {
		t.Errorf("a token in the server's output:\n%s", stderr)
	}

	// Restart: same data, same token, no new one.
	p = startServerProc(t, "-data", data, "-listen", "127.0.0.1:0")
	if strings.Contains(strings.Join(p.lines, "\n"), "made an admin token") {
		t.Errorf("second start made another admin token: %q", p.lines)
	}
	raw2, _ := os.ReadFile(filepath.Join(data, "admin-token"))
	if string(raw2) != string(raw) {
		t.Errorf("second start changed the admin token file")
	}
	if code, _ := httpDo(t, c, "GET", p.url+"/api/v1/config", admin, nil); code != 200 {
		t.Errorf("first admin token after a restart: %d", code)
	}
	code, body = httpDo(t, c, "POST", p.url+fleet.PathReport, agent.Token, fleet.Batch{AgentID: agent.AgentID, Seq: 1, Agent: fleet.AgentState{Hostname: "h"}})
	if code != 200 || !strings.Contains(string(body), `"duplicate":true`) {
		t.Errorf("batch 1 again after a restart: %d %s, want a duplicate", code, body)
	}
	res = runReach(t, "server", "admin-token", "-data", data, "-name", "second")
	if second := strings.TrimSpace(res.stdout); res.code != 0 || second == admin {
		t.Fatalf("admin-token: %+v", res)
	} else if code, _ := httpDo(t, c, "GET", p.url+"/api/v1/agents", second, nil); code == 401 {
		t.Errorf("the second admin token does not authorize")
	}
	if exit, stderr := p.stop(t, syscall.SIGINT); exit != 0 {
		t.Errorf("SIGINT: exit %d, stderr:\n%s", exit, stderr)
	}

	// The same data directory with another store: the token in the file
	// is none of that store's, so the server makes one that is.
	other := filepath.Join(t.TempDir(), "other.db")
	p = startServerProc(t, "-data", data, "-store", other, "-listen", "127.0.0.1:0")
	if !strings.Contains(strings.Join(p.lines, "\n"), "is not one of this store's") {
		t.Errorf("start on another store does not replace the admin token: %q", p.lines)
	}
	raw3, _ := os.ReadFile(filepath.Join(data, "admin-token"))
	if string(raw3) == string(raw) {
		t.Errorf("the admin token file was not replaced")
	}
	if code, _ := httpDo(t, c, "GET", p.url+"/api/v1/config", strings.TrimSpace(string(raw3)), nil); code != 200 {
		t.Errorf("the new admin token on the other store: %d", code)
	}
	p.stop(t, syscall.SIGTERM)
}

// TestServerTLS: with -tls-cert and -tls-key the server speaks HTTPS,
// beyond loopback too.
func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := testprog.SelfSigned(t)
	if err := os.WriteFile(certFile, cert.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, cert.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	p := startServerProc(t, "-data", data, "-listen", "0.0.0.0:0", "-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("url %s, want https", p.url)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(p.url, "https://"))
	raw, _ := os.ReadFile(filepath.Join(data, "admin-token"))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}}}
	if code, body := httpDo(t, c, "GET", "https://127.0.0.1:"+port+"/api/v1/config", strings.TrimSpace(string(raw)), nil); code != 200 {
		t.Errorf("admin API over TLS: %d %s", code, body)
	}
	if exit, stderr := p.stop(t, syscall.SIGTERM); exit != 0 {
		t.Errorf("exit %d:\n%s", exit, stderr)
	}
}

func TestCheckExposure(t *testing.T) {
	for _, tt := range []struct {
		addr          string
		tls, insecure bool
		ok            bool
	}{
		{"127.0.0.1:8077", false, false, true},
		{"127.0.0.2:8077", false, false, true},
		{"[::1]:8077", false, false, true},
		{"localhost:8077", false, false, true},
		{"0.0.0.0:8077", false, false, false},
		{":8077", false, false, false},
		{"[::]:8077", false, false, false},
		{"192.0.2.1:8077", false, false, false},
		{"nosuchhost.invalid:8077", false, false, false}, // not known to be loopback
		{"0.0.0.0:8077", true, false, true},
		{"0.0.0.0:8077", false, true, true},
		{"127.0.0.1", true, false, false}, // no port
	} {
		err := checkExposure(context.Background(), tt.addr, tt.tls, tt.insecure)
		if (err == nil) != tt.ok {
			t.Errorf("%s tls=%v insecure=%v: %v, want ok=%v", tt.addr, tt.tls, tt.insecure, err, tt.ok)
		}
		var ue *UsageError
		if err != nil && !errors.As(err, &ue) {
			t.Errorf("%s: %v is no usage error", tt.addr, err)
		}
	}
}
