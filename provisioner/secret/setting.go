package secret

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// BMCKeySetting names the database setting BMC passwords are sealed under.
const BMCKeySetting = "bmc_encryption_key"

// TOTPKeySetting names the database setting users' authenticator secrets
// are sealed under.
const TOTPKeySetting = "totp_encryption_key"

// Settings loads a shared secret, storing gen's value on first use; the
// store's Secret method.
type Settings interface {
	Secret(ctx context.Context, key string, gen func() string) (string, error)
}

// SharedBox returns the Box for the key kept in the named setting (base64,
// created on first use), shared by every process on the database.
func SharedBox(ctx context.Context, st Settings, setting string) (*Box, error) {
	enc, err := st.Secret(ctx, setting, func() string {
		b := make([]byte, KeySize)
		_, _ = rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", setting, err)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New(setting + " in the database is damaged")
	}
	box, err := NewBox(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	return box, nil
}
