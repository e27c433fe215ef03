package fleet_test

import (
	"testing"

	"github.com/reach-sca/reach/internal/fleet"
	"github.com/reach-sca/reach/internal/server/store"
)

// TestLimitsAgree checks that Split keeps to the bounds the store checks:
// a batch over them would be refused with 400.
func TestLimitsAgree(t *testing.T) {
	if fleet.MaxBatchObservations != store.MaxObservations || fleet.MaxBatchRows != store.MaxRows {
		t.Errorf("fleet splits at %d observations and %d rows, the store refuses over %d and %d",
			fleet.MaxBatchObservations, fleet.MaxBatchRows, store.MaxObservations, store.MaxRows)
	}
}
