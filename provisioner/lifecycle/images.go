package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ImageCache fetches image files into a local directory, named by checksum,
// so that each is downloaded once and verified before use.
type ImageCache struct {
	Dir    string
	Client *http.Client
	mu     sync.Mutex // one download at a time is plenty for a rack
}

// Fetch implements Images: file:// URLs are used in place after their
// checksum is verified; http(s) URLs are downloaded into the cache.
func (c *ImageCache) Fetch(ctx context.Context, rawURL, checksum string) (string, error) {
	want := strings.TrimPrefix(checksum, "sha256:")
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("image address %q: %w", rawURL, err)
	}
	if u.Scheme == "file" {
		if err := verify(u.Path, want); err != nil {
			return "", err
		}
		return u.Path, nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("image address %q: only file, http and https are supported", u.Redacted())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	path := filepath.Join(c.Dir, want)
	if verify(path, want) == nil {
		return path, nil
	}
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", err
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", u.Redacted(), err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: %s", u.Redacted(), res.Status)
	}
	tmp, err := os.CreateTemp(c.Dir, want+".part-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), res.Body); err != nil {
		tmp.Close()
		return "", fmt.Errorf("download %s: %w", u.Redacted(), err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("download %s: checksum mismatch: got sha256 %s, want %s", u.Redacted(), got, want)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

func verify(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("image file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("image file %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("image file %s has sha256 %s, want %s", path, got, want)
	}
	return nil
}
