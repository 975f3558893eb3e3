package portal

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fibrixcloud/fibrix/portal/otp"
	"github.com/fibrixcloud/fibrix/provisioner/store"
)

const (
	// twoFactorCookie carries a sign-in that has passed the password and
	// waits for the code.
	twoFactorCookie = "fibrix_2fa"
	// twoFactorTTL is how long the code step waits after the password.
	twoFactorTTL = 5 * time.Minute
	// twoFactorIssuer keeps the waiting sign-in's token from ever passing
	// as a session token, which is issued as jwtIssuer.
	twoFactorIssuer = jwtIssuer + "/two-factor"
	// totpIssuer is the name authenticator apps show for the account.
	totpIssuer = "Fibrix Cloud"
)

// signTwoFactor signs the waiting sign-in of u, bound to its password.
func (s *Server) signTwoFactor(u store.User, now time.Time) (string, time.Time, error) {
	exp := now.Add(twoFactorTTL)
	claims := sessionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: twoFactorIssuer, Subject: u.ID,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		PasswordStamp: s.passwordStamp(u.PasswordHash),
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.jwtKey)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign two-factor step: %w", err)
	}
	return tok, exp, nil
}

// twoFactorUser returns the user whose sign-in waits in raw, while the
// token is current and the password unchanged.
func (s *Server) twoFactorUser(c *fiber.Ctx, raw string) (store.User, error) {
	expired := &httpError{status: fiber.StatusUnauthorized, code: "two_factor_expired", message: "the sign-in has expired; enter your email and password again"}
	var cl sessionClaims
	_, err := jwt.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return s.jwtKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithIssuer(twoFactorIssuer), jwt.WithLeeway(5*time.Second))
	if err != nil || cl.Subject == "" {
		return store.User{}, expired
	}
	u, err := s.store.GetUser(c.UserContext(), cl.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (cl.PasswordStamp != s.passwordStamp(u.PasswordHash) || !u.TwoFactor())) {
		return store.User{}, expired
	}
	return u, err
}

// secondFactor checks code, an authenticator code or a recovery code, for
// u under the sign-in rate limits, spending it, and records the sign-in.
func (s *Server) secondFactor(c *fiber.Ctx, u store.User, code string) error {
	ctx := c.UserContext()
	code = codeOf(code)
	if code == "" {
		return &httpError{status: fiber.StatusUnauthorized, code: "two_factor_required", field: "code",
			message: "enter the 6-digit code from your authenticator app, or one of your recovery codes"}
	}
	ok, err := s.spendCode(c, u, code)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.status == fiber.StatusTooManyRequests {
			s.auditAuth(ctx, c, u.Email, "auth.login", store.ResultFailure, "rate limited at the second factor")
		}
		return err
	}
	if !ok {
		s.auditAuth(ctx, c, u.Email, "auth.login", store.ResultFailure, "wrong second-factor code")
		return &httpError{status: fiber.StatusUnauthorized, code: "invalid_code", field: "code",
			message: "that code is not right, or was already used; enter the current code from your authenticator app"}
	}
	return s.store.RecordLogin(ctx, store.Actor{UserID: u.ID, Email: u.Email, TenantID: u.Tenant(), IP: c.IP()})
}

// spendCode accepts a current authenticator code once, or an unused
// recovery code, under rate limits per user and address like the
// password's: failures wait longer and longer.
func (s *Server) spendCode(c *fiber.Ctx, u store.User, code string) (bool, error) {
	ip := c.IP()
	key := "login:otp:" + u.ID + "|" + ip
	if n, last := s.limiter.recent(key, loginWindow); loginDelay(n) > 0 {
		if wait := last.Add(loginDelay(n)).Sub(s.limiter.now()); wait > 0 {
			return false, tooManyLogins(wait)
		}
	}
	ok, err := s.checkCode(c, u, code)
	switch {
	case err != nil:
		return false, err
	case ok:
		s.limiter.reset(key)
	default:
		s.limiter.fail(key, loginWindow)
		s.limiter.fail("login:ip:"+ip, loginWindow)
	}
	return ok, nil
}

func (s *Server) checkCode(c *fiber.Ctx, u store.User, code string) (bool, error) {
	ctx := c.UserContext()
	if len(code) == otp.Digits && strings.Trim(code, "0123456789") == "" {
		secret, err := s.totp.Open(u.TOTPSecret)
		if err != nil {
			return false, fmt.Errorf("open authenticator secret of %s: %w", u.ID, err)
		}
		step, ok := otp.Match(secret, code, s.limiter.now())
		if !ok {
			return false, nil
		}
		return s.store.UseTwoFactorStep(ctx, u.ID, step)
	}
	normal := normalRecoveryCode(code)
	if normal == "" {
		return false, nil
	}
	ok, err := s.store.UseRecoveryCode(ctx, u.ID, hashRecoveryCode(normal))
	if ok {
		s.auditAuth(ctx, c, u.Email, "auth.recovery_code", store.ResultSuccess, "signed in with a recovery code")
	}
	return ok, err
}

// beginTwoFactor gives u a new authenticator secret in waiting and returns
// it with the otpauth URL the QR code holds.
func (s *Server) beginTwoFactor(c *fiber.Ctx, u store.User) (secret, uri string, err error) {
	secret = otp.NewSecret()
	sealed, err := s.totp.Seal(secret)
	if err != nil {
		return "", "", err
	}
	if err := s.store.BeginTwoFactor(c.UserContext(), u.ID, sealed); err != nil {
		return "", "", err
	}
	return secret, otp.URL(totpIssuer, u.Email, secret), nil
}

// enableTwoFactor confirms the secret in waiting with code and returns the
// recovery codes to show once.
func (s *Server) enableTwoFactor(c *fiber.Ctx, code string) ([]string, error) {
	ctx := c.UserContext()
	id := who(c)
	u, err := s.store.GetUser(ctx, id.User.ID)
	if err != nil {
		return nil, err
	}
	if u.TwoFactor() {
		return nil, store.E(store.ErrConflict, "", "two-factor sign-in is already on")
	}
	if u.TOTPSecret == "" {
		return nil, store.E(store.ErrConflict, "", "there is no authenticator waiting to be confirmed; start again")
	}
	secret, err := s.totp.Open(u.TOTPSecret)
	if err != nil {
		return nil, fmt.Errorf("open authenticator secret of %s: %w", u.ID, err)
	}
	code = codeOf(code)
	step, ok := otp.Match(secret, code, s.limiter.now())
	if !ok {
		return nil, store.E(store.ErrInvalid, "code", "that code does not match; check that the app shows Fibrix Cloud and the phone's clock is right, then enter the current code")
	}
	codes, hashes := newRecoveryCodes()
	if err := s.store.EnableTwoFactor(ctx, s.actor(c), u.ID, step, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

// disableTwoFactor turns two-factor sign-in off for the signed-in user,
// who proves it is them with the password and a code.
func (s *Server) disableTwoFactor(c *fiber.Ctx, password, code string) error {
	ctx := c.UserContext()
	id := who(c)
	u, err := s.store.GetUser(ctx, id.User.ID)
	if err != nil {
		return err
	}
	if !u.TwoFactor() {
		return store.E(store.ErrConflict, "", "two-factor sign-in is already off")
	}
	if u.IsStaff() {
		// Refused before a code is spent; the store checks again.
		required, err := s.store.StaffTwoFactorRequired(ctx)
		if err != nil {
			return err
		}
		if required {
			return store.E(store.ErrForbidden, "", "staff accounts must keep two-factor sign-in; an admin can lift the requirement under Users")
		}
	}
	key := "password:user:" + u.ID
	if blocked, wait := s.limiter.blocked(key, passwordChangeTries, loginWindow); blocked {
		return &httpError{status: fiber.StatusTooManyRequests, code: "rate_limited", field: "password",
			message: "too many wrong passwords; try again later", retryAfter: int(wait.Seconds()) + 1}
	}
	if !s.checkPassword(u.PasswordHash, password) {
		s.limiter.fail(key, loginWindow)
		return store.E(store.ErrInvalid, "password", "the password is not right")
	}
	s.limiter.reset(key)
	ok, err := s.spendCode(c, u, codeOf(code))
	if err != nil {
		return err
	}
	if !ok {
		return store.E(store.ErrInvalid, "code", "that code is not right, or was already used")
	}
	return s.store.DisableTwoFactor(ctx, s.actor(c), u.ID)
}

// renewRecoveryCodes gives the signed-in user new recovery codes for a
// current code, and returns them to show once.
func (s *Server) renewRecoveryCodes(c *fiber.Ctx, code string) ([]string, error) {
	ctx := c.UserContext()
	u, err := s.store.GetUser(ctx, who(c).User.ID)
	if err != nil {
		return nil, err
	}
	if !u.TwoFactor() {
		return nil, store.E(store.ErrConflict, "", "two-factor sign-in is off")
	}
	ok, err := s.spendCode(c, u, codeOf(code))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, store.E(store.ErrInvalid, "code", "that code is not right, or was already used")
	}
	codes, hashes := newRecoveryCodes()
	if err := s.store.ReplaceRecoveryCodes(ctx, s.actor(c), u.ID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}
