package probe

import (
	"context"
	"errors"
	"fmt"

	"github.com/cilium/ebpf/link"
)

// Arming through the keeper (see keeper_linux.go): the engine's side.

// armBatch is how many groups armKept hands the keeper in one message.
const armBatch = 256

// armKept arms spec's groups through the keeper, a batch of groups per
// message.
func (e *engine) armKept(ctx context.Context, spec ProcessSpec) error {
	var errs []error
	for start := 0; start < len(spec.Groups); start += armBatch {
		if err := ctx.Err(); err != nil {
			for _, g := range spec.Groups[start:] {
				errs = append(errs, &GroupError{Group: g.ID, Err: err})
			}
			break
		}
		var batch []*arming
		for _, g := range spec.Groups[start:min(start+armBatch, len(spec.Groups))] {
			a, err := e.beginArm(spec, g)
			if err != nil {
				errs = append(errs, fmt.Errorf("arm %s in process %d: %w", spec.Path, spec.PID, &GroupError{Group: g.ID, Err: err}))
				continue
			}
			batch = append(batch, a)
		}
		for i, err := range e.attachKept(spec.Path, batch) {
			if err := e.endArm(batch[i], nil, true, err); err != nil {
				errs = append(errs, fmt.Errorf("arm %s in process %d: %w", spec.Path, spec.PID, &GroupError{Group: batch[i].group, Err: err}))
			}
		}
	}
	return errors.Join(errs...)
}

// attachKept has the keeper attach the armings and returns the error of
// each, falling back to classic uprobes when the kernel refuses
// uprobe_multi links.
func (e *engine) attachKept(path string, armings []*arming) []error {
	errs := make([]error, len(armings))
	if len(armings) == 0 {
		return errs
	}
	e.mu.Lock()
	multi := e.multi
	e.mu.Unlock()
	todo := armings
	idx := make([]int, len(armings))
	for i := range idx {
		idx[i] = i
	}
	if multi != nil {
		res, err := e.keeper.attach(multi, true, path, armings)
		if err != nil {
			return fill(errs, err)
		}
		todo, idx = nil, nil
		var cause error
		for i, r := range res {
			err := r.Err.err()
			switch {
			case err == nil:
			case errors.Is(err, link.ErrNotSupported):
				todo, idx, cause = append(todo, armings[i]), append(idx, i), err
			default:
				errs[i] = attachErr(err)
			}
		}
		if len(todo) == 0 {
			return errs
		}
		if err := e.fallBack(cause); err != nil {
			for _, i := range idx {
				errs[i] = err
			}
			return errs
		}
	}
	e.mu.Lock()
	prog := e.classic
	e.mu.Unlock()
	res, err := e.keeper.attach(prog, false, path, todo)
	if err != nil {
		for _, i := range idx {
			errs[i] = err
		}
		return errs
	}
	for j, r := range res {
		err := r.Err.err()
		if err == nil {
			continue
		}
		err = attachErr(err)
		if a := todo[j]; r.Site >= 0 && r.Site < len(a.sites) {
			err = fmt.Errorf("site %d at file offset %#x: %w", r.Site, a.sites[r.Site].Offset, err)
		}
		errs[idx[j]] = err
	}
	return errs
}

func fill(errs []error, err error) []error {
	for i := range errs {
		errs[i] = err
	}
	return errs
}
