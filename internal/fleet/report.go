package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// CheckToken says what is wrong with a token given to reach run or attach:
// it must be an enrolment token or an agent token.
func CheckToken(token string) error {
	switch {
	case token == "":
		return fmt.Errorf("no token")
	case strings.HasPrefix(token, EnrolTokenPrefix) && len(token) > len(EnrolTokenPrefix),
		strings.HasPrefix(token, AgentTokenPrefix) && len(token) > len(AgentTokenPrefix):
		return nil
	}
	return fmt.Errorf("the token is neither an enrolment token (%s...) nor an agent token (%s...)", EnrolTokenPrefix, AgentTokenPrefix)
}

// SendReport sends report r (FromReport's observations of it) with the
// client's token. With an enrolment token it enrols a new agent first and
// sends as that agent, its batches numbered from 1; with an agent token it
// sends as agentID, the agent the token was issued to ("": the server
// takes the token's agent), its batches
// numbered from the time in nanoseconds, which keeps growing from one run
// to the next. It returns the agent the report was sent as.
func (c *Client) SendReport(ctx context.Context, r *report.Report, src Source, agentID string) (string, []BatchResponse, error) {
	if err := CheckToken(c.Token); err != nil {
		return "", nil, err
	}
	seq := uint64(time.Now().UnixNano())
	if strings.HasPrefix(c.Token, EnrolTokenPrefix) {
		resp, err := c.Enrol(ctx, EnrolRequest{Hostname: src.Host, ReachVersion: r.Tool.Version, Labels: src.Labels})
		if err != nil {
			return "", nil, err
		}
		agent := *c
		agent.Token = resp.Token
		c, agentID, seq = &agent, resp.AgentID, 1
	}
	resps, err := c.SendAll(ctx, ReportBatch(r, src, agentID, seq))
	return agentID, resps, err
}
