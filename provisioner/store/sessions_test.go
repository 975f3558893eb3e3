package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

func TestSessions(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "sessions")
		other := setup(t, s, "neighbour")
		open := func(u store.User) store.Session {
			t.Helper()
			sess, err := s.OpenSession(ctx, u.ID, store.SessionWeb, "192.0.2.7", "Firefox", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return sess
		}
		active := func(id string) bool {
			_, err := s.ActiveSession(ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		if _, err := s.OpenSession(ctx, f.owner.ID, "cookie", "", "", time.Hour); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("unknown kind: %v", err)
		}
		if _, err := s.OpenSession(ctx, f.owner.ID, store.SessionWeb, "", "", 0); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("no lifetime: %v", err)
		}
		a, b, c := open(f.owner), open(f.owner), open(f.owner)
		theirs := open(other.owner)

		// Another user cannot end my session.
		if err := s.EndSession(ctx, other.owner.ID, a.ID); !errors.Is(err, store.ErrNotFound) || !active(a.ID) {
			t.Errorf("end another user's session: %v", err)
		}
		if err := s.EndSession(ctx, f.owner.ID, a.ID); err != nil || active(a.ID) {
			t.Fatalf("logout: %v", err)
		}
		if err := s.EndSession(ctx, f.owner.ID, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("logout twice: %v", err)
		}
		n, err := s.EndOtherSessions(ctx, f.actor, f.owner.ID, b.ID)
		if err != nil || n != 1 || !active(b.ID) || active(c.ID) || !active(theirs.ID) {
			t.Errorf("sign out everywhere else: %d %v", n, err)
		}
		list, err := s.ListSessions(ctx, f.owner.ID)
		if err != nil || len(list) != 1 || list[0].ID != b.ID || list[0].UserAgent != "Firefox" {
			t.Errorf("list: %+v %v", list, err)
		}

		// Suspension ends every member's session; unsuspending opens none.
		if err := s.SuspendTenant(ctx, store.Actor{Email: "staff@example.com"}, f.tenant.ID, "unpaid"); err != nil {
			t.Fatal(err)
		}
		if active(b.ID) || !active(theirs.ID) {
			t.Error("suspension left the member's session open, or ended another tenant's")
		}
		// A new password ends the sessions opened with the old one.
		d := open(other.owner)
		if err := s.ChangePassword(ctx, other.actor, other.owner.ID, "new hash"); err != nil {
			t.Fatal(err)
		}
		if active(theirs.ID) || active(d.ID) {
			t.Error("password change left sessions open")
		}
	})
}

func TestSessionsAreBounded(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "bounded")
		var first store.Session
		for i := range 51 {
			sess, err := s.OpenSession(ctx, f.owner.ID, store.SessionAPI, "", "", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = sess
			}
		}
		list, _ := s.ListSessions(ctx, f.owner.ID)
		if len(list) != 50 {
			t.Errorf("%d open sessions, want 50", len(list))
		}
		if _, err := s.ActiveSession(ctx, first.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the oldest session is still open: %v", err)
		}
	})
}

// TestSessionUser checks the one-statement read the portal authenticates
// with: it answers only for an open, unexpired session of that very user.
func TestSessionUser(t *testing.T) {
	eachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := setup(t, s, "session-user")
		other := setup(t, s, "session-other")
		sess, err := s.OpenSession(ctx, f.owner.ID, store.SessionWeb, "192.0.2.7", "Firefox", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		short, err := s.OpenSession(ctx, f.owner.ID, store.SessionAPI, "192.0.2.7", "curl", time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		u, err := s.SessionUser(ctx, sess.ID, f.owner.ID)
		if err != nil || u.ID != f.owner.ID || u.Email != f.owner.Email || u.PasswordHash != f.owner.PasswordHash || u.Tenant() != f.owner.Tenant() {
			t.Fatalf("open session: %+v %v", u, err)
		}
		time.Sleep(5 * time.Millisecond)
		for name, c := range map[string]struct{ id, user string }{
			"another user's claim": {sess.ID, other.owner.ID},
			"expired":              {short.ID, f.owner.ID},
			"unknown":              {"no-such-session", f.owner.ID},
		} {
			if _, err := s.SessionUser(ctx, c.id, c.user); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if err := s.EndSession(ctx, f.owner.ID, sess.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SessionUser(ctx, sess.ID, f.owner.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ended session still answers: %v", err)
		}
	})
}
