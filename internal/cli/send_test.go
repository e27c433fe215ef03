package cli

import (
	"strings"
	"testing"
)

// TestServerFlagErrors checks -server's usage errors, found before any
// program runs: each exits 2 and says what to do.
func TestServerFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token string
		agent string
		args  []string
		want  string
	}{
		{"service without server", "", "", []string{"-service", "shop"}, "-service: give -server URL too"},
		{"required without server", "", "", []string{"-server-required"}, "-server-required: give -server URL too"},
		{"no token", "", "", []string{"-server", "https://reach.example.com"}, "set the token in the environment variable REACH_SERVER_TOKEN (not in a flag: every user of the machine can read a command line with ps)"},
		{"not a token", "hunter2", "", []string{"-server", "https://reach.example.com"}, "neither an enrolment token (reach_enrol_...) nor an agent token"},
		{"plain http", "reach_enrol_x", "", []string{"-server", "http://reach.example.com"}, "use https (with -server-ca FILE for a private CA), or pass -insecure"},
		{"no URL", "reach_enrol_x", "", []string{"-server", "reach.example.com"}, "give an http:// or https:// URL"},
		{"missing CA", "reach_enrol_x", "", []string{"-server", "https://reach.example.com", "-server-ca", "/nonexistent/ca.pem"}, "server CA: open /nonexistent/ca.pem"},
	} {
		for _, cmd := range []string{"run", "attach"} {
			t.Run(tc.name+"/"+cmd, func(t *testing.T) {
				t.Setenv(envServerToken, tc.token)
				t.Setenv(envServerAgentID, tc.agent)
				args := append([]string{cmd, "-db", "/nonexistent"}, tc.args...)
				if cmd == "run" {
					args = append(args, "--", "/bin/true")
				} else {
					args = append(args, "1")
				}
				_, stderr, code := reach(t, args...)
				if code != ExitUsage || !strings.Contains(stderr, tc.want) {
					t.Errorf("reach %s: exit %d, want 2 with %q:\n%s", strings.Join(args, " "), code, tc.want, stderr)
				}
				if tc.token != "" && strings.Contains(stderr, tc.token) {
					t.Errorf("the error shows the token:\n%s", stderr)
				}
			})
		}
	}
}
