package oracle

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadObservation(t *testing.T) {
	const report = `{"schema":"reach/v1","binaries":[
	  {"path":"/other","findings":[{"osv":"GO-1","module":"m","status":"reached","symbols":[{"package":"p","name":"F","status":"reached","hits":9}]}]},
	  {"path":"/bin","modules":[{"path":"m","version":"v1.0.0"}],"findings":[
	    {"osv":"GO-1","module":"m","status":"reached","symbols":[
	      {"package":"p","name":"F","status":"reached","hits":3,"stack":[{"function":"p.F"},{"function":"main.main"}]},
	      {"package":"p","name":"G","status":"linked"}]},
	    {"osv":"GO-2","module":"m","status":"reached","symbols":[
	      {"package":"p","name":"F","status":"reached","hits":3},
	      {"package":"p","name":"H","status":"reached","hits":5,"hits_lower_bound":true},
	      {"package":"q","name":"","status":"linked"}]},
	    {"osv":"GO-3","module":"w","status":"imported"},
	    {"osv":"GO-4","module":"v","status":"reached","whole_module":true,"symbols":[{"package":"v","name":"","scope":"module","status":"reached","hits":1}]}]}]}`
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	obs, err := readObservation(path, "/bin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key    Key
		status string
		hits   uint64
		lower  bool
	}{
		{Key{Package: "p", Name: "F"}, "reached", 3, false},
		{Key{Package: "p", Name: "G"}, "linked", 0, false},
		{Key{Package: "p", Name: "H"}, "reached", 5, true},
		{Key{Package: "q"}, "linked", 0, false},
		{Key{Module: "w"}, "imported", 0, false},
		{Key{Module: "v"}, "reached", 1, false},
	}
	for _, tt := range tests {
		if obs.Status[tt.key] != tt.status || obs.Hits[tt.key] != tt.hits || obs.LowerBound[tt.key] != tt.lower {
			t.Errorf("%v: %q %d hits lower bound %v, want %q %d %v", tt.key, obs.Status[tt.key], obs.Hits[tt.key], obs.LowerBound[tt.key], tt.status, tt.hits, tt.lower)
		}
	}
	if len(obs.Status) != len(tests) {
		t.Errorf("%d keys, want %d (the other binary's left out): %v", len(obs.Status), len(tests), obs.Status)
	}
	if got := obs.Stacks[Key{Package: "p", Name: "F"}]; len(got) != 2 || got[1] != "main.main" {
		t.Errorf("stack of p.F: %v", got)
	}
	if obs.Modules != 1 {
		t.Errorf("modules: %d, want 1", obs.Modules)
	}
	if _, err := readObservation(filepath.Join(t.TempDir(), "none.json"), "/bin"); err == nil {
		t.Error("a missing report read without error")
	}
}

func TestFromCoverageRuntime(t *testing.T) {
	tests := []struct {
		stack []string
		want  bool
	}{
		{[]string{"os.ReadDir", "internal/coverage/cfile.(*emitState).openMetaFile", "runtime.main"}, true},
		{[]string{"os.ReadDir", "runtime/coverage.processCoverTestDir"}, true},
		{[]string{"os.ReadDir", "main.main"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := fromCoverageRuntime(tt.stack); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.stack, got, tt.want)
		}
	}
}

func TestOutcomeDiff(t *testing.T) {
	base := parseOutcome(0, []byte("=== RUN   TestA\n--- PASS: TestA (0.00s)\n    --- SKIP: TestA/sub (0.00s)\n--- FAIL: TestB (1.00s)\nFAIL\n"), true)
	if base.Tests["TestA/sub"] != "SKIP" || base.Tests["TestB"] != "FAIL" || len(base.Tests) != 3 {
		t.Fatalf("parsed %v", base.Tests)
	}
	same := parseOutcome(0, []byte("--- PASS: TestA (0.50s)\n    --- SKIP: TestA/sub (0.00s)\n--- FAIL: TestB (2.00s)\n"), true)
	if d := same.Diff(base); d != "" {
		t.Errorf("same results differ: %s", d)
	}
	changed := parseOutcome(1, []byte("--- FAIL: TestA (0.50s)\n--- FAIL: TestB (2.00s)\n--- PASS: TestC (0.00s)\n"), true)
	if d := changed.Diff(base); d == "" {
		t.Error("changed results do not differ")
	}
}
