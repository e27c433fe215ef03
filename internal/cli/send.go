package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/report"
)

// The environment variables that authenticate reach run and attach to a
// server. The token is never a flag: every user of the machine can read a
// command line (ps).
const (
	envServerToken   = "REACH_SERVER_TOKEN"
	envServerAgentID = "REACH_SERVER_AGENT_ID"
)

// sendTimeout bounds sending a report, retries included.
const sendTimeout = time.Minute

// serverFlags are the flags of run and attach that send the report to a
// reach server.
type serverFlags struct {
	url         string
	service     string
	environment string
	ca          string
	required    bool

	client  *fleet.Client // made by validate when url is set
	agentID string        // for an agent token
}

func (s *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.url, "server", "", "also send the report to the reach server at `URL`, with the token in $"+envServerToken+" (an enrolment token, or an agent token), after writing it as usual")
	fs.StringVar(&s.service, "service", "", "with -server: the service `NAME` of every binary observed (default: each binary's file name)")
	fs.StringVar(&s.environment, "environment", "", "with -server: the environment `ENV` of the processes, such as prod")
	fs.StringVar(&s.ca, "server-ca", "", "with -server: trust the server's certificate only when signed by a CA certificate in `FILE` (PEM), instead of the system's CAs")
	fs.BoolVar(&s.required, "server-required", false, "with -server: a report that could not be sent is an error (exit 1, unless the program's own non-zero status), not a warning")
}

// validate checks the flags and the token before anything runs, and makes
// the client; insecure is -insecure.
func (s *serverFlags) validate(insecure bool) error {
	if s.url == "" {
		for _, f := range []struct {
			name string
			set  bool
		}{{"-service", s.service != ""}, {"-environment", s.environment != ""}, {"-server-ca", s.ca != ""}, {"-server-required", s.required}} {
			if f.set {
				return usageError("%s: give -server URL too: it is about sending the report to a server", f.name)
			}
		}
		return nil
	}
	token := os.Getenv(envServerToken)
	if token == "" {
		return usageError("-server %s: set the token in the environment variable %s (not in a flag: every user of the machine can read a command line with ps): an enrolment token from the server's admin", s.url, envServerToken)
	}
	if err := fleet.CheckToken(token); err != nil {
		return usageError("-server: $%s: %v", envServerToken, err)
	}
	if !strings.HasPrefix(token, fleet.EnrolTokenPrefix) {
		// The agent's ID, when given, is checked by the server against
		// the token's; without it the server takes the token's agent.
		s.agentID = os.Getenv(envServerAgentID)
	}
	var opts []fleet.Option
	if s.ca != "" {
		opts = append(opts, fleet.WithCAFile(s.ca))
	}
	if insecure {
		opts = append(opts, fleet.WithInsecure())
	}
	c, err := fleet.NewClient(s.url, token, opts...)
	if err != nil {
		return usageError("-server: %v", err)
	}
	c.UserAgent = "reach/" + version()
	s.client = c
	return nil
}

// send sends the report r to the server, when -server is set. Run and
// attach write the report first: a server that is down loses nothing. A
// failure is printed as a warning and returns nil, or, with
// -server-required, is returned.
func (s *serverFlags) send(ctx context.Context, e *env, r *report.Report) error {
	if s.client == nil || r == nil {
		return nil
	}
	if len(r.Binaries) == 0 {
		e.log.Info("no Go program observed: nothing sent to the server", "component", "server")
		return nil
	}
	// Attach's ctx is done by now (a signal stops it): sending has its
	// own time.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	defer cancel()
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown" // the server needs one
	}
	src := fleet.Source{
		Instance:    fleet.NewInstance(),
		Host:        host,
		Service:     s.service,
		Environment: s.environment,
	}
	if r.Mode == "run" {
		// The programs reach run starts share its environment and cgroup.
		src.Labels = fleet.EnvLabels(os.Getenv)
	} else {
		src.PIDLabels = fleet.ProcessLabels
	}
	agent, resps, err := s.client.SendReport(ctx, r, src, s.agentID)
	if err != nil {
		err = fmt.Errorf("report not sent to the server: %w", err)
		if s.required {
			return err
		}
		e.log.Warn(err.Error() + " (the report itself was written; -server-required makes this an error)")
		return nil
	}
	updates := 0
	for _, r := range resps {
		updates += r.Updates
	}
	e.log.Info("report sent", "component", "server", "server", s.url, "agent", agent, "batches", len(resps), "updates", updates)
	return nil
}
