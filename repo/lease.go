package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// Lease is a recon_leases row: name is held by owner until ExpiresAt, by
// the database's clock. A lease keeps passes of one kind and shard from
// running at the same time, across processes and machines; a holder that
// dies without releasing it blocks others until it expires.
type Lease struct {
	Name       string
	Owner      string
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

type leaseRow struct {
	Name       string `gorm:"primaryKey"`
	Owner      string
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

func (leaseRow) TableName() string { return "recon_leases" }

func (r leaseRow) toDomain() Lease {
	return Lease{Name: r.Name, Owner: r.Owner, AcquiredAt: r.AcquiredAt.UTC(), ExpiresAt: r.ExpiresAt.UTC()}
}

// Now reads the database's clock (UTC). Leases expire by it, so processes
// on machines whose clocks disagree still agree on who holds a lease.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	return s.nowOf(s.db.WithContext(ctx))
}

// nowOf reads the database's clock through db (a transaction's, so that the
// time a lease step compares with is read where it writes).
func (s *Store) nowOf(db *gorm.DB) (time.Time, error) {
	if s.dialect == MySQL {
		var now time.Time
		if err := db.Raw("SELECT UTC_TIMESTAMP(6)").Scan(&now).Error; err != nil {
			return time.Time{}, fmt.Errorf("read the database clock: %w", err)
		}
		return now.UTC(), nil
	}
	// SQLite runs in this process: its clock is the machine's, read by
	// SQLite itself so every lease time comes from one place.
	var text string
	if err := db.Raw("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").Scan(&text).Error; err != nil {
		return time.Time{}, fmt.Errorf("read the database clock: %w", err)
	}
	now, err := time.ParseInLocation("2006-01-02 15:04:05.999", text, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the database clock: %q: %w", text, err)
	}
	return now, nil
}

// AcquireLease takes lease name for owner for ttl when nobody holds it or
// its holder's lease has expired, both by the database's clock (Now). Each
// step is one guarded statement (an insert that the primary key refuses,
// or an update that matches only an expired row), so of any number of
// concurrent callers at most one gets it. It reports whether owner got it,
// and the lease as it stands: owner's on success, the current holder's
// otherwise. A lease is not re-entrant: an owner that asks again while
// holding it is refused like anyone else.
//
// On a Galera cluster two nodes taking the same lease conflict at commit,
// and the loser's attempt is rolled back and run again (retryTx), when it
// finds the winner's row. One that still conflicts after the reruns reports
// the lease held: another process is taking it.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (Lease, bool, error) {
	if name == "" || owner == "" || ttl <= 0 {
		return Lease{}, false, fmt.Errorf("acquire lease: need a name, an owner and a positive ttl (name %q, owner %q, ttl %s)", name, owner, ttl)
	}
	ins := "INSERT OR IGNORE INTO recon_leases (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
	if s.dialect == MySQL {
		ins = "INSERT IGNORE INTO recon_leases (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
	}
	// A few rounds cover a row released, or taken over, between two steps.
	for range 3 {
		var mine leaseRow
		var got, gone bool
		var cur Lease
		err := s.retryTx(ctx, "lease", func(tx *gorm.DB) error {
			got, gone = false, false
			now, err := s.nowOf(tx)
			if err != nil {
				return err
			}
			mine = leaseRow{Name: truncate(name, 128), Owner: truncate(owner, 128), AcquiredAt: dbTime(now), ExpiresAt: dbTime(now.Add(ttl))}
			res := s.whereTime(tx.Model(&leaseRow{}).Where("name = ?", mine.Name), "expires_at", "<=", mine.AcquiredAt).
				Updates(map[string]any{"owner": mine.Owner, "acquired_at": mine.AcquiredAt, "expires_at": mine.ExpiresAt})
			if res.Error != nil {
				return fmt.Errorf("take over: %w", res.Error)
			}
			if res.RowsAffected == 1 {
				got = true
				return nil
			}
			res = tx.Exec(ins, mine.Name, mine.Owner, mine.AcquiredAt, mine.ExpiresAt)
			if res.Error != nil {
				return fmt.Errorf("insert: %w", res.Error)
			}
			if res.RowsAffected == 1 {
				got = true
				return nil
			}
			var r leaseRow
			err = tx.Where("name = ?", mine.Name).Take(&r).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				gone = true // released just now: try again
				return nil
			}
			cur = r.toDomain()
			return err
		})
		switch {
		case err != nil && retryable(err):
			// Still losing to other writers after the reruns: someone is
			// taking the lease right now. Skip as held.
			if held, gerr := s.GetLease(ctx, name); gerr == nil {
				return held, false, nil
			}
			return Lease{Name: name, Owner: "(another process, taking it: " + err.Error() + ")"}, false, nil
		case err != nil:
			return Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
		case got:
			return mine.toDomain(), true, nil
		case gone:
			continue
		case cur.ExpiresAt.After(mine.AcquiredAt):
			return cur, false, nil
		}
		// Expired, but after our update looked: try again.
	}
	cur, err := s.GetLease(ctx, name)
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return cur, false, nil
}

// RenewLease moves the expiry of lease name to ttl from the database's
// clock if owner still holds it. A lease that expired is still owner's to
// renew as long as nobody took it over. It reports false, with a nil error,
// when owner no longer holds it; an error says nothing about who holds it.
func (s *Store) RenewLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	name, owner = truncate(name, 128), truncate(owner, 128)
	var held bool
	err := s.retryTx(ctx, "lease", func(tx *gorm.DB) error {
		now, err := s.nowOf(tx)
		if err != nil {
			return err
		}
		res := tx.Model(&leaseRow{}).Where("name = ? AND owner = ?", name, owner).Update("expires_at", dbTime(now.Add(ttl)))
		if res.Error != nil {
			return res.Error
		}
		if held = res.RowsAffected == 1; held {
			return nil
		}
		// MySQL counts changed rows, not matched ones: an update to the
		// same expiry affects none. Ask who holds it.
		var n int64
		if err := tx.Model(&leaseRow{}).Where("name = ? AND owner = ?", name, owner).Count(&n).Error; err != nil {
			return err
		}
		held = n == 1
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return held, nil
}

// ReleaseLease gives lease name up if owner holds it, so the next pass need
// not wait for it to expire. It reports false when owner did not hold it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) (bool, error) {
	n, err := s.writeOne(ctx, "lease", "DELETE FROM recon_leases WHERE name = ? AND owner = ?", truncate(name, 128), truncate(owner, 128))
	if err != nil {
		return false, fmt.Errorf("release lease %s: %w", name, err)
	}
	return n == 1, nil
}

// GetLease reads lease name, expired or not. It returns an error wrapping
// recon.ErrNotFound when nobody holds it.
func (s *Store) GetLease(ctx context.Context, name string) (Lease, error) {
	var r leaseRow
	err := s.db.WithContext(ctx).Where("name = ?", truncate(name, 128)).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Lease{}, fmt.Errorf("lease %s: %w", name, recon.ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("read lease %s: %w", name, err)
	}
	return r.toDomain(), nil
}
