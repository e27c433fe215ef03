package textlang

import "testing"

// TestLang calls yaml.Unmarshal and language.Parse.
func TestLang(t *testing.T) {
	got, err := Lang("lang: en-US\n")
	if err != nil || got != "en-US" {
		t.Fatalf("Lang = %q, %v; want en-US", got, err)
	}
}

// TestNothing calls neither: run alone, the vulnerable code stays linked.
func TestNothing(t *testing.T) {}
