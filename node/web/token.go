package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the name of the file in the data directory that keeps the
// page's token (mode 0600).
const TokenFile = "web.token"

// tokenBytes is the size of a token: 256 random bits.
const tokenBytes = 32

// token is the page's token and the cookie a browser that brought it gets.
// The cookie is derived from the token (an HMAC of it), so it survives a
// restart of the daemon and dies with the token: replacing the token logs
// every browser out. Its name is derived too, so that the pages of two data
// directories served on one machine (cookies are not kept apart by port)
// do not overwrite each other's cookie.
type token struct {
	value       string
	cookieName  string
	cookieValue string
	// ctx ends when the token is replaced: the requests it let in (event
	// streams) end with it.
	ctx    context.Context
	cancel context.CancelFunc
}

func newToken(value string) *token {
	mac := hmac.New(sha256.New, []byte(value))
	mac.Write([]byte("peercollab web cookie v1"))
	name := sha256.Sum256([]byte("peercollab web cookie name v1\x00" + value))
	t := &token{
		value:       value,
		cookieName:  "peercollab-" + hex.EncodeToString(name[:4]),
		cookieValue: base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// matches reports, in constant time, whether s is the token.
func (t *token) matches(s string) bool {
	return subtle.ConstantTimeCompare([]byte(s), []byte(t.value)) == 1
}

// cookieMatches reports, in constant time, whether s is the cookie's value.
func (t *token) cookieMatches(s string) bool {
	return subtle.ConstantTimeCompare([]byte(s), []byte(t.cookieValue)) == 1
}

// randomToken returns a new token: 32 random bytes, base64url without
// padding (43 characters, safe in a URL's query as it is).
func randomToken() string {
	b := make([]byte, tokenBytes)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// validToken reports whether s has the form of a token.
func validToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == tokenBytes
}

// loadToken reads the token kept at path, making it mode 0600 if it was
// not; with no file there, or one that holds no token, it writes a new one.
func loadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if v := strings.TrimSpace(string(data)); validToken(v) {
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != 0o600 {
				if err := os.Chmod(path, 0o600); err != nil {
					return "", fmt.Errorf("web: %w", err)
				}
				log.Warnw("the web page's token file was readable by others; it is mode 0600 now, replace the token with `peercollab web --rotate`", "file", path)
			}
			return v, nil
		}
		log.Warnw("the web page's token file holds no token; writing a new one", "file", path)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("web: read token: %w", err)
	}
	v := randomToken()
	return v, writeToken(path, v)
}

// writeToken replaces the file at path with one holding the token v, mode
// 0600, atomically: a reader sees the old token or the new one.
func writeToken(path, v string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".web.token-*")
	if err != nil {
		return fmt.Errorf("web: write token: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful rename, there is none
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("web: write token: %w", err)
	}
	_, err = f.WriteString(v + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("web: write token: %w", err)
	}
	return nil
}
