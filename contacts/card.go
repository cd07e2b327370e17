package contacts

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

// Card limits.
const (
	// MaxCardSize is the largest card accepted, in bytes.
	MaxCardSize = 64 << 10
	// MaxChainLen is the longest certificate chain a card may carry.
	MaxChainLen = 8
	// FileExt is the conventional extension of a card file.
	FileExt = ".contact"
)

// PEM block types of a card.
const (
	pemCertificate = "CERTIFICATE"
	pemPeerRecord  = "LIBP2P PEER RECORD"
)

// Card is a peer's contact card: its certificate chain, leaf first, and
// optionally a peer record of its addresses signed with its key. A Card
// returned by ParseCard or NewCard has been checked; build one no other way.
// A Card is immutable and safe for concurrent use.
type Card struct {
	chain    []*x509.Certificate
	id       peer.ID
	record   *peer.PeerRecord
	envelope []byte // the signed record, as received
	// device is the verified device chain when the card's certificate is
	// a device grant (see device.go), nil otherwise.
	device *DeviceChain
	// revocations are the person's device revocations the card carries.
	revocations []*Revocation
}

// NewCard makes the card of id from its chain (id's certificate first) and its
// current addresses, sealed in a signed peer record. With no addresses the
// card carries no record.
func NewCard(id *Identity, chain []*x509.Certificate, addrs []ma.Multiaddr, now time.Time) (*Card, error) {
	var buf bytes.Buffer
	for _, c := range chain {
		pem.Encode(&buf, &pem.Block{Type: pemCertificate, Bytes: c.Raw})
	}
	if len(addrs) > 0 {
		rec := peer.PeerRecordFromAddrInfo(peer.AddrInfo{ID: id.ID(), Addrs: addrs})
		env, err := record.Seal(rec, id.PrivKey())
		if err != nil {
			return nil, fmt.Errorf("seal peer record: %w", err)
		}
		raw, err := env.Marshal()
		if err != nil {
			return nil, fmt.Errorf("seal peer record: %w", err)
		}
		pem.Encode(&buf, &pem.Block{Type: pemPeerRecord, Bytes: raw})
	}
	c, err := ParseCard(buf.Bytes(), now)
	if err != nil {
		return nil, err
	}
	if c.id != id.ID() {
		return nil, ErrPeerIDMismatch
	}
	return c, nil
}

// WithChain returns a copy of c whose certificate chain is chain, keeping c's
// signed peer record. It is how an endorsement is handed out: the endorsed
// peer's record with the endorser's chain.
func (c *Card) WithChain(chain []*x509.Certificate, now time.Time) (*Card, error) {
	var buf bytes.Buffer
	for _, cert := range chain {
		pem.Encode(&buf, &pem.Block{Type: pemCertificate, Bytes: cert.Raw})
	}
	if c.envelope != nil {
		pem.Encode(&buf, &pem.Block{Type: pemPeerRecord, Bytes: c.envelope})
	}
	nc, err := ParseCard(buf.Bytes(), now)
	if err != nil {
		return nil, err
	}
	if nc.id != c.id {
		return nil, ErrPeerIDMismatch
	}
	return nc, nil
}

// ParseCard decodes a card and checks everything it can prove by itself:
// size and structure, that each certificate is an X.509 v3 Ed25519
// certificate whose key yields the peer ID it names, that each is signed by
// the next and the last by itself, that every issuer may endorse, that all are
// valid at now, and that the peer record, if any, is the leaf's own and
// correctly signed. Every rejection wraps one of the Err* card sentinels.
func ParseCard(data []byte, now time.Time) (*Card, error) {
	if len(data) > MaxCardSize {
		return nil, ErrCardTooLarge
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrCardEmpty
	}
	c := &Card{}
	rest := data
	blocks := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		blocks++
		switch block.Type {
		case pemCertificate:
			if c.envelope != nil || len(c.revocations) > 0 {
				return nil, ErrBlockOrder
			}
			if len(c.chain) == MaxChainLen {
				return nil, ErrChainTooLong
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, &CertError{len(c.chain), fmt.Errorf("%w: %v", ErrBadCertificate, err)}
			}
			c.chain = append(c.chain, cert)
		case pemPeerRecord:
			if c.envelope != nil {
				return nil, ErrDuplicateRecord
			}
			c.envelope = block.Bytes
		case pemRevocation:
			if len(c.chain) == 0 {
				return nil, ErrBlockOrder
			}
			c.revocations = append(c.revocations, &Revocation{raw: block.Bytes})
		default:
			return nil, fmt.Errorf("%w: %q", ErrUnknownBlock, block.Type)
		}
	}
	if tail := bytes.TrimSpace(rest); len(tail) > 0 {
		switch {
		case bytes.Contains(tail, []byte("-----BEGIN")):
			return nil, ErrTruncatedPEM
		case blocks == 0:
			return nil, ErrNotPEM
		default:
			return nil, ErrTrailingData
		}
	}
	if len(c.chain) == 0 {
		return nil, ErrNoCertificate
	}
	if err := c.checkChain(now, true); err != nil {
		return nil, err
	}
	if c.envelope != nil {
		if err := c.checkRecord(); err != nil {
			return nil, err
		}
	}
	if HasDeviceMarker(c.chain[0]) {
		dc, err := VerifyDeviceChain(c.chain, now)
		if err != nil {
			return nil, err
		}
		c.device = dc
	}
	for i, r := range c.revocations {
		pr, err := ParseRevocation(r.raw, now)
		if err != nil {
			return nil, fmt.Errorf("device revocation %d: %w", i+1, err)
		}
		if pr.Person != c.PersonID() {
			return nil, fmt.Errorf("device revocation %d: %w: it is about %s, the card about %s", i+1, ErrWrongPerson, pr.Person, c.PersonID())
		}
		c.revocations[i] = pr
	}
	return c, nil
}

// Device is the card's verified device chain when its certificate is a
// device grant, nil for a card of no person's other device (a person's
// first device, a single-device node, an ordinary endorsement).
func (c *Card) Device() *DeviceChain { return c.device }

// PersonID is the person the card's device belongs to: the person of its
// device chain, or the card's own peer ID when it has none.
func (c *Card) PersonID() peer.ID {
	if c.device != nil {
		return c.device.Person
	}
	return c.id
}

// Revocations are the person's device revocations that the card carries,
// each checked by itself (see ParseRevocation), none yet against what the
// reader knows (see Revocations.Add).
func (c *Card) Revocations() []*Revocation { return slices.Clone(c.revocations) }

// WithRevocations returns a copy of c that carries revs (which must be
// about c's person) instead of the revocations it had.
func (c *Card) WithRevocations(revs []*Revocation, now time.Time) (*Card, error) {
	var buf bytes.Buffer
	c.marshalBase(&buf)
	for _, r := range revs {
		pem.Encode(&buf, &pem.Block{Type: pemRevocation, Bytes: r.raw})
	}
	return ParseCard(buf.Bytes(), now)
}

// checkChain checks the chain at now; with times false it leaves the
// validity periods out (for what was checked when it was stored).
func (c *Card) checkChain(now time.Time, times bool) error {
	for i, cert := range c.chain {
		fail := func(err error) error { return &CertError{i, err} }
		if cert.Version != 3 {
			return fail(fmt.Errorf("%w: version %d, want 3", ErrBadCertificate, cert.Version))
		}
		id, err := CertPeerID(cert)
		if err != nil {
			return fail(err)
		}
		if i == 0 {
			c.id = id
		}
		if utf8.RuneCountInString(cert.Subject.CommonName) > MaxTextLen {
			return fail(ErrTextTooLong)
		}
		if times && now.Before(cert.NotBefore) {
			return fail(ErrNotYetValid)
		}
		if times && now.After(cert.NotAfter) {
			return fail(ErrExpired)
		}
		parentIdx := i + 1
		if parentIdx == len(c.chain) { // the root signs itself
			parentIdx = i
			if !bytes.Equal(cert.RawIssuer, cert.RawSubject) {
				return fail(ErrIncompleteChain)
			}
		}
		parent := c.chain[parentIdx]
		if !bytes.Equal(cert.RawIssuer, parent.RawSubject) {
			return fail(ErrBrokenChain)
		}
		if !parent.BasicConstraintsValid || !parent.IsCA || parent.KeyUsage&x509.KeyUsageCertSign == 0 {
			return &CertError{parentIdx, ErrIssuerNotCA}
		}
		if err := parent.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			return fail(fmt.Errorf("%w: %v", ErrBadSignature, err))
		}
	}
	return nil
}

func (c *Card) checkRecord() error {
	env, rec, err := record.ConsumeEnvelope(c.envelope, peer.PeerRecordEnvelopeDomain)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	pr, ok := rec.(*peer.PeerRecord)
	if !ok {
		return fmt.Errorf("%w: not a peer record", ErrBadRecord)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil || signer != c.id || pr.PeerID != c.id {
		return ErrRecordMismatch
	}
	c.record = pr
	return nil
}

// PeerID is the peer the card describes.
func (c *Card) PeerID() peer.ID { return c.id }

// Certificate is the card's own (leaf) certificate.
func (c *Card) Certificate() *x509.Certificate { return c.chain[0] }

// Chain returns the certificate chain, leaf first. The caller must not modify
// the certificates.
func (c *Card) Chain() []*x509.Certificate { return append([]*x509.Certificate(nil), c.chain...) }

// Profile is the name and e-mail the card's certificate gives.
func (c *Card) Profile() Profile {
	p := Profile{DisplayName: c.chain[0].Subject.CommonName}
	if len(c.chain[0].EmailAddresses) > 0 {
		p.Email = c.chain[0].EmailAddresses[0]
	}
	return p
}

// Fingerprint is the fingerprint of the card's own certificate.
func (c *Card) Fingerprint() Fingerprint { return CertFingerprint(c.chain[0]) }

// Addrs are the addresses of the card's signed peer record, if any.
func (c *Card) Addrs() []ma.Multiaddr {
	if c.record == nil {
		return nil
	}
	return append([]ma.Multiaddr(nil), c.record.Addrs...)
}

// Endorsed reports whether the card's certificate was issued by another
// peer rather than self-signed.
func (c *Card) Endorsed() bool { return len(c.chain) > 1 }

// Marshal encodes the card as PEM.
func (c *Card) Marshal() []byte {
	var buf bytes.Buffer
	c.marshalBase(&buf)
	for _, r := range c.revocations {
		pem.Encode(&buf, &pem.Block{Type: pemRevocation, Bytes: r.raw})
	}
	return buf.Bytes()
}

// marshalBase writes the chain and the peer record.
func (c *Card) marshalBase(buf *bytes.Buffer) {
	for _, cert := range c.chain {
		pem.Encode(buf, &pem.Block{Type: pemCertificate, Bytes: cert.Raw})
	}
	if c.envelope != nil {
		pem.Encode(buf, &pem.Block{Type: pemPeerRecord, Bytes: c.envelope})
	}
}

// Anchors tells whether a peer is a trusted contact. *Store implements it.
type Anchors interface {
	IsContact(id peer.ID) bool
}

// DefaultMaxDepth is how many endorsements may separate a card from a
// trusted contact by default: 1 accepts a card endorsed by a contact, 2 one
// endorsed by a peer that a contact endorsed.
const DefaultMaxDepth = 2

// Trust is the outcome of evaluating a card against a contact list.
type Trust struct {
	// Trusted is true when the card's peer is a contact or its chain reaches
	// one within the allowed depth.
	Trusted bool `json:"trusted"`
	// Via is the contact the chain reaches (the card's own peer at depth 0).
	Via peer.ID `json:"via,omitempty"`
	// Depth is the number of endorsements between the card and Via.
	Depth int `json:"depth"`
}

// Evaluate decides whether a parsed card is trusted: its peer is a contact
// (depth 0), or the chain reaches a contact's certificate within maxDepth
// endorsements. It returns ErrUntrusted when no certificate of the chain
// belongs to a contact and ErrChainTooDeep when one does, but too far up; the
// returned Trust is valid in every case.
//
// A card of a person's other device (Card.Device) is refused with
// ErrDeviceRevoked when a device on its chain is revoked, by what anchors
// knows (when it has a Revocations(person) method, as *Store has) or by the
// revocations the card carries; otherwise it is trusted at depth 0 when its
// person is a contact, or the reader's own person (when anchors has an
// OwnPerson method, as *Store has), however many devices approved it in
// turn.
func Evaluate(c *Card, anchors Anchors, maxDepth int) (Trust, error) {
	if dc := c.device; dc != nil {
		revs := NewRevocations(dc.Person)
		if src, ok := anchors.(interface {
			Revocations(peer.ID) (*Revocations, error)
		}); ok {
			known, err := src.Revocations(dc.Person)
			if err != nil {
				return Trust{}, err
			}
			revs = known
		}
		revs.NoteGrant(dc)
		for _, r := range c.revocations {
			revs.Add(r) // the card's own news; refusals change nothing
		}
		if err := revs.Check(dc); err != nil {
			return Trust{}, err
		}
		if anchors.IsContact(dc.Person) {
			return Trust{Trusted: true, Via: dc.Person}, nil
		}
		if own, ok := anchors.(interface{ OwnPerson() peer.ID }); ok && own.OwnPerson() == dc.Person {
			return Trust{Trusted: true, Via: dc.Person}, nil
		}
	}
	for i, cert := range c.chain {
		id, err := KeyPeerID(cert)
		if err != nil {
			return Trust{}, err // ParseCard has checked this already
		}
		if !anchors.IsContact(id) {
			continue
		}
		if i > maxDepth {
			return Trust{Via: id, Depth: i}, &CertError{i, ErrChainTooDeep}
		}
		return Trust{Trusted: true, Via: id, Depth: i}, nil
	}
	return Trust{}, ErrUntrusted
}

// IsCardError reports whether err is a rejection of a card (as opposed to,
// say, an I/O error).
func IsCardError(err error) bool {
	for _, s := range cardErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

var cardErrors = []error{
	ErrCardEmpty, ErrCardTooLarge, ErrNotPEM, ErrTruncatedPEM, ErrTrailingData, ErrUnknownBlock,
	ErrBlockOrder, ErrNoCertificate, ErrChainTooLong, ErrBadCertificate, ErrKeyType, ErrNoPeerID,
	ErrPeerIDMismatch, ErrBadSignature, ErrBrokenChain, ErrIssuerNotCA, ErrIncompleteChain,
	ErrExpired, ErrNotYetValid, ErrBadRecord, ErrRecordMismatch, ErrDuplicateRecord, ErrUntrusted,
	ErrChainTooDeep, ErrTextTooLong,
	ErrNotDeviceGrant, ErrBadDeviceMarker, ErrWrongPerson, ErrDeviceTwice, ErrBadRevocation,
	ErrRevocationFuture, ErrRevokePerson, ErrDeviceRevoked,
}

// CardCache remembers cards it has verified, so that a card seen again (an
// inviter's, with every invitation) costs a hash and a validity check
// instead of a full verification. It is safe for concurrent use; the zero
// value is ready.
type CardCache struct {
	mu    sync.Mutex
	cards map[[sha256.Size]byte]*Card
}

// maxCachedCards bounds a CardCache; when full it starts over.
const maxCachedCards = 1024

// Parse is ParseCard through the cache.
func (cc *CardCache) Parse(data []byte, now time.Time) (*Card, error) {
	if len(data) > MaxCardSize {
		return nil, ErrCardTooLarge
	}
	key := sha256.Sum256(data)
	cc.mu.Lock()
	c, ok := cc.cards[key]
	cc.mu.Unlock()
	if ok {
		for i, cert := range c.chain {
			if now.Before(cert.NotBefore) {
				return nil, &CertError{i, ErrNotYetValid}
			}
			if now.After(cert.NotAfter) {
				return nil, &CertError{i, ErrExpired}
			}
		}
		return c, nil
	}
	c, err := ParseCard(data, now)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if cc.cards == nil || len(cc.cards) >= maxCachedCards {
		cc.cards = map[[sha256.Size]byte]*Card{}
	}
	cc.cards[key] = c
	cc.mu.Unlock()
	return c, nil
}
