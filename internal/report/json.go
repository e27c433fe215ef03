package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// WriteJSON writes r as indented JSON, schema "reach/v1". Empty lists are
// written as [] rather than null, so that readers need no null checks.
func WriteJSON(w io.Writer, r *Report) error {
	c := *r
	if c.Schema == "" {
		c.Schema = Schema
	}
	if c.Binaries == nil {
		c.Binaries = []*Binary{}
	}
	c.Upgrades = r.UpgradeAdvice()
	if err := EncodeJSON(w, &c); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}

// EncodeJSON writes v as indented JSON, followed by a newline, with every
// character that could act on a terminal escaped as \uXXXX (see
// Printable): the reports and reach db show use it.
func EncodeJSON(w io.Writer, v any) error {
	return encodeJSON(w, v, "  ")
}

// EncodeJSONLine is EncodeJSON on a single line, for a stream of JSON
// lines (reach run -stream): a program's file names and a binary's
// function names may hold escape sequences too.
func EncodeJSONLine(w io.Writer, v any) error {
	return encodeJSON(w, v, "")
}

func encodeJSON(w io.Writer, v any, indent string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", indent)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(printableJSON(buf.Bytes()))
	return err
}

// ReadJSON decodes a report that WriteJSON wrote. It rejects other schemas.
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	dec := json.NewDecoder(rd)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("read json report: %w", err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("read json report: schema %q, want %q: %w", r.Schema, Schema, ErrUnknownFormat)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("read json report: %w", err)
	}
	return &r, nil
}

// ErrInvalid reports a report whose content breaks the model's rules, such
// as a null finding or an unknown status.
var ErrInvalid = errors.New("invalid report")

func (r *Report) validate() error {
	for i, b := range r.Binaries {
		if b == nil {
			return fmt.Errorf("binary %d is null: %w", i, ErrInvalid)
		}
		for j, f := range b.Findings {
			if f == nil {
				return fmt.Errorf("binary %s: finding %d is null: %w", b.Path, j, ErrInvalid)
			}
			if f.Status.Rank() == 0 {
				return fmt.Errorf("binary %s: finding %s: status %q, want reached, not_watched, linked or imported: %w", b.Path, f.OSV, f.Status, ErrInvalid)
			}
			for k, s := range f.Symbols {
				if s == nil {
					return fmt.Errorf("binary %s: finding %s: symbol %d is null: %w", b.Path, f.OSV, k, ErrInvalid)
				}
				if s.Status != Reached && s.Status != NotWatched && s.Status != Linked {
					return fmt.Errorf("binary %s: finding %s: symbol %s: status %q, want reached, not_watched or linked: %w", b.Path, f.OSV, symbolName(s), s.Status, ErrInvalid)
				}
				if s.Scope != "" && s.Scope != ScopePackage && s.Scope != ScopeModule {
					return fmt.Errorf("binary %s: finding %s: symbol %s: scope %q, want package, module or none: %w", b.Path, f.OSV, symbolName(s), s.Scope, ErrInvalid)
				}
				for _, c := range s.Callsites {
					if c == nil {
						return fmt.Errorf("binary %s: finding %s: symbol %s: null callsite: %w", b.Path, f.OSV, symbolName(s), ErrInvalid)
					}
				}
			}
		}
	}
	return nil
}
