package portal

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/fibrixcloud/fibrix/provisioner/store"
)

const (
	sessionCookie = "fibrix_session"
	csrfCookie    = "fibrix_csrf"
	flashCookie   = "fibrix_flash"
	jwtIssuer     = "fibrix"
)

// Password rules: long enough to matter, short enough for bcrypt (72 bytes).
const (
	minPassword = 10
	maxPassword = 72
)

// validPassword checks length and guessability; personal are the account's
// email and organisation name.
func validPassword(field, pw string, personal ...string) error {
	switch n := utf8.RuneCountInString(pw); {
	case n == 0:
		return store.E(store.ErrInvalid, field, "enter a password")
	case n < minPassword:
		return store.E(store.ErrInvalid, field, fmt.Sprintf("use at least %d characters", minPassword))
	case len(pw) > maxPassword:
		return store.E(store.ErrInvalid, field, fmt.Sprintf("use at most %d bytes", maxPassword))
	}
	if why := weakPassword(pw, personal...); why != "" {
		return store.E(store.ErrInvalid, field, why)
	}
	return nil
}

func (s *Server) hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), s.cfg.PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// checkPassword compares in constant time; for an unknown account (empty
// hash) it still spends the time of one comparison so that timing does not
// tell which emails exist.
func (s *Server) checkPassword(hash, pw string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// sessionClaims ties a session to the password it was opened with: changing
// the password ends every other session.
type sessionClaims struct {
	jwt.RegisteredClaims
	PasswordStamp string `json:"pws"`
}

func (s *Server) passwordStamp(hash string) string {
	m := hmac.New(sha256.New, s.jwtKey)
	m.Write([]byte(hash))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// issueSession opens a server-side session and signs a token naming it.
func (s *Server) issueSession(ctx context.Context, u store.User, kind, ip, userAgent string) (string, time.Time, error) {
	sess, err := s.store.OpenSession(ctx, u.ID, kind, ip, userAgent, s.cfg.SessionTTL)
	if err != nil {
		return "", time.Time{}, err
	}
	tok, err := s.signSession(u, sess.ID, sess.CreatedAt, sess.ExpiresAt)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, sess.ExpiresAt, nil
}

// signSession signs a token naming session id of user u.
func (s *Server) signSession(u store.User, id string, issued, expires time.Time) (string, error) {
	claims := sessionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        id,
			Issuer:    jwtIssuer,
			Subject:   u.ID,
			IssuedAt:  jwt.NewNumericDate(issued),
			NotBefore: jwt.NewNumericDate(issued.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(expires),
		},
		PasswordStamp: s.passwordStamp(u.PasswordHash),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.jwtKey)
	if err != nil {
		return "", fmt.Errorf("sign session: %w", err)
	}
	return tok, nil
}

var errBadSession = errors.New("session is not valid")

// parseSession verifies a session token: HS256 only, expiry required, our issuer.
func (s *Server) parseSession(raw string) (sessionClaims, error) {
	var c sessionClaims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return s.jwtKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(jwtIssuer),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
	)
	if err != nil || c.Subject == "" || c.ID == "" {
		return sessionClaims{}, errBadSession
	}
	return c, nil
}
