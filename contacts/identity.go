package contacts

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// KeyFile is the name of the identity key file in a data directory.
const KeyFile = "identity.key"

// MaxKeyFile caps the identity key file that LoadIdentity reads: a PKCS#8
// Ed25519 key is 119 bytes of PEM.
const MaxKeyFile = 16 << 10

const pemPrivateKey = "PRIVATE KEY"

// Identity errors.
var (
	// ErrNoIdentity means the data directory holds no identity key yet.
	ErrNoIdentity = errors.New("contacts: no identity in this data directory")
	// ErrBadKeyFile means the identity key file exists but cannot be used.
	ErrBadKeyFile = errors.New("contacts: identity key file is not a PKCS#8 Ed25519 key")
)

// Identity is a node's private key and the peer ID it yields. The zero value
// is not usable; get one from GenerateIdentity or LoadIdentity.
type Identity struct {
	key  ed25519.PrivateKey
	priv crypto.PrivKey
	id   peer.ID
}

// GenerateIdentity makes a new random Ed25519 identity.
func GenerateIdentity() (*Identity, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return identityFromKey(key)
}

func identityFromKey(key ed25519.PrivateKey) (*Identity, error) {
	priv, _, err := crypto.KeyPairFromStdKey(&key)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return &Identity{key: key, priv: priv, id: id}, nil
}

// ID is the libp2p peer ID of the identity.
func (i *Identity) ID() peer.ID { return i.id }

// PrivKey is the identity key in libp2p form, for libp2p.Identity.
func (i *Identity) PrivKey() crypto.PrivKey { return i.priv }

// Signer returns the key as the standard library's ed25519.PrivateKey.
func (i *Identity) Signer() ed25519.PrivateKey { return i.key }

// MarshalPEM encodes the key as a PKCS#8 "PRIVATE KEY" PEM block.
func (i *Identity) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(i.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParseIdentityPEM decodes a PKCS#8 PEM Ed25519 key. Any other input is an
// error that wraps ErrBadKeyFile and says what is wrong with it: empty, too
// large, not PEM or cut short, a PEM block of another type, encrypted, not
// PKCS#8, or a key of another type.
func ParseIdentityPEM(data []byte) (*Identity, error) {
	if len(data) > MaxKeyFile {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadKeyFile, len(data), MaxKeyFile)
	}
	block, _ := pem.Decode(data)
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return nil, fmt.Errorf("%w: the file is empty", ErrBadKeyFile)
	case block == nil:
		return nil, fmt.Errorf("%w: no whole PEM block (not PEM, or cut short)", ErrBadKeyFile)
	case block.Type != pemPrivateKey:
		return nil, fmt.Errorf("%w: a PEM block of type %s, not %q", ErrBadKeyFile, quoteShort(block.Type), pemPrivateKey)
	case len(block.Headers) > 0:
		return nil, fmt.Errorf("%w: the PEM block has headers (an encrypted key?)", ErrBadKeyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// encoding/asn1's own words ("tags don't match (16 vs {class:1
		// ...") help no one.
		return nil, fmt.Errorf("%w: the key in the PEM block is damaged, or not PKCS#8", ErrBadKeyFile)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok || len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: a key of type %T, not Ed25519", ErrBadKeyFile, k)
	}
	return identityFromKey(key)
}

// quoteShort quotes s, cut to its first 64 bytes.
func quoteShort(s string) string {
	const most = 64
	if len(s) <= most {
		return strconv.Quote(s)
	}
	return strconv.Quote(strings.ToValidUTF8(s[:most], "")) + "…"
}

// LoadIdentity reads the identity key of the data directory dir. It returns
// ErrNoIdentity when there is none, and an error wrapping ErrBadKeyFile
// when the file is no key (see ParseIdentityPEM); it reads at most
// MaxKeyFile bytes of it.
func LoadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, KeyFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoIdentity
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	id, err := ParseIdentityPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// CreateIdentity makes a new identity and writes it to dir with mode 0600,
// creating dir (mode 0700) if needed. It never overwrites: when dir already
// holds a key it returns that key and created=false.
func CreateIdentity(dir string) (id *Identity, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data directory: %w", err)
	}
	id, err = GenerateIdentity()
	if err != nil {
		return nil, false, err
	}
	data, err := id.MarshalPEM()
	if err != nil {
		return nil, false, err
	}
	// Write to a temporary file and link it into place: link fails if the
	// key exists, so a concurrent init can never replace a key, and a crash
	// never leaves a half-written key under the real name.
	path := filepath.Join(dir, KeyFile)
	tmp, err := os.CreateTemp(dir, KeyFile+".tmp*")
	if err != nil {
		return nil, false, fmt.Errorf("write identity: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, data); err != nil {
		return nil, false, fmt.Errorf("write identity: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			existing, lerr := LoadIdentity(dir)
			return existing, false, lerr
		}
		return nil, false, fmt.Errorf("write identity: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, false, fmt.Errorf("write identity: %w", err)
	}
	return id, true, nil
}

func writeSynced(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
