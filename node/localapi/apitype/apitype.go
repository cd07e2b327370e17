// Package apitype is the contract of the node's local API: the requests the
// daemon takes, the views it answers with, its error body and codes, and the
// event types of its stream with their payloads. The daemon's server
// (node/localapi) converts the node's own types into these, and the typed
// client (node/localapi/client) speaks only these, so that a program can
// drive a daemon without linking the node.
//
// It imports nothing of the node: its value types (Fingerprint, Scope,
// PresenceStatus, ...) are its own and travel as the text they marshal to.
// Enumerations are strings, so that a client decodes values that a newer
// daemon adds; the constants list those this version knows.
//
// The API is JSON over HTTP on a unix socket in the data directory (see
// SocketPath). Every error answer is an ErrorBody; the event stream
// (GET /v1/events) is server-sent events whose data is an Event.
package apitype

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// SocketFile is the name of the API socket in a data directory.
const SocketFile = "api.sock"

// SocketPath returns the API socket of the data directory home.
func SocketPath(home string) string { return filepath.Join(home, SocketFile) }

// MaxSocketPath is the longest path, in bytes, that a unix socket may have
// on this system: the size of sun_path less its terminating NUL (107 on
// Linux and Windows, 103 on macOS and the BSDs).
func MaxSocketPath() int {
	switch runtime.GOOS {
	case "linux", "android", "windows":
		return 107
	}
	return 103
}

// CheckSocketPath returns an error that says what to do when path is too
// long for a unix socket, as the API socket of a deep data directory is.
func CheckSocketPath(path string) error {
	if n := len(path); n > MaxSocketPath() {
		return fmt.Errorf("the API socket %s would be %d bytes long, more than the %d a unix socket may have; use a shorter --home", path, n, MaxSocketPath())
	}
	return nil
}

// Environment variables in which the daemon hands a launched application
// the invitation that launched it.
const (
	// EnvInvitation is the invitation's ID (see GET /v1/invitations/{id}).
	EnvInvitation = "PEERCOLLAB_INVITATION"
	// EnvHome is the daemon's data directory.
	EnvHome = "PEERCOLLAB_HOME"
	// EnvApp is the application's ID.
	EnvApp = "PEERCOLLAB_APP"
	// EnvInviter is the inviter's peer ID.
	EnvInviter = "PEERCOLLAB_INVITER"
	// EnvSession is the session the invitation is to, if any.
	EnvSession = "PEERCOLLAB_SESSION"
)

// Fingerprint is the SHA-256 fingerprint of a certificate. Its text form is
// colon-separated upper-case hex; UnmarshalText also takes plain hex, in
// either case. The zero value is a fingerprint of all zeros.
type Fingerprint [32]byte

// String returns the colon-separated hex form.
func (f Fingerprint) String() string {
	var b strings.Builder
	for i, c := range f {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler.
func (f Fingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Fingerprint) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(strings.ReplaceAll(string(text), ":", ""))
	if err != nil || len(b) != len(f) {
		return fmt.Errorf("apitype: bad fingerprint %q", text)
	}
	copy(f[:], b)
	return nil
}

// Change says what happened to an item of a list: a contact, a person near,
// an application or an object.
type Change string

// Changes.
const (
	ChangeAdded   Change = "added"
	ChangeDeleted Change = "deleted"
	ChangeUpdated Change = "updated"
)
