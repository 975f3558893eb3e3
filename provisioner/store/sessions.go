package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Session kinds: a browser cookie or an API session token.
const (
	SessionWeb = "web"
	SessionAPI = "api"
)

// maxSessions bounds the open sessions of one user; opening another ends the
// oldest.
const maxSessions = 50

// Session is one signed-in session of a user. The signed cookie or token
// names it; it counts only while the row is open.
type Session struct {
	ID         string
	UserID     string
	Kind       string
	IP         string
	UserAgent  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
}

// OpenSession records a new session for a user.
func (s *Store) OpenSession(ctx context.Context, userID, kind, ip, userAgent string, ttl time.Duration) (Session, error) {
	if kind != SessionWeb && kind != SessionAPI {
		return Session{}, E(ErrInvalid, "kind", "unknown session kind")
	}
	if ttl <= 0 {
		return Session{}, E(ErrInvalid, "ttl", "a session needs a positive lifetime")
	}
	ts := now()
	sess := Session{ID: newID(), UserID: userID, Kind: kind, IP: clip(ip, 64), UserAgent: clip(userAgent, 200),
		CreatedAt: ts, LastSeenAt: ts, ExpiresAt: ts.Add(ttl)}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Forget what has ended, then make room.
		if err := tx.Where("user_id = ? AND (expires_at < ? OR revoked_at IS NOT NULL)", userID, ts.Add(-24*time.Hour)).
			Delete(&Session{}).Error; err != nil {
			return fmt.Errorf("prune sessions: %w", err)
		}
		var open []Session
		if err := tx.Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", userID, ts).
			Order("created_at DESC").Find(&open).Error; err != nil {
			return fmt.Errorf("list sessions: %w", err)
		}
		if len(open) >= maxSessions {
			var old []string
			for _, o := range open[maxSessions-1:] {
				old = append(old, o.ID)
			}
			if err := tx.Model(&Session{}).Where("id IN ?", old).Update("revoked_at", ts).Error; err != nil {
				return fmt.Errorf("end old sessions: %w", err)
			}
		}
		return tx.Create(&sess).Error
	})
	if err != nil {
		return Session{}, fmt.Errorf("open session: %w", err)
	}
	return sess, nil
}

// ActiveSession returns the session if it is open and unexpired, noting its
// use at most once a minute.
func (s *Store) ActiveSession(ctx context.Context, id string) (Session, error) {
	db := s.db.WithContext(ctx)
	var sess Session
	ts := now()
	if err := db.Where("id = ? AND revoked_at IS NULL AND expires_at > ?", id, ts).Take(&sess).Error; err != nil {
		if errIsNotFound(err) {
			return Session{}, notFound("session")
		}
		return Session{}, fmt.Errorf("load session: %w", err)
	}
	if ts.Sub(sess.LastSeenAt) > time.Minute {
		if err := db.Model(&Session{}).Where("id = ?", id).Update("last_seen_at", ts).Error; err != nil {
			s.log.WarnContext(ctx, "note session use", "err", err)
		}
	}
	return sess, nil
}

// SessionUser returns the user of an open, unexpired session that names
// userID, reading both in one statement, and notes the session's use at
// most once a minute as ActiveSession does. It is ErrNotFound when the
// session has ended, expired or is another user's, or the user is gone.
func (s *Store) SessionUser(ctx context.Context, sessionID, userID string) (User, error) {
	db := s.db.WithContext(ctx)
	ts := now()
	var rows []struct {
		User
		SessionLastSeenAt time.Time `gorm:"column:session_last_seen_at"`
	}
	err := db.Table("sessions").Select("users.*, sessions.last_seen_at AS session_last_seen_at").
		Joins("JOIN users ON users.id = sessions.user_id").
		Where("sessions.id = ? AND sessions.user_id = ? AND sessions.revoked_at IS NULL AND sessions.expires_at > ?", sessionID, userID, ts).
		Limit(1).Scan(&rows).Error
	if err != nil {
		return User{}, fmt.Errorf("load session: %w", err)
	}
	if len(rows) == 0 {
		return User{}, notFound("session")
	}
	if ts.Sub(rows[0].SessionLastSeenAt) > time.Minute {
		if err := db.Model(&Session{}).Where("id = ?", sessionID).Update("last_seen_at", ts).Error; err != nil {
			s.log.WarnContext(ctx, "note session use", "err", err)
		}
	}
	return rows[0].User, nil
}

// ListSessions returns a user's open sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]Session, error) {
	var out []Session
	err := s.db.WithContext(ctx).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ?", userID, now()).
		Order("created_at DESC").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return out, nil
}

// EndSession closes one session of a user (logging out).
func (s *Store) EndSession(ctx context.Context, userID, id string) error {
	res := s.db.WithContext(ctx).Model(&Session{}).Where("id = ? AND user_id = ? AND revoked_at IS NULL", id, userID).
		Update("revoked_at", now())
	if res.Error != nil {
		return fmt.Errorf("end session: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return notFound("session")
	}
	return nil
}

// EndOtherSessions closes every open session of a user but keep ("" ends
// them all) and reports how many ended.
func (s *Store) EndOtherSessions(ctx context.Context, a Actor, userID, keep string) (int64, error) {
	var n int64
	err := s.change(ctx, a, "auth.sign_out_everywhere", &Target{Type: "user", ID: userID, TenantID: a.TenantID}, func(tx *gorm.DB) error {
		var err error
		n, err = endSessions(tx.Where("user_id = ? AND id <> ?", userID, keep))
		return err
	})
	return n, err
}

// endSessions revokes the open sessions the scoped query selects.
func endSessions(q *gorm.DB) (int64, error) {
	res := q.Model(&Session{}).Where("revoked_at IS NULL").Update("revoked_at", now())
	if res.Error != nil {
		return 0, fmt.Errorf("end sessions: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// endTenantSessions revokes every open session of a tenant's members.
func endTenantSessions(tx *gorm.DB, tenantID string) error {
	_, err := endSessions(tx.Where("user_id IN (SELECT id FROM users WHERE tenant_id = ?)", tenantID))
	return err
}

func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
