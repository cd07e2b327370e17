package contacts

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Limits and lifetimes of certificates.
const (
	// MaxTextLen is the longest display name, nickname or e-mail address, in
	// characters (Windows' 255-character limit).
	MaxTextLen = 255
	// CertValidity is how long a self-signed peer certificate is valid.
	CertValidity = 10 * 365 * 24 * time.Hour
	// EndorsementValidity is how long an endorsement is valid by default; it
	// never outlives the endorser's own certificate.
	EndorsementValidity = 2 * 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so that a peer whose clock is a little
	// behind still accepts a fresh certificate.
	clockSkew = time.Hour
	// peerURIScheme is the scheme of the URI SAN that names the peer ID.
	peerURIScheme = "p2p"
)

// Profile is what a peer certificate says about its peer.
type Profile struct {
	DisplayName string `json:"display_name"`
	Email       string `json:"email,omitempty"`
}

// Check reports whether the profile's fields are within limits.
func (p Profile) Check() error {
	if strings.TrimSpace(p.DisplayName) == "" {
		return ErrEmptyName
	}
	if utf8.RuneCountInString(p.DisplayName) > MaxTextLen || utf8.RuneCountInString(p.Email) > MaxTextLen {
		return ErrTextTooLong
	}
	if p.Email != "" && !strings.Contains(p.Email, "@") {
		return ErrBadEmail
	}
	return nil
}

// NewCertificate issues the self-signed peer certificate of id.
func NewCertificate(id *Identity, p Profile, now time.Time) (*x509.Certificate, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	tmpl, err := template(id.ID(), p, now, now.Add(CertValidity))
	if err != nil {
		return nil, err
	}
	return sign(tmpl, tmpl, id.key.Public(), id.key)
}

// Endorse issues a certificate for the peer of subject, signed by the
// endorser's identity; issuer is the endorser's own certificate. The new
// certificate repeats the subject's name, peer ID and e-mail, is valid for
// validity from now (never beyond the issuer's own expiry), and may itself
// endorse others, so that chains of endorsements can form; how long a chain
// is trusted is the evaluator's decision (see Evaluate).
func Endorse(endorser *Identity, issuer, subject *x509.Certificate, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	subjectID, err := CertPeerID(subject)
	if err != nil {
		return nil, err
	}
	if subjectID == endorser.ID() {
		return nil, ErrSelfEndorsement
	}
	notAfter := now.Add(validity)
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	p := Profile{DisplayName: subject.Subject.CommonName}
	if len(subject.EmailAddresses) > 0 {
		p.Email = subject.EmailAddresses[0]
	}
	tmpl, err := template(subjectID, p, now, notAfter)
	if err != nil {
		return nil, err
	}
	return sign(tmpl, issuer, subject.PublicKey, endorser.key)
}

func template(id peer.ID, p Profile, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber: serial,
		// The DN carries the peer ID too: display names are not unique,
		// and a DN is what links a certificate to its issuer.
		Subject:               pkix.Name{CommonName: p.DisplayName, SerialNumber: id.String()},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{peerURI(id)},
	}
	if p.Email != "" {
		t.EmailAddresses = []string{p.Email}
	}
	return t, nil
}

func sign(tmpl, parent *x509.Certificate, pub any, key ed25519.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func peerURI(id peer.ID) *url.URL {
	return &url.URL{Scheme: peerURIScheme, Opaque: id.String()}
}

// KeyPeerID derives the peer ID of a certificate's public key. Only Ed25519
// keys are accepted.
func KeyPeerID(cert *x509.Certificate) (peer.ID, error) {
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", ErrKeyType
	}
	lp, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrKeyType, err)
	}
	return peer.IDFromPublicKey(lp)
}

// CertPeerID returns the peer ID a certificate names in its URI SAN, after
// checking that the certificate's own key yields that same ID.
func CertPeerID(cert *x509.Certificate) (peer.ID, error) {
	keyID, err := KeyPeerID(cert)
	if err != nil {
		return "", err
	}
	var named []peer.ID
	for _, u := range cert.URIs {
		if u.Scheme != peerURIScheme {
			continue
		}
		id, err := peer.Decode(u.Opaque)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoPeerID, err)
		}
		named = append(named, id)
	}
	if len(named) != 1 {
		return "", ErrNoPeerID
	}
	if named[0] != keyID {
		return "", ErrPeerIDMismatch
	}
	return keyID, nil
}

// Fingerprint is the SHA-256 digest of a certificate's DER encoding. Its text
// form is what `openssl x509 -fingerprint -sha256` prints: upper-case hex
// bytes separated by colons.
type Fingerprint [sha256.Size]byte

// CertFingerprint returns the fingerprint of cert.
func CertFingerprint(cert *x509.Certificate) Fingerprint { return sha256.Sum256(cert.Raw) }

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

// UnmarshalText implements encoding.TextUnmarshaler; it accepts the colon
// form and plain hex, in either case.
func (f *Fingerprint) UnmarshalText(text []byte) error {
	s := strings.ReplaceAll(string(text), ":", "")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(f) {
		return fmt.Errorf("contacts: bad fingerprint %q", text)
	}
	copy(f[:], b)
	return nil
}
