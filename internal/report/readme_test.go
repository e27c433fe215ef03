package report

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEFields checks that the JSON model README.md documents (the
// block under "## The report") names every field the report emits, and no
// field or value the report does not have.
func TestREADMEFields(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n## The report\n")
	if !ok {
		t.Fatal(`README.md has no "## The report" section`)
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 || !strings.Contains(block, `"schema": "reach/v1"`) {
		t.Fatal("README.md's report section has no code block with the JSON model")
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`"([a-z0-9_/]+)"`).FindAllStringSubmatch(block, -1) {
		documented[m[1]] = true
	}

	tags := map[string]bool{}
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeFor[Report]().PkgPath() {
			return
		}
		seen[typ] = true
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			tags[name] = true
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Report]())

	// Values the block shows: the schema's name, the modes, the statuses,
	// the scopes and the placeholder of an unwatched reason.
	values := []string{"reach/v1", "scan", "run", "attach", "reason",
		string(Reached), string(NotWatched), string(Linked), string(Imported),
		string(ScopePackage), string(ScopeModule)}
	for name := range tags {
		if !documented[name] {
			t.Errorf("the report emits field %q, which README.md's JSON model does not show", name)
		}
	}
	for name := range documented {
		if !tags[name] && !slices.Contains(values, name) {
			t.Errorf("README.md's JSON model shows %q, which is no field or value of the report", name)
		}
	}
}
