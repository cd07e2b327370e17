package contacts

// A person with several devices.
//
// A person is identified by the peer ID of its first device's key: the
// person ID. That key already exists, is already what every contact of a
// single-device node stores as the contact's key, and proves itself (the
// first device's certificate is self-signed by it), so a single-device node
// is a person of one device with nothing changed, and a person needs no key
// of its own that would have to be copied between devices or kept somewhere
// safe. The price: the first device's key is the root of the person for good.
// It cannot be revoked (ErrRevokePerson): a person whose first device is lost
// or stolen must start afresh with a new identity.
//
// Joining. A new device makes a link request (LinkRequest): its self-signed
// certificate, the name the device is to go by, a random nonce and the time,
// in a libp2p signed envelope sealed with the new device's own key (so that
// no one obtains a grant for a key that they do not hold). A device the
// person already has approves it (Approve): it issues a grant, an X.509
// certificate for the new device's key signed with its own key, which
// carries the device marker, a non-critical extension under a private OID
// (OIDDeviceGrant) holding the person ID, the device's name, the request's
// nonce and the time of issue. No ordinary endorsement (Endorse) carries the
// marker; a verifier that does not know it takes a grant for an endorsement
// by a sibling, which is true. The grant chain is the grant, then the
// approving device's own grant chain, ending at the person's first device's
// self-signed certificate: every certificate but that last must carry the
// marker, naming the person whose key signs the last. The new device joins
// (Join): it checks that the grant is for its own key and answers its own
// pending request (the nonce), and from then on the grant chain is its
// certificate chain, so its card names the person.
//
// What a contact checks. A card whose own certificate carries the marker is
// a device card: ParseCard verifies its device chain (VerifyDeviceChain:
// signatures, validity, each marker naming the person of the chain's root,
// no device twice) and refuses the card otherwise; Card.Device gives the
// verified chain and Card.PersonID the person. A contact that knows the
// person accepts a card of another of the person's devices as the same
// contact when its chain verifies, its person is the contact's
// (ErrWrongPerson otherwise, e.g. a device that someone else endorsed as
// "Bob"), and no device on the chain is revoked (Revocations.Check,
// ErrDeviceRevoked). Evaluate does the same against a Store: a device card
// is refused when a device on its chain is revoked, and trusted at depth 0
// when its person is a contact or the reader's own person. The store keeps
// such a device as an endpoint of the person's contact (Store.AttachDevice,
// Contact.Devices), and IsContact knows it while it is not revoked.
//
// Revocation. A device of the person (any device with a valid grant chain,
// the revoked device itself included) signs a revocation (Revoke) naming
// the device and the time; it carries the signer's grant chain, so a contact
// can check it with the person ID alone. A revocation stops the grants of
// that device issued at or before its time: the device is no longer the
// person's, and neither is any device it approved (their chains pass
// through it) until approved again by another device. A device approved
// again after a revocation is not touched by it: a revocation older than the
// newest grant of its device, or than a revocation already known for it, is
// a replay and refused (ErrRevocationReplay), and one dated in the future is
// refused. A revocation signed by a device that the verifier knows to be
// revoked is refused; the signer's chain is checked at the revocation's
// time, so a revocation outlives its signer's certificates. Revocations
// travel in cards (PEM blocks after the certificates, see
// Card.WithRevocations and Store.TakeRevocations) and as files; Revocations
// is what a verifier keeps per person, and the store keeps them for good.
// What a revocation does not stop: a thief of a device that is not (yet)
// revoked can sign revocations of the person's other devices (they can be
// approved again), and the first device's key stays the person's.

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
)

// OIDDeviceGrant identifies the device marker extension. 59790 is NOT a
// private enterprise number registered to this project: register one with
// IANA (it is free) and put it here before a release; grants made with this
// one would then no longer be device grants.
var OIDDeviceGrant = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 59790, 12, 1}

// Device limits.
const (
	// NonceSize is the size of a link request's nonce.
	NonceSize = 32
	// LinkRequestValidity is how long a link request may be approved.
	LinkRequestValidity = 24 * time.Hour
	// deviceMarkerVersion is the version of the marker's encoding.
	deviceMarkerVersion = 1
)

// PEM block types of device files.
const (
	pemLinkRequest = "PEERCOLLAB DEVICE LINK REQUEST"
	pemRevocation  = "PEERCOLLAB DEVICE REVOCATION"
)

// Device refusals. Each is its own error so that callers and tests can tell
// them apart; verification errors may wrap them in a CertError.
var (
	ErrNotDeviceGrant   = errors.New("contacts: certificate is not a device grant (it has no device marker)")
	ErrBadDeviceMarker  = errors.New("contacts: device marker cannot be read")
	ErrWrongPerson      = errors.New("contacts: device belongs to another person")
	ErrDeviceTwice      = errors.New("contacts: a device appears twice in a device chain")
	ErrDeviceRevoked    = errors.New("contacts: device has been revoked")
	ErrGrantForOtherKey = errors.New("contacts: device grant is for another device's key")
	ErrGrantNonce       = errors.New("contacts: device grant does not answer this device's link request")
	ErrNoLinkRequest    = errors.New("contacts: this device has no pending link request")
	ErrBadLinkRequest   = errors.New("contacts: link request is malformed or its signature is invalid")
	ErrLinkExpired      = errors.New("contacts: link request is too old, or dated in the future")
	ErrAlreadyDevice    = errors.New("contacts: that device is already one of the person's")
	ErrBadRevocation    = errors.New("contacts: revocation is malformed or its signature is invalid")
	ErrRevocationReplay = errors.New("contacts: revocation is older than what is known of its device (a replay)")
	ErrRevocationFuture = errors.New("contacts: revocation is dated in the future")
	ErrRevokePerson     = errors.New("contacts: the person's first device cannot be revoked: its key is the person")
)

// deviceMarker is the value of the OIDDeviceGrant extension.
type deviceMarker struct {
	Version int
	Person  []byte // the person ID, as peer ID bytes
	Name    string `asn1:"utf8"`
	Nonce   []byte
	Issued  time.Time `asn1:"generalized"`
}

// marker returns the device marker of cert, or nil when it has none.
func marker(cert *x509.Certificate) (*deviceMarker, error) {
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(OIDDeviceGrant) {
			continue
		}
		var m deviceMarker
		rest, err := asn1.Unmarshal(ext.Value, &m)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: %v", ErrBadDeviceMarker, err)
		case len(rest) > 0:
			return nil, fmt.Errorf("%w: trailing data", ErrBadDeviceMarker)
		case m.Version != deviceMarkerVersion:
			return nil, fmt.Errorf("%w: version %d", ErrBadDeviceMarker, m.Version)
		case !utf8.ValidString(m.Name) || utf8.RuneCountInString(m.Name) > MaxTextLen:
			return nil, fmt.Errorf("%w: bad device name", ErrBadDeviceMarker)
		}
		return &m, nil
	}
	return nil, nil
}

// HasDeviceMarker reports whether cert carries the device marker, readable
// or not.
func HasDeviceMarker(cert *x509.Certificate) bool {
	return slices.ContainsFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(OIDDeviceGrant) })
}

// DeviceLink is one device of a device chain.
type DeviceLink struct {
	// Device is the device's peer ID.
	Device peer.ID `json:"device"`
	// Name is the name the device goes by ("" for the first device).
	Name string `json:"name,omitempty"`
	// Issued is when its grant was issued (zero for the first device).
	Issued time.Time `json:"issued,omitzero"`
	// ApprovedBy is the device that approved it ("" for the first device).
	ApprovedBy peer.ID `json:"approved_by,omitempty"`
}

// DeviceChain is a verified grant chain: the device, the devices that
// approved it in turn, and the person's first device. Get one from
// VerifyDeviceChain or Card.Device.
type DeviceChain struct {
	// Person is the person ID: the first device's peer ID.
	Person peer.ID
	// Links are the devices, the chain's own device first and the first
	// device last.
	Links []DeviceLink
	certs []*x509.Certificate
	nonce []byte
}

// Device is the chain's own device.
func (d *DeviceChain) Device() DeviceLink { return d.Links[0] }

// IsFirst reports whether the chain is the first device's own (its ID is
// the person ID).
func (d *DeviceChain) IsFirst() bool { return len(d.Links) == 1 }

// Certificates returns the chain, leaf first.
func (d *DeviceChain) Certificates() []*x509.Certificate { return slices.Clone(d.certs) }

// VerifyDeviceChain checks a grant chain (leaf first) at now: everything
// ParseCard checks of a chain, then that the last certificate is a
// self-signed one without a marker (the person's first device, whose peer ID
// is the person ID) and that every other carries a marker naming that same
// person, no device appearing twice. A chain of one self-signed certificate
// is the first device's own. A chain whose leaf has no marker is
// ErrNotDeviceGrant, whatever it ends at.
func VerifyDeviceChain(chain []*x509.Certificate, now time.Time) (*DeviceChain, error) {
	return verifyDeviceChain(chain, now, true)
}

// verifyDeviceChain is VerifyDeviceChain; with times false it leaves the
// validity periods out.
func verifyDeviceChain(chain []*x509.Certificate, now time.Time, times bool) (*DeviceChain, error) {
	if len(chain) == 0 {
		return nil, ErrNoCertificate
	}
	if len(chain) > MaxChainLen {
		return nil, ErrChainTooLong
	}
	c := &Card{chain: chain}
	if err := c.checkChain(now, times); err != nil {
		return nil, err
	}
	last := len(chain) - 1
	root := chain[last]
	person, err := KeyPeerID(root)
	if err != nil {
		return nil, &CertError{last, err}
	}
	if HasDeviceMarker(root) {
		return nil, &CertError{last, fmt.Errorf("%w: the first device's certificate carries a marker", ErrBadDeviceMarker)}
	}
	dc := &DeviceChain{Person: person, certs: slices.Clone(chain), Links: make([]DeviceLink, len(chain))}
	seen := map[peer.ID]bool{}
	for i, cert := range chain {
		id, err := KeyPeerID(cert)
		if err != nil {
			return nil, &CertError{i, err}
		}
		if seen[id] {
			return nil, &CertError{i, ErrDeviceTwice}
		}
		seen[id] = true
		dc.Links[i].Device = id
		if i == last {
			break
		}
		m, err := marker(cert)
		if err != nil {
			return nil, &CertError{i, err}
		}
		if m == nil && i == 0 {
			return nil, &CertError{i, ErrNotDeviceGrant}
		}
		if m == nil {
			// An ordinary endorsement inside a grant chain: the key that
			// approved the device below is not a device of the person.
			return nil, &CertError{i, fmt.Errorf("%w: an ordinary endorsement, not a device grant, approves the device before it", ErrWrongPerson)}
		}
		named, err := peer.IDFromBytes(m.Person)
		if err != nil {
			return nil, &CertError{i, fmt.Errorf("%w: %v", ErrBadDeviceMarker, err)}
		}
		if named != person {
			return nil, &CertError{i, fmt.Errorf("%w: the grant names %s, the chain ends at %s", ErrWrongPerson, named, person)}
		}
		dc.Links[i].Name = m.Name
		dc.Links[i].Issued = m.Issued
		dc.Links[i].ApprovedBy, _ = KeyPeerID(chain[i+1])
		if i == 0 {
			dc.nonce = m.Nonce
		}
	}
	return dc, nil
}

// VerifyDevice checks that chain is a device of person at now, and that no
// device on it is revoked by revs (which may be nil). It is what a contact
// uses to accept a card of a person's other device as the same contact.
func VerifyDevice(chain []*x509.Certificate, person peer.ID, revs *Revocations, now time.Time) (*DeviceChain, error) {
	dc, err := VerifyDeviceChain(chain, now)
	if err != nil {
		return nil, err
	}
	if dc.Person != person {
		return nil, fmt.Errorf("%w: a device of %s, not of %s", ErrWrongPerson, dc.Person, person)
	}
	if revs != nil {
		if err := revs.Check(dc); err != nil {
			return nil, err
		}
	}
	return dc, nil
}

// --- Link requests ---

// LinkRequest is what a new device asks an existing device of the person to
// approve. It is signed with the new device's key.
type LinkRequest struct {
	// Device is the new device's peer ID (the envelope's signer).
	Device peer.ID
	// Certificate is the new device's self-signed certificate.
	Certificate *x509.Certificate
	// Name is the name the device asks to go by.
	Name string
	// Nonce is random; the grant repeats it.
	Nonce []byte
	// Time is when the request was made.
	Time time.Time

	raw []byte // the PEM file
}

// linkPayload is the signed payload of a link request.
type linkPayload struct {
	Certificate []byte    `json:"certificate"`
	Name        string    `json:"name"`
	Nonce       []byte    `json:"nonce"`
	Time        time.Time `json:"time"`
}

// linkRecord is the libp2p record of a link request.
type linkRecord struct{ linkPayload }

func (*linkRecord) Domain() string                   { return "peercollab-device-link" }
func (*linkRecord) Codec() []byte                    { return []byte("/peercollab/device-link/1") }
func (r *linkRecord) MarshalRecord() ([]byte, error) { return json.Marshal(r.linkPayload) }
func (r *linkRecord) UnmarshalRecord(b []byte) error { return json.Unmarshal(b, &r.linkPayload) }

// NewLinkRequest makes the link request of the device id, whose
// self-signed certificate is cert, asking to be called name.
func NewLinkRequest(id *Identity, cert *x509.Certificate, name string, now time.Time) (*LinkRequest, error) {
	if err := checkDeviceName(name); err != nil {
		return nil, err
	}
	if certID, err := CertPeerID(cert); err != nil {
		return nil, err
	} else if certID != id.ID() {
		return nil, ErrPeerIDMismatch
	}
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	rec := &linkRecord{linkPayload{Certificate: cert.Raw, Name: name, Nonce: nonce, Time: now.UTC()}}
	env, err := record.Seal(rec, id.PrivKey())
	if err != nil {
		return nil, fmt.Errorf("seal link request: %w", err)
	}
	raw, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	return ParseLinkRequest(pem.EncodeToMemory(&pem.Block{Type: pemLinkRequest, Bytes: raw}), now)
}

func checkDeviceName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w (the device name)", ErrEmptyName)
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxTextLen {
		return ErrTextTooLong
	}
	return nil
}

// ParseLinkRequest decodes and checks a link request file at now: one PEM
// block, a valid envelope signed by the key of the certificate it holds, a
// nonce of NonceSize bytes, made within LinkRequestValidity before now.
func ParseLinkRequest(data []byte, now time.Time) (*LinkRequest, error) {
	req, err := parseLinkRequest(data, now)
	if err != nil {
		return nil, err
	}
	if now.Sub(req.Time) > LinkRequestValidity || req.Time.Sub(now) > clockSkew {
		return nil, fmt.Errorf("%w: made %s", ErrLinkExpired, req.Time.Format(time.RFC3339))
	}
	return req, nil
}

// parseLinkRequest is ParseLinkRequest without the check of its age.
func parseLinkRequest(data []byte, now time.Time) (*LinkRequest, error) {
	if len(data) > MaxCardSize {
		return nil, fmt.Errorf("%w: larger than 64 KiB", ErrBadLinkRequest)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemLinkRequest || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%w: not a %q PEM file", ErrBadLinkRequest, pemLinkRequest)
	}
	var rec linkRecord
	env, err := record.ConsumeTypedEnvelope(block.Bytes, &rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkRequest, err)
	}
	if !bytes.Equal(env.PayloadType, rec.Codec()) {
		return nil, fmt.Errorf("%w: payload type %q", ErrBadLinkRequest, env.PayloadType)
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkRequest, err)
	}
	cert, err := x509.ParseCertificate(rec.Certificate)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkRequest, err)
	}
	certID, err := CertPeerID(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkRequest, err)
	}
	if certID != signer {
		return nil, fmt.Errorf("%w: signed by %s for the key of %s", ErrBadLinkRequest, signer, certID)
	}
	if len(rec.Nonce) != NonceSize {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrBadLinkRequest, len(rec.Nonce))
	}
	if err := checkDeviceName(rec.Name); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadLinkRequest, err)
	}
	return &LinkRequest{Device: signer, Certificate: cert, Name: rec.Name, Nonce: rec.Nonce, Time: rec.Time, raw: data}, nil
}

// Marshal returns the request as a PEM file.
func (r *LinkRequest) Marshal() []byte { return slices.Clone(r.raw) }

// Approve issues the grant of a link request: a certificate for the new
// device's key, signed by the device id whose grant chain is mine (its own
// self-signed certificate when it is the person's first device), carrying
// the marker. It returns the new device's grant chain: the grant, then mine.
func Approve(id *Identity, mine []*x509.Certificate, req *LinkRequest, now time.Time) ([]*x509.Certificate, error) {
	dc, err := VerifyDeviceChain(mine, now)
	if err != nil {
		return nil, fmt.Errorf("own device chain: %w", err)
	}
	if dc.Device().Device != id.ID() {
		return nil, fmt.Errorf("own device chain: %w", ErrPeerIDMismatch)
	}
	if req.Device == id.ID() {
		return nil, ErrSelfEndorsement
	}
	if slices.ContainsFunc(dc.Links, func(l DeviceLink) bool { return l.Device == req.Device }) {
		return nil, ErrAlreadyDevice
	}
	issuer := mine[0]
	notAfter := now.Add(CertValidity)
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	p := Profile{DisplayName: req.Certificate.Subject.CommonName}
	if len(req.Certificate.EmailAddresses) > 0 {
		p.Email = req.Certificate.EmailAddresses[0]
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	tmpl, err := template(req.Device, p, now, notAfter)
	if err != nil {
		return nil, err
	}
	val, err := asn1.Marshal(deviceMarker{
		Version: deviceMarkerVersion,
		Person:  []byte(dc.Person),
		Name:    req.Name,
		Nonce:   req.Nonce,
		Issued:  now.UTC().Truncate(time.Second),
	})
	if err != nil {
		return nil, err
	}
	tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDDeviceGrant, Value: val}}
	grant, err := sign(tmpl, issuer, req.Certificate.PublicKey, id.key)
	if err != nil {
		return nil, err
	}
	return append([]*x509.Certificate{grant}, mine...), nil
}

// Join checks a grant (a card of the new device, as Approve's chain makes
// it) on the new device id, whose pending request is req, and returns the
// verified chain: ErrGrantForOtherKey when the grant is for another key,
// ErrNotDeviceGrant when it is an ordinary card or endorsement,
// ErrGrantNonce when it answers another request.
func Join(id *Identity, req *LinkRequest, grant *Card) (*DeviceChain, error) {
	if grant.PeerID() != id.ID() {
		return nil, fmt.Errorf("%w: it is for %s, this device is %s", ErrGrantForOtherKey, grant.PeerID(), id.ID())
	}
	dc := grant.Device()
	if dc == nil || dc.IsFirst() {
		return nil, ErrNotDeviceGrant
	}
	if req == nil {
		return nil, ErrNoLinkRequest
	}
	if req.Device != id.ID() {
		return nil, ErrGrantForOtherKey
	}
	if !bytes.Equal(dc.nonce, req.Nonce) {
		return nil, ErrGrantNonce
	}
	return dc, nil
}

// --- Revocations ---

// Revocation is a signed statement by a device of a person that a device is
// no longer the person's.
type Revocation struct {
	// Person is the person ID.
	Person peer.ID
	// Device is the revoked device.
	Device peer.ID
	// Time is when it was revoked: it stops the device's grants issued at
	// or before it.
	Time time.Time
	// Signer is the grant chain of the device that signed it.
	Signer *DeviceChain

	raw []byte // the signed envelope
}

type revocationPayload struct {
	Person []byte    `json:"person"`
	Device []byte    `json:"device"`
	Time   time.Time `json:"time"`
	// Signer is the signer's grant chain, DER certificates leaf first.
	Signer [][]byte `json:"signer"`
}

type revocationRecord struct{ revocationPayload }

func (*revocationRecord) Domain() string                   { return "peercollab-device-revocation" }
func (*revocationRecord) Codec() []byte                    { return []byte("/peercollab/device-revocation/1") }
func (r *revocationRecord) MarshalRecord() ([]byte, error) { return json.Marshal(r.revocationPayload) }
func (r *revocationRecord) UnmarshalRecord(b []byte) error {
	return json.Unmarshal(b, &r.revocationPayload)
}

// Revoke signs the revocation of device by the device id, whose grant chain
// is mine.
func Revoke(id *Identity, mine []*x509.Certificate, device peer.ID, now time.Time) (*Revocation, error) {
	dc, err := VerifyDeviceChain(mine, now)
	if err != nil {
		return nil, fmt.Errorf("own device chain: %w", err)
	}
	if dc.Device().Device != id.ID() {
		return nil, fmt.Errorf("own device chain: %w", ErrPeerIDMismatch)
	}
	if device == dc.Person {
		return nil, ErrRevokePerson
	}
	if err := device.Validate(); err != nil {
		return nil, err
	}
	p := revocationPayload{Person: []byte(dc.Person), Device: []byte(device), Time: now.UTC()}
	for _, c := range mine {
		p.Signer = append(p.Signer, c.Raw)
	}
	env, err := record.Seal(&revocationRecord{p}, id.PrivKey())
	if err != nil {
		return nil, fmt.Errorf("seal revocation: %w", err)
	}
	raw, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	return ParseRevocation(raw, now)
}

// ParseRevocation decodes a signed revocation (the envelope, not PEM) and
// checks it by itself at now: the signature, that the signer's grant chain
// was valid at the revocation's time and ends at the person it names, that the signer signed it, that
// it does not revoke the person's first device and is not dated in the
// future. Whether its signer is revoked is for Revocations.Add to say.
func ParseRevocation(raw []byte, now time.Time) (*Revocation, error) {
	r, err := parseRevocation(raw, now)
	if err != nil {
		return nil, err
	}
	if r.Time.Sub(now) > clockSkew {
		return nil, fmt.Errorf("%w: %s", ErrRevocationFuture, r.Time.Format(time.RFC3339))
	}
	return r, nil
}

// parseRevocation is ParseRevocation without the check that it is not
// dated in the future (for one that was checked when it was stored).
func parseRevocation(raw []byte, now time.Time) (*Revocation, error) {
	if len(raw) > MaxCardSize {
		return nil, fmt.Errorf("%w: larger than 64 KiB", ErrBadRevocation)
	}
	var rec revocationRecord
	env, err := record.ConsumeTypedEnvelope(raw, &rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRevocation, err)
	}
	if !bytes.Equal(env.PayloadType, rec.Codec()) {
		return nil, fmt.Errorf("%w: payload type %q", ErrBadRevocation, env.PayloadType)
	}
	person, err := peer.IDFromBytes(rec.Person)
	if err != nil {
		return nil, fmt.Errorf("%w: person: %v", ErrBadRevocation, err)
	}
	device, err := peer.IDFromBytes(rec.Device)
	if err != nil {
		return nil, fmt.Errorf("%w: device: %v", ErrBadRevocation, err)
	}
	if len(rec.Signer) == 0 || len(rec.Signer) > MaxChainLen {
		return nil, fmt.Errorf("%w: signer chain of %d certificates", ErrBadRevocation, len(rec.Signer))
	}
	chain := make([]*x509.Certificate, len(rec.Signer))
	for i, der := range rec.Signer {
		if chain[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("%w: signer certificate %d: %v", ErrBadRevocation, i+1, err)
		}
	}
	// The signer must have been a device of the person when it signed:
	// its chain is checked at the revocation's time, not now, so that a
	// revocation outlives the signer's certificates (a card carrying it
	// stays valid), and one dated outside them is refused.
	signer, err := verifyDeviceChain(chain, rec.Time, true)
	if err != nil {
		return nil, fmt.Errorf("%w: signer: %w", ErrBadRevocation, err)
	}
	signerID, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil || signerID != signer.Device().Device {
		return nil, fmt.Errorf("%w: not signed by the device of its signer chain", ErrBadRevocation)
	}
	if signer.Person != person {
		return nil, fmt.Errorf("%w: revocation for %s signed by a device of %s", ErrWrongPerson, person, signer.Person)
	}
	if device == person {
		return nil, ErrRevokePerson
	}
	return &Revocation{Person: person, Device: device, Time: rec.Time, Signer: signer, raw: slices.Clone(raw)}, nil
}

// Marshal returns the signed envelope.
func (r *Revocation) Marshal() []byte { return slices.Clone(r.raw) }

// MarshalPEM returns the revocation as a PEM file.
func (r *Revocation) MarshalPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemRevocation, Bytes: r.raw})
}

// ParseRevocationPEM decodes a revocation file (see MarshalPEM).
func ParseRevocationPEM(data []byte, now time.Time) (*Revocation, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != pemRevocation || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%w: not a %q PEM file", ErrBadRevocation, pemRevocation)
	}
	return ParseRevocation(block.Bytes, now)
}

// Revocations is what a verifier knows of one person's revoked devices: the
// newest revocation of each device, and the newest grant seen of each. It
// is not safe for concurrent use.
type Revocations struct {
	person  peer.ID
	revoked map[peer.ID]*Revocation
	granted map[peer.ID]time.Time
}

// NewRevocations returns an empty set for person.
func NewRevocations(person peer.ID) *Revocations {
	return &Revocations{person: person, revoked: map[peer.ID]*Revocation{}, granted: map[peer.ID]time.Time{}}
}

// Person is the person the set is about.
func (rs *Revocations) Person() peer.ID { return rs.person }

// Add accepts a checked revocation. It returns false, nil when the same
// revocation is known already; ErrWrongPerson for another person's;
// ErrRevocationReplay when it is older than the known revocation of its
// device or than the newest grant seen of it; ErrDeviceRevoked when its
// signer is revoked (unless it revokes itself).
func (rs *Revocations) Add(r *Revocation) (bool, error) {
	if r.Person != rs.person {
		return false, fmt.Errorf("%w: a revocation for %s, not %s", ErrWrongPerson, r.Person, rs.person)
	}
	if known, ok := rs.revoked[r.Device]; ok {
		if bytes.Equal(known.raw, r.raw) {
			return false, nil
		}
		if !r.Time.After(known.Time) {
			return false, fmt.Errorf("%w: revoked at %s, a revocation of %s is known", ErrRevocationReplay,
				r.Time.Format(time.RFC3339), known.Time.Format(time.RFC3339))
		}
	}
	if g, ok := rs.granted[r.Device]; ok && r.Time.Before(g) {
		return false, fmt.Errorf("%w: revoked at %s, approved again at %s", ErrRevocationReplay,
			r.Time.Format(time.RFC3339), g.Format(time.RFC3339))
	}
	if r.Signer.Device().Device != r.Device {
		if err := rs.Check(r.Signer); err != nil {
			return false, fmt.Errorf("signer: %w", err)
		}
	}
	rs.revoked[r.Device] = r
	return true, nil
}

// NoteGrant remembers the grants of a verified chain of the person, so
// that a revocation older than them is known to be a replay.
func (rs *Revocations) NoteGrant(dc *DeviceChain) {
	if dc.Person != rs.person {
		return
	}
	for _, l := range dc.Links {
		if !l.Issued.IsZero() && l.Issued.After(rs.granted[l.Device]) {
			rs.granted[l.Device] = l.Issued
		}
	}
}

// Check returns ErrDeviceRevoked (in a CertError locating the device) when
// a device of the chain has a revocation not older than its grant there.
func (rs *Revocations) Check(dc *DeviceChain) error {
	if dc.Person != rs.person {
		return fmt.Errorf("%w: a device of %s, not of %s", ErrWrongPerson, dc.Person, rs.person)
	}
	for i, l := range dc.Links {
		r, ok := rs.revoked[l.Device]
		if !ok || r.Time.Before(l.Issued) {
			continue
		}
		if i == 0 {
			return fmt.Errorf("%w: %s at %s", ErrDeviceRevoked, l.Device, r.Time.Format(time.RFC3339))
		}
		return &CertError{i, fmt.Errorf("%w: %s, which approved the device, at %s", ErrDeviceRevoked, l.Device, r.Time.Format(time.RFC3339))}
	}
	return nil
}

// Revoked reports whether device has a revocation (of any of its grants).
func (rs *Revocations) Revoked(device peer.ID) (*Revocation, bool) {
	r, ok := rs.revoked[device]
	return r, ok
}

// All returns the revocations, oldest first.
func (rs *Revocations) All() []*Revocation {
	out := make([]*Revocation, 0, len(rs.revoked))
	for _, r := range rs.revoked {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *Revocation) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(string(a.Device), string(b.Device))
	})
	return out
}

// GrantCard makes the grant file that Approve's chain is handed out in: a
// card of the new device without addresses (its key is not the approver's
// to sign with), carrying the person's revocations revs so that the new
// device knows them.
func GrantCard(chain []*x509.Certificate, revs []*Revocation, now time.Time) (*Card, error) {
	var buf bytes.Buffer
	for _, c := range chain {
		pem.Encode(&buf, &pem.Block{Type: pemCertificate, Bytes: c.Raw})
	}
	for _, r := range revs {
		pem.Encode(&buf, &pem.Block{Type: pemRevocation, Bytes: r.raw})
	}
	c, err := ParseCard(buf.Bytes(), now)
	if err != nil {
		return nil, err
	}
	if c.Device() == nil {
		return nil, ErrNotDeviceGrant
	}
	return c, nil
}
