package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/reach-sca/reach/internal/server/store"
)

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// retryAfterUnavailable is what a client is told to wait when the
// database is down.
const retryAfterUnavailable = 5 * time.Second

// writeJSON answers v as JSON with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers code with msg as JSON.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// retryAfter sets Retry-After to d, in whole seconds (at least 1).
func retryAfter(w http.ResponseWriter, d time.Duration) {
	sec := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(sec, 1)))
}

// fail answers err, as the status code its kind says: the store's
// sentinels, a body too large, a client gone. An error of no known kind
// is 500 with no detail (it is logged), or 503 when the store does not
// answer a ping: a database that went away mid-query does not always say
// so in the error.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrUnauthorized):
		w.Header().Set("WWW-Authenticate", `Bearer realm="reach"`)
		writeError(w, http.StatusUnauthorized, "invalid token")
	case errors.Is(err, store.ErrForbidden):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrUnavailable):
		s.unavailable(w, r, err)
	case r.Context().Err() != nil:
		// The client went away (or the server is shutting down): no one
		// reads the answer.
		w.WriteHeader(http.StatusServiceUnavailable)
	default:
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Second)
		defer cancel()
		if s.store.Ping(ctx) != nil {
			s.unavailable(w, r, err)
			return
		}
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error (see the server's log)")
	}
}

func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Warn("store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	retryAfter(w, retryAfterUnavailable)
	writeError(w, http.StatusServiceUnavailable, "the store is unavailable: retry later")
}

// decodeJSON decodes r's body, at most limit bytes, into v: one JSON
// value and nothing after it. strict refuses fields v does not have. Its
// errors say what is wrong, for a 400 (or 413, a *http.MaxBytesError).
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, strict bool, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: malformed JSON: empty body", store.ErrInvalid)
		}
		return fmt.Errorf("%w: malformed JSON: %v", store.ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return fmt.Errorf("%w: malformed JSON: more after the value", store.ErrInvalid)
	}
	return nil
}
