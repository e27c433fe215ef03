package probe

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestFailedGroups(t *testing.T) {
	boom := errors.New("boom")
	err := errors.Join(
		fmt.Errorf("arm x in process 1: %w", &GroupError{Group: 7, Err: boom}),
		&GroupError{Group: 9, Err: context.Canceled},
	)
	failed, ok := FailedGroups(err)
	if !ok || len(failed) != 2 || !errors.Is(failed[7], boom) || !errors.Is(failed[9], context.Canceled) {
		t.Errorf("FailedGroups(%v) = %v, %v", err, failed, ok)
	}
	if failed, ok := FailedGroups(errors.Join(err, ErrClosed)); ok || len(failed) != 2 {
		t.Errorf("an error about no group: got ok=%v, %v", ok, failed)
	}
	if failed, ok := FailedGroups(nil); !ok || len(failed) != 0 {
		t.Errorf("FailedGroups(nil) = %v, %v", failed, ok)
	}
}
