package lang

import "testing"

func TestCanon(t *testing.T) {
	if got, err := Canon("en-us"); err != nil || got != "en-US" {
		t.Fatalf("Canon = %q, %v", got, err)
	}
}
