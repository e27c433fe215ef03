package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/reach-sca/reach/internal/report"
	"github.com/reach-sca/reach/internal/server/store"
)

// The export endpoints.
const (
	PathOpenVEX = "/api/v1/export/openvex" // ?service=S
	PathSARIF   = "/api/v1/export/sarif"   // ?service=S
	PathCSV     = "/api/v1/export/csv"     // ?service=&environment=&status=
	// PathWebhookSecret answers {"secret": S}: the secret that signs
	// webhook bodies when reach server was given none.
	PathWebhookSecret = "/api/v1/export/webhook-secret"
)

// pageSize is the number of findings read per query (a variable for tests).
var pageSize = 1000

// reader is the part of the store the exports read (*store.Store).
type reader interface {
	Service(ctx context.Context, name string, f store.Filter) (*store.Service, error)
	Findings(ctx context.Context, f store.Filter) ([]store.Finding, error)
	Secret(ctx context.Context, name string) ([]byte, error)
}

// Register mounts the export endpoints on mux, each behind protect (the
// admin authentication):
//
//	GET /api/v1/export/openvex?service=S   OpenVEX v0.2.0 of service S (WriteOpenVEX)
//	GET /api/v1/export/sarif?service=S     SARIF 2.1.0 of service S (WriteSARIF)
//	GET /api/v1/export/csv?service=&environment=&status=   CSV of the findings (CSVColumns), every filter optional
//	GET /api/v1/export/webhook-secret      {"secret": S}, the server's webhook secret (WebhookSecret)
//
// Each answers with a Content-Disposition attachment filename; 400 for a
// missing service or an unknown status, 404 for an unknown service, 503
// when the database is down.
func Register(mux *http.ServeMux, st *store.Store, protect func(http.Handler) http.Handler) {
	register(mux, st, protect)
}

func register(mux *http.ServeMux, st reader, protect func(http.Handler) http.Handler) {
	if protect == nil {
		protect = func(h http.Handler) http.Handler { return h }
	}
	mux.Handle("GET "+PathOpenVEX, protect(serviceExport(st, "openvex.json", "application/json", func(w io.Writer, svc *store.Service) error {
		return WriteOpenVEX(w, svc, time.Now())
	})))
	mux.Handle("GET "+PathSARIF, protect(serviceExport(st, "sarif", "application/sarif+json", func(w io.Writer, svc *store.Service) error {
		return WriteSARIF(w, svc, time.Now())
	})))
	mux.Handle("GET "+PathCSV, protect(csvExport(st)))
	mux.Handle("GET "+PathWebhookSecret, protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, err := WebhookSecret(r.Context(), st)
		if err != nil {
			httpError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]string{"secret": secret})
	})))
}

// serviceExport answers with a document of the service named by the
// query's service parameter.
func serviceExport(st reader, ext, contentType string, write func(io.Writer, *store.Service) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("service")
		if name == "" {
			httpError(w, r, fmt.Errorf("%w: the service parameter is missing: add ?service=NAME", store.ErrInvalid))
			return
		}
		svc, err := st.Service(r.Context(), name, store.Filter{Limit: 1}) // its findings come next, all of them
		if err != nil {
			httpError(w, r, err)
			return
		}
		svc.Findings, err = allFindings(r.Context(), st, store.Filter{Service: name})
		if err != nil {
			httpError(w, r, err)
			return
		}
		// Whole documents are small enough to build first, so that an
		// error is an error status, not half a document.
		var buf bytes.Buffer
		if err := write(&buf, svc); err != nil {
			httpError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("X-Content-Type-Options", "nosniff") // hostile strings stay text
		w.Header().Set("Content-Disposition", attachment(name+"."+ext))
		w.Write(buf.Bytes())
	})
}

// allFindings reads every finding f selects, page by page.
func allFindings(ctx context.Context, st reader, f store.Filter) ([]store.Finding, error) {
	var all []store.Finding
	seen := map[int64]bool{} // a finding moves up a page when its status does
	f.Limit = pageSize
	for {
		page, err := st.Findings(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, x := range page {
			if !seen[x.ID] {
				seen[x.ID] = true
				all = append(all, x)
			}
		}
		if len(page) < pageSize {
			return all, nil
		}
		f.Offset += len(page)
	}
}

// csvExport streams the findings the query selects as CSV.
func csvExport(st reader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f := store.Filter{Service: q.Get("service"), Environment: q.Get("environment"), Limit: pageSize}
		if s := q.Get("status"); s != "" {
			status, err := report.ParseStatus(s)
			if err != nil {
				httpError(w, r, fmt.Errorf("%w: %v", store.ErrInvalid, err))
				return
			}
			f.Status = status
		}
		name := "reach-findings"
		for _, part := range []string{f.Service, f.Environment, string(f.Status)} {
			if part != "" {
				name += "-" + part
			}
		}
		cw := NewCSVWriter(w)
		for n := 0; ; n++ {
			page, err := st.Findings(r.Context(), f)
			if err != nil && n == 0 {
				httpError(w, r, err)
				return
			}
			if err != nil {
				// The header is sent: cut the response off, so that the
				// client sees a failed download, not a short table.
				slog.Warn("csv export cut off", "err", err)
				panic(http.ErrAbortHandler)
			}
			if n == 0 {
				w.Header().Set("Content-Type", "text/csv; charset=utf-8")
				w.Header().Set("X-Content-Type-Options", "nosniff")
				w.Header().Set("Content-Disposition", attachment(name+".csv"))
			}
			if err := cw.Write(page); err != nil {
				return // the client went away
			}
			if len(page) < pageSize {
				return
			}
			f.Offset += len(page)
		}
	})
}

// attachment is a Content-Disposition header naming the file name, with
// every character but letters, digits, dot, dash and underscore replaced
// by an underscore (no quote, slash or control character reaches the
// header or the user's file system).
func attachment(name string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
	safe = strings.TrimLeft(safe, ".")
	if safe == "" {
		safe = "export"
	}
	return `attachment; filename="` + safe + `"`
}

// httpError answers with err's status and a JSON {"error": ...}.
func httpError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, store.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, store.ErrUnavailable):
		code = http.StatusServiceUnavailable
	case r.Context().Err() != nil:
		return // the client went away
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		slog.Error("export", "path", r.URL.Path, "err", err)
		msg = "internal error: see the server's log"
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
