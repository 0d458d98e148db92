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
	if s.dialect == MySQL {
		var now time.Time
		if err := s.db.WithContext(ctx).Raw("SELECT UTC_TIMESTAMP(6)").Scan(&now).Error; err != nil {
			return time.Time{}, fmt.Errorf("read the database clock: %w", err)
		}
		return now.UTC(), nil
	}
	// SQLite runs in this process: its clock is the machine's, read by
	// SQLite itself so every lease time comes from one place.
	var text string
	if err := s.db.WithContext(ctx).Raw("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").Scan(&text).Error; err != nil {
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
func (s *Store) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (Lease, bool, error) {
	if name == "" || owner == "" || ttl <= 0 {
		return Lease{}, false, fmt.Errorf("acquire lease: need a name, an owner and a positive ttl (name %q, owner %q, ttl %s)", name, owner, ttl)
	}
	db := s.db.WithContext(ctx)
	// A few rounds cover a row released, or taken over, between two steps.
	for range 3 {
		now, err := s.Now(ctx)
		if err != nil {
			return Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
		}
		mine := leaseRow{Name: truncate(name, 128), Owner: truncate(owner, 128), AcquiredAt: dbTime(now), ExpiresAt: dbTime(now.Add(ttl))}
		res := s.whereTime(db.Model(&leaseRow{}).Where("name = ?", mine.Name), "expires_at", "<=", mine.AcquiredAt).
			Updates(map[string]any{"owner": mine.Owner, "acquired_at": mine.AcquiredAt, "expires_at": mine.ExpiresAt})
		if res.Error != nil {
			return Lease{}, false, fmt.Errorf("acquire lease %s: take over: %w", name, res.Error)
		}
		if res.RowsAffected == 1 {
			return mine.toDomain(), true, nil
		}
		ins := "INSERT OR IGNORE INTO recon_leases (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
		if s.dialect == MySQL {
			ins = "INSERT IGNORE INTO recon_leases (name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)"
		}
		res = db.Exec(ins, mine.Name, mine.Owner, mine.AcquiredAt, mine.ExpiresAt)
		if res.Error != nil {
			return Lease{}, false, fmt.Errorf("acquire lease %s: insert: %w", name, res.Error)
		}
		if res.RowsAffected == 1 {
			return mine.toDomain(), true, nil
		}
		cur, err := s.GetLease(ctx, name)
		if errors.Is(err, recon.ErrNotFound) {
			continue // released just now: try again
		}
		if err != nil {
			return Lease{}, false, fmt.Errorf("acquire lease %s: %w", name, err)
		}
		if cur.ExpiresAt.After(mine.AcquiredAt) {
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
// when owner no longer holds it.
func (s *Store) RenewLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	name, owner = truncate(name, 128), truncate(owner, 128)
	now, err := s.Now(ctx)
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, err)
	}
	res := s.db.WithContext(ctx).Model(&leaseRow{}).Where("name = ? AND owner = ?", name, owner).
		Update("expires_at", dbTime(now.Add(ttl)))
	if res.Error != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, res.Error)
	}
	if res.RowsAffected == 1 {
		return true, nil
	}
	// MySQL counts changed rows, not matched ones: an update to the same
	// expiry affects none. Ask who holds it.
	cur, err := s.GetLease(ctx, name)
	if errors.Is(err, recon.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return cur.Owner == owner, nil
}

// ReleaseLease gives lease name up if owner holds it, so the next pass need
// not wait for it to expire. It reports false when owner did not hold it.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) (bool, error) {
	res := s.db.WithContext(ctx).Where("name = ? AND owner = ?", truncate(name, 128), truncate(owner, 128)).
		Delete(&leaseRow{})
	if res.Error != nil {
		return false, fmt.Errorf("release lease %s: %w", name, res.Error)
	}
	return res.RowsAffected == 1, nil
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
