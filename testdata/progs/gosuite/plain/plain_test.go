package plain

import (
	"os"
	"testing"
)

func TestAdd(t *testing.T) {
	if Add(1, 2) != 3 {
		t.Fatal("Add")
	}
	if os.Getenv("REACH_GOSUITE_FAIL") != "" {
		t.Fatal("failing as REACH_GOSUITE_FAIL asks")
	}
}
