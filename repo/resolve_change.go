package repo

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// ResolveWithChange resolves mismatch id (OPEN or ACKNOWLEDGED) and applies
// out, a person's change to the mismatch's order (recon.Accept,
// recon.CloseLocally), in one transaction: the guarded order update with its
// outbox and audit rows (meta.Source), the resolution and its history event.
// When the guard finds the order moved since it was read, nothing is written
// and the error wraps recon.ErrConflict; a mismatch in the wrong state gives
// ErrWrongResolution, a missing one recon.ErrNotFound.
func (s *Store) ResolveWithChange(ctx context.Context, id int64, out recon.Outcome, by, note string, meta CommitMeta) error {
	by, note = strings.TrimSpace(by), strings.TrimSpace(note)
	if by == "" || note == "" {
		return fmt.Errorf("resolve mismatch %d: who resolves it and why (a note) must be given", id)
	}
	if out.Action != recon.ActionTransition {
		return fmt.Errorf("resolve mismatch %d: action %s changes no order", id, out.Action)
	}
	err := s.retryTx(ctx, "resolve", func(tx *gorm.DB) error {
		m, err := getMismatch(tx, id)
		if err != nil {
			return err
		}
		if m.OrderID != out.Order.ID {
			return fmt.Errorf("mismatch is about order %d, not %d", m.OrderID, out.Order.ID)
		}
		w := newBatchWriter(ctx, s, tx, meta)
		defer w.close()
		if err := w.loadKeys([]recon.Outcome{out}); err != nil {
			return err
		}
		_, ok, err := w.apply(out)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("order %s moved since it was read (version %d, %s): %w",
				out.Order.OrderNo, out.Order.Version, out.Order.Status, recon.ErrConflict)
		}
		if err := w.flush(); err != nil {
			return err
		}
		return changeResolutionTx(tx, id, ActionResolved, by, note, meta.Now,
			sqlResolve, truncate(by, 128), note, dbTime(meta.Now), id)
	})
	if err != nil {
		return fmt.Errorf("resolve mismatch %d with a change of its order: %w", id, err)
	}
	return nil
}
