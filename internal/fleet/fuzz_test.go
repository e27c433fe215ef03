package fleet

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reach-sca/reach/internal/report"
)

// answer is a RoundTripper that answers every request with one response.
type answer struct {
	status     int
	retryAfter string
	body       []byte
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	h := http.Header{}
	h.Set("Retry-After", a.retryAfter)
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(bytes.NewReader(a.body)), Request: r}, nil
}

// FuzzAnswer feeds the client a server's answers: whatever the status,
// Retry-After and body, Send and Config return without panic, and an
// error is one printable line of bounded length (it quotes the server).
func FuzzAnswer(f *testing.F) {
	f.Add(200, "", []byte(`{"seq":1,"updates":2}`))
	f.Add(400, "", []byte(`{"error":"observation 0: bad"}`))
	f.Add(429, "3", []byte("slow down"))
	f.Add(503, "Wed, 21 Oct 2015 07:28:00 GMT", []byte("\x1b[31mred\n\u202e"))
	f.Add(304, "", []byte(nil))
	f.Add(401, "-1", []byte(`{"message":"no"}`))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		c := &Client{BaseURL: "http://127.0.0.1:1", Token: "reach_agent_x", Attempts: 1,
			HTTPClient: &http.Client{Transport: answer{status, retryAfter, body}}}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Send(ctx, &Batch{AgentID: "a", Seq: 1})
		if err == nil {
			_, _, err = c.Config(ctx, 0, 0)
		}
		if err == nil {
			return
		}
		msg := err.Error()
		if strings.ContainsAny(msg, "\n\r\x1b") || msg != report.Printable(msg) {
			t.Errorf("error not one printable line: %q", msg)
		}
		if len(msg) > 1500 {
			t.Errorf("error of %d bytes", len(msg))
		}
	})
}
