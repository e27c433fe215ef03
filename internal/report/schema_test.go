package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// A small JSON Schema (draft-04) validator, enough for the SARIF 2.1.0
// schema: type, $ref to #/definitions, properties, additionalProperties,
// required, items, minItems, uniqueItems, minimum, maximum, pattern, enum,
// anyOf, oneOf and the formats uri, uri-reference and date-time. Keywords it
// does not know make it fail, so that a schema it cannot check is noticed.
type schemaValidator struct {
	root map[string]any
}

var knownKeywords = []string{
	"$schema", "id", "title", "description", "default", "definitions",
	"type", "$ref", "properties", "additionalProperties", "required", "items",
	"minItems", "uniqueItems", "minimum", "maximum", "pattern", "enum",
	"anyOf", "oneOf", "format",
}

func newSchemaValidator(schema []byte) (*schemaValidator, error) {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	return &schemaValidator{root: root}, nil
}

// validate returns every violation of doc against the schema.
func (v *schemaValidator) validate(doc []byte) ([]string, error) {
	var val any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&val); err != nil {
		return nil, fmt.Errorf("parse document: %w", err)
	}
	var errs []string
	v.check(v.root, val, "$", &errs)
	return errs, nil
}

func (v *schemaValidator) check(s map[string]any, val any, at string, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, at+": "+fmt.Sprintf(format, args...))
	}
	for k := range s {
		if !slices.Contains(knownKeywords, k) {
			fail("schema keyword %q not supported by the test validator", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/definitions/")
		def, _ := v.root["definitions"].(map[string]any)[name].(map[string]any)
		if !ok || def == nil {
			fail("unresolvable $ref %q", ref)
			return
		}
		v.check(def, val, at, errs)
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(val, t) }) {
			fail("want type %v, got %T", types, val)
			return
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		if !slices.ContainsFunc(enum, func(e any) bool { return canon(e) == canon(val) }) {
			fail("%v not in enum %v", val, enum)
		}
	}
	for _, kw := range []string{"anyOf", "oneOf"} {
		alts, ok := s[kw].([]any)
		if !ok {
			continue
		}
		n := 0
		for _, a := range alts {
			var sub []string
			v.check(a.(map[string]any), val, at, &sub)
			if len(sub) == 0 {
				n++
			}
		}
		if n == 0 || (kw == "oneOf" && n > 1) {
			fail("%s: %d alternatives match", kw, n)
		}
	}
	switch val := val.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := val[r.(string)]; !ok {
				fail("missing required property %q", r)
			}
		}
		for k, x := range val {
			if ps, ok := props[k].(map[string]any); ok {
				v.check(ps, x, at+"."+k, errs)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("property %q not allowed", k)
				}
			case map[string]any:
				v.check(ap, x, at+"."+k, errs)
			}
		}
	case []any:
		if mi, ok := s["minItems"].(json.Number); ok {
			if n, _ := mi.Int64(); int64(len(val)) < n {
				fail("%d items, want at least %d", len(val), n)
			}
		}
		if u, _ := s["uniqueItems"].(bool); u {
			seen := map[string]bool{}
			for _, x := range val {
				if c := canon(x); seen[c] {
					fail("duplicate item %s", c)
				} else {
					seen[c] = true
				}
			}
		}
		if is, ok := s["items"].(map[string]any); ok {
			for i, x := range val {
				v.check(is, x, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		}
	case json.Number:
		f, _ := val.Float64()
		if m, ok := s["minimum"].(json.Number); ok {
			if mf, _ := m.Float64(); f < mf {
				fail("%v below minimum %v", f, mf)
			}
		}
		if m, ok := s["maximum"].(json.Number); ok {
			if mf, _ := m.Float64(); f > mf {
				fail("%v above maximum %v", f, mf)
			}
		}
	case string:
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				fail("schema pattern %q: %v", p, err)
			} else if !re.MatchString(val) {
				fail("%q does not match %q", val, p)
			}
		}
		switch s["format"] {
		case "uri":
			if u, err := url.Parse(val); err != nil || u.Scheme == "" {
				fail("%q is not an absolute URI", val)
			}
		case "uri-reference":
			if _, err := url.Parse(val); err != nil {
				fail("%q is not a URI reference: %v", val, err)
			}
		case "date-time":
			if _, err := time.Parse(time.RFC3339, val); err != nil {
				fail("%q is not a date-time", val)
			}
		}
	}
}

func hasType(val any, t string) bool {
	switch t {
	case "object":
		_, ok := val.(map[string]any)
		return ok
	case "array":
		_, ok := val.([]any)
		return ok
	case "string":
		_, ok := val.(string)
		return ok
	case "boolean":
		_, ok := val.(bool)
		return ok
	case "null":
		return val == nil
	case "number":
		_, ok := val.(json.Number)
		return ok
	case "integer":
		n, ok := val.(json.Number)
		if !ok {
			return false
		}
		_, err := n.Int64()
		return err == nil
	}
	return false
}

func canon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
