package contacts_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
)

// device is a device of a person in tests: an identity, its self-signed
// certificate and its grant chain (its certificate alone for the first).
type device struct {
	testPeer
	chain []*x509.Certificate
}

func firstDevice(t testing.TB, name string) device {
	p := newPeer(t, name)
	return device{p, []*x509.Certificate{p.cert}}
}

// link has the new device named name ask approver to approve it at at, and
// joins it; it returns the new device.
func link(t testing.TB, approver device, name string, at time.Time) device {
	t.Helper()
	nd := newPeer(t, approver.cert.Subject.CommonName)
	req, err := contacts.NewLinkRequest(nd.id, nd.cert, name, at)
	if err != nil {
		t.Fatal(err)
	}
	// The request travels as a file.
	req, err = contacts.ParseLinkRequest(req.Marshal(), at)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := contacts.Approve(approver.id, approver.chain, req, at)
	if err != nil {
		t.Fatal(err)
	}
	grant, err := contacts.ParseCard(pemCard(chain, nil), at)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := contacts.Join(nd.id, req, grant)
	if err != nil {
		t.Fatal(err)
	}
	if dc.Device().Device != nd.id.ID() || dc.Device().Name != name {
		t.Fatalf("joined as %+v", dc.Device())
	}
	return device{nd, grant.Chain()}
}

func revoke(t testing.TB, by device, d peer.ID, at time.Time) *contacts.Revocation {
	t.Helper()
	r, err := contacts.Revoke(by.id, by.chain, d, at)
	if err != nil {
		t.Fatal(err)
	}
	// It travels as a file.
	r, err = contacts.ParseRevocationPEM(r.MarshalPEM(), at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeviceLinkApproveJoin(t *testing.T) {
	bob := firstDevice(t, "Bob")
	laptop := link(t, bob, "laptop", now)
	phone := link(t, laptop, "phone", now.Add(time.Minute))
	person := bob.id.ID()

	for _, d := range []device{laptop, phone} {
		card, err := contacts.NewCard(d.id, d.chain, nil, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if card.PersonID() != person || card.PeerID() != d.id.ID() {
			t.Errorf("card of %s: person %s", card.PeerID(), card.PersonID())
		}
		if card.Device() == nil || card.Device().IsFirst() {
			t.Fatalf("card of %s has no device chain", card.PeerID())
		}
		// A contact that holds Bob trusts the card without anything new.
		trust, err := contacts.Evaluate(card, anchors{person: true}, contacts.DefaultMaxDepth)
		if err != nil || trust.Via != person {
			t.Errorf("Evaluate = %+v, %v", trust, err)
		}
		dc, err := contacts.VerifyDevice(card.Chain(), person, contacts.NewRevocations(person), now.Add(time.Hour))
		if err != nil {
			t.Fatalf("VerifyDevice: %v", err)
		}
		if dc.Links[len(dc.Links)-1].Device != person {
			t.Errorf("chain does not end at the person: %+v", dc.Links)
		}
	}
	// The phone was approved by the laptop, the laptop by Bob's first device.
	dc, _ := contacts.VerifyDeviceChain(phone.chain, now.Add(time.Hour))
	if len(dc.Links) != 3 || dc.Links[0].ApprovedBy != laptop.id.ID() || dc.Links[1].ApprovedBy != person || dc.Links[1].Name != "laptop" {
		t.Errorf("links %+v", dc.Links)
	}
	// The first device's own card is a person of one device.
	card, err := contacts.NewCard(bob.id, bob.chain, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if card.Device() != nil || card.PersonID() != person {
		t.Errorf("first device: device %v, person %s", card.Device(), card.PersonID())
	}
	if dc, err := contacts.VerifyDevice(bob.chain, person, nil, now); err != nil || !dc.IsFirst() {
		t.Errorf("first device: %v, %v", dc, err)
	}
	// The grant is an X.509 certificate with the marker as a non-critical
	// extension.
	var found bool
	for _, e := range laptop.chain[0].Extensions {
		if e.Id.Equal(contacts.OIDDeviceGrant) {
			found = !e.Critical
		}
	}
	if !found {
		t.Error("grant carries no non-critical marker")
	}
}

func TestApproveRefusals(t *testing.T) {
	bob := firstDevice(t, "Bob")
	laptop := link(t, bob, "laptop", now)

	req, err := contacts.NewLinkRequest(bob.id, bob.cert, "self", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contacts.Approve(bob.id, bob.chain, req, now); !errors.Is(err, contacts.ErrSelfEndorsement) {
		t.Errorf("approving itself: %v", err)
	}
	req, err = contacts.NewLinkRequest(bob.id, bob.cert, "bob again", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contacts.Approve(laptop.id, laptop.chain, req, now); !errors.Is(err, contacts.ErrAlreadyDevice) {
		t.Errorf("approving the first device: %v", err)
	}
	// A device with someone else's chain cannot approve.
	if _, err := contacts.Approve(laptop.id, bob.chain, req, now); !errors.Is(err, contacts.ErrPeerIDMismatch) {
		t.Errorf("approving with another's chain: %v", err)
	}
	if _, err := contacts.NewLinkRequest(laptop.id, laptop.cert, " ", now); !errors.Is(err, contacts.ErrEmptyName) {
		t.Errorf("empty device name: %v", err)
	}
}

func TestLinkRequestRefusals(t *testing.T) {
	nd := newPeer(t, "Bob")
	other := newPeer(t, "Mallory")
	req, err := contacts.NewLinkRequest(nd.id, nd.cert, "laptop", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contacts.ParseLinkRequest(req.Marshal(), now.Add(contacts.LinkRequestValidity+time.Minute)); !errors.Is(err, contacts.ErrLinkExpired) {
		t.Errorf("old request: %v", err)
	}
	if _, err := contacts.ParseLinkRequest(req.Marshal(), now.Add(-2*time.Hour)); !errors.Is(err, contacts.ErrLinkExpired) {
		t.Errorf("request from the future: %v", err)
	}
	// Someone else's certificate in a request: refused when made, and
	// when signed around the check.
	if _, err := contacts.NewLinkRequest(nd.id, other.cert, "laptop", now); !errors.Is(err, contacts.ErrPeerIDMismatch) {
		t.Errorf("request for another's certificate: %v", err)
	}
	block, _ := pem.Decode(req.Marshal())
	for i := range []int{0, 1, 2} {
		bad := bytes.Clone(block.Bytes)
		bad[len(bad)-1-i*20] ^= 1
		data := pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: bad})
		if _, err := contacts.ParseLinkRequest(data, now); !errors.Is(err, contacts.ErrBadLinkRequest) {
			t.Errorf("tampered request %d: %v", i, err)
		}
	}
	for _, data := range [][]byte{nil, []byte("hello"), pemCard([]*x509.Certificate{nd.cert}, nil), append(req.Marshal(), req.Marshal()...)} {
		if _, err := contacts.ParseLinkRequest(data, now); !errors.Is(err, contacts.ErrBadLinkRequest) {
			t.Errorf("not a request %.30q: %v", data, err)
		}
	}
}

// A grant is refused by a device for which it is not.
func TestJoinRefusesGrantForAnotherKey(t *testing.T) {
	bob := firstDevice(t, "Bob")
	laptop, phone := newPeer(t, "Bob"), newPeer(t, "Bob")
	lreq, _ := contacts.NewLinkRequest(laptop.id, laptop.cert, "laptop", now)
	preq, _ := contacts.NewLinkRequest(phone.id, phone.cert, "phone", now)
	chain, err := contacts.Approve(bob.id, bob.chain, preq, now)
	if err != nil {
		t.Fatal(err)
	}
	grant, err := contacts.ParseCard(pemCard(chain, nil), now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contacts.Join(laptop.id, lreq, grant); !errors.Is(err, contacts.ErrGrantForOtherKey) {
		t.Errorf("laptop joins with the phone's grant: %v", err)
	}
	// The phone's grant answers its first request, not a later one.
	preq2, _ := contacts.NewLinkRequest(phone.id, phone.cert, "phone", now)
	if _, err := contacts.Join(phone.id, preq2, grant); !errors.Is(err, contacts.ErrGrantNonce) {
		t.Errorf("grant for an older request: %v", err)
	}
	if _, err := contacts.Join(phone.id, nil, grant); !errors.Is(err, contacts.ErrNoLinkRequest) {
		t.Errorf("no pending request: %v", err)
	}
	if _, err := contacts.Join(phone.id, preq, grant); err != nil {
		t.Errorf("the right grant: %v", err)
	}
}

// An ordinary endorsement carries no marker: it is not a device grant.
func TestOrdinaryEndorsementIsNotAGrant(t *testing.T) {
	bob := firstDevice(t, "Bob")
	nd := newPeer(t, "Bob")
	req, _ := contacts.NewLinkRequest(nd.id, nd.cert, "laptop", now)
	chain := []*x509.Certificate{bob.endorse(t, nd.cert, now, time.Hour), bob.cert}
	card, err := contacts.ParseCard(pemCard(chain, nil), now)
	if err != nil {
		t.Fatal(err)
	}
	if card.Device() != nil || card.PersonID() != nd.id.ID() {
		t.Errorf("endorsed card: device %v, person %s", card.Device(), card.PersonID())
	}
	if _, err := contacts.Join(nd.id, req, card); !errors.Is(err, contacts.ErrNotDeviceGrant) {
		t.Errorf("joining with an endorsement: %v", err)
	}
	if _, err := contacts.VerifyDeviceChain(chain, now); !errors.Is(err, contacts.ErrNotDeviceGrant) {
		t.Errorf("VerifyDeviceChain of an endorsement: %v", err)
	}
	if _, err := contacts.VerifyDevice(chain, bob.id.ID(), nil, now); !errors.Is(err, contacts.ErrNotDeviceGrant) {
		t.Errorf("VerifyDevice of an endorsement: %v", err)
	}
	// The first device's self-signed card does not join either.
	self, _ := contacts.ParseCard(pemCard([]*x509.Certificate{nd.cert}, nil), now)
	if _, err := contacts.Join(nd.id, req, self); !errors.Is(err, contacts.ErrNotDeviceGrant) {
		t.Errorf("joining with a self-signed card: %v", err)
	}
}

// testMarker is the marker's encoding, for forging grants.
type testMarker struct {
	Version int
	Person  []byte
	Name    string `asn1:"utf8"`
	Nonce   []byte
	Issued  time.Time `asn1:"generalized"`
}

// forgeGrant has issuer (whose certificate is parent) issue a grant of
// subject for person, with any marker: what a Mallory can make.
func forgeGrant(t testing.TB, issuer testPeer, parent *x509.Certificate, subject testPeer, person peer.ID, marker bool) *x509.Certificate {
	t.Helper()
	id := subject.id.ID()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(7),
		Subject:               pkix.Name{CommonName: "Bob", SerialNumber: id.String()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		URIs:                  []*url.URL{{Scheme: "p2p", Opaque: id.String()}},
	}
	if marker {
		val, err := asn1.Marshal(testMarker{1, []byte(person), "laptop", make([]byte, 32), now.UTC().Truncate(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: contacts.OIDDeviceGrant, Value: val}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, subject.cert.PublicKey, issuer.id.Signer())
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A device that someone other than Bob endorsed, claiming to be Bob's, is
// refused with ErrWrongPerson, however the chain is put together.
func TestDeviceOfWrongPersonRefused(t *testing.T) {
	bob := firstDevice(t, "Bob")
	mallory := firstDevice(t, "Mallory")
	fake := newPeer(t, "Bob")
	person := bob.id.ID()

	// Mallory grants her device as Bob's: the chain ends at Mallory.
	chain := []*x509.Certificate{forgeGrant(t, mallory.testPeer, mallory.cert, fake, person, true), mallory.cert}
	if _, err := contacts.ParseCard(pemCard(chain, nil), now); !errors.Is(err, contacts.ErrWrongPerson) {
		t.Errorf("grant by Mallory naming Bob: %v", err)
	}
	if _, err := contacts.VerifyDevice(chain, person, nil, now); !errors.Is(err, contacts.ErrWrongPerson) {
		t.Errorf("VerifyDevice of a grant by Mallory naming Bob: %v", err)
	}
	// Bob once endorsed Mallory (an ordinary endorsement); she uses it to
	// reach Bob's certificate. The endorsement is no grant: refused.
	endorsed := bob.endorse(t, mallory.cert, now, time.Hour)
	chain = []*x509.Certificate{forgeGrant(t, mallory.testPeer, endorsed, fake, person, true), endorsed, bob.cert}
	_, err := contacts.ParseCard(pemCard(chain, nil), now)
	var ce *contacts.CertError
	if !errors.Is(err, contacts.ErrWrongPerson) || !errors.As(err, &ce) || ce.Index != 1 {
		t.Errorf("grant through an ordinary endorsement by Bob: %v", err)
	}
	// Mallory's genuine device, shown as Bob's.
	mdev := link(t, mallory, "Mallory's laptop", now)
	if _, err := contacts.VerifyDevice(mdev.chain, person, nil, now); !errors.Is(err, contacts.ErrWrongPerson) {
		t.Errorf("Mallory's device as Bob's: %v", err)
	}
	// A chain whose grant names Mallory but which ends at Bob cannot be
	// made without Bob's key; a forged one breaks its signature.
	posing := *bob.cert
	posing.PublicKey = mallory.cert.PublicKey
	chain = []*x509.Certificate{forgeGrant(t, mallory.testPeer, &posing, fake, person, true), bob.cert}
	if _, err := contacts.ParseCard(pemCard(chain, nil), now); !errors.Is(err, contacts.ErrBadSignature) {
		t.Errorf("grant signed by Mallory under Bob's name: %v", err)
	}
	// A revocation by Mallory's device is not about Bob.
	r := revoke(t, mallory, mdev.id.ID(), now)
	if _, err := contacts.NewRevocations(person).Add(r); !errors.Is(err, contacts.ErrWrongPerson) {
		t.Errorf("Mallory's revocation in Bob's set: %v", err)
	}
}

func TestRevokedDeviceRefused(t *testing.T) {
	bob := firstDevice(t, "Bob")
	person := bob.id.ID()
	laptop := link(t, bob, "laptop", now)
	phone := link(t, laptop, "phone", now.Add(time.Minute))
	tablet := link(t, bob, "tablet", now.Add(time.Minute))
	later := now.Add(time.Hour)

	revs := contacts.NewRevocations(person)
	if ok, err := revs.Add(revoke(t, tablet, laptop.id.ID(), now.Add(10*time.Minute))); !ok || err != nil {
		t.Fatalf("Add = %v, %v", ok, err)
	}
	if _, err := contacts.VerifyDevice(laptop.chain, person, revs, later); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("revoked laptop: %v", err)
	}
	// The phone was approved by the laptop: it falls with it.
	_, err := contacts.VerifyDevice(phone.chain, person, revs, later)
	var ce *contacts.CertError
	if !errors.Is(err, contacts.ErrDeviceRevoked) || !errors.As(err, &ce) || ce.Index != 1 {
		t.Errorf("phone approved by the revoked laptop: %v", err)
	}
	// A device the revoked laptop approves afterwards too.
	late := link(t, laptop, "stolen", now.Add(20*time.Minute))
	if _, err := contacts.VerifyDevice(late.chain, person, revs, later); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("device approved by the laptop after its revocation: %v", err)
	}
	// The tablet is untouched.
	if _, err := contacts.VerifyDevice(tablet.chain, person, revs, later); err != nil {
		t.Errorf("tablet: %v", err)
	}
	// A revocation signed by the revoked laptop does not count.
	if _, err := revs.Add(revoke(t, laptop, tablet.id.ID(), now.Add(30*time.Minute))); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("revocation by a revoked device: %v", err)
	}
	if _, err := contacts.VerifyDevice(tablet.chain, person, revs, later); err != nil {
		t.Errorf("tablet after the revoked laptop's revocation: %v", err)
	}
	// The first device cannot be revoked.
	if _, err := contacts.Revoke(laptop.id, laptop.chain, person, now); !errors.Is(err, contacts.ErrRevokePerson) {
		t.Errorf("revoking the first device: %v", err)
	}
	// A device may revoke itself.
	if ok, err := revs.Add(revoke(t, tablet, tablet.id.ID(), now.Add(40*time.Minute))); !ok || err != nil {
		t.Errorf("self-revocation: %v, %v", ok, err)
	}
	if _, err := contacts.VerifyDevice(tablet.chain, person, revs, later); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("self-revoked tablet: %v", err)
	}
	// The laptop approved again, after its revocation, is Bob's again.
	again := relink(t, bob, laptop, "laptop", now.Add(50*time.Minute))
	if _, err := contacts.VerifyDevice(again, person, revs, later); err != nil {
		t.Errorf("laptop approved again: %v", err)
	}
}

// relink has approver approve d again at at; it returns d's new chain.
func relink(t testing.TB, approver, d device, name string, at time.Time) []*x509.Certificate {
	t.Helper()
	req, err := contacts.NewLinkRequest(d.id, d.cert, name, at)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := contacts.Approve(approver.id, approver.chain, req, at)
	if err != nil {
		t.Fatal(err)
	}
	return chain
}

func TestRevocationReplayRefused(t *testing.T) {
	bob := firstDevice(t, "Bob")
	person := bob.id.ID()
	laptop := link(t, bob, "laptop", now)
	old := revoke(t, bob, laptop.id.ID(), now.Add(time.Minute))
	// Bob approves the laptop again; a contact sees its new grant.
	again := relink(t, bob, laptop, "laptop", now.Add(2*time.Minute))
	dc, err := contacts.VerifyDeviceChain(again, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	revs := contacts.NewRevocations(person)
	revs.NoteGrant(dc)
	if _, err := revs.Add(old); !errors.Is(err, contacts.ErrRevocationReplay) {
		t.Errorf("revocation older than the device's grant: %v", err)
	}
	if _, err := contacts.VerifyDevice(again, person, revs, now.Add(time.Hour)); err != nil {
		t.Errorf("laptop after the replay: %v", err)
	}

	// A revocation older than one known for the device is refused; the
	// same one again changes nothing.
	revs = contacts.NewRevocations(person)
	newer := revoke(t, bob, laptop.id.ID(), now.Add(3*time.Minute))
	if ok, err := revs.Add(newer); !ok || err != nil {
		t.Fatalf("Add = %v, %v", ok, err)
	}
	if ok, err := revs.Add(newer); ok || err != nil {
		t.Errorf("the same revocation again: %v, %v", ok, err)
	}
	if _, err := revs.Add(old); !errors.Is(err, contacts.ErrRevocationReplay) {
		t.Errorf("older revocation after a newer one: %v", err)
	}
	if got := revs.All(); len(got) != 1 || !got[0].Time.Equal(newer.Time) {
		t.Errorf("All = %v", got)
	}
}

func TestRevocationRefusals(t *testing.T) {
	bob := firstDevice(t, "Bob")
	laptop := link(t, bob, "laptop", now)
	r := revoke(t, bob, laptop.id.ID(), now.Add(3*time.Hour))
	raw := r.Marshal()
	now := now.Add(3 * time.Hour)
	for i := range 3 {
		bad := bytes.Clone(raw)
		bad[len(bad)-1-i*40] ^= 1
		if _, err := contacts.ParseRevocation(bad, now); !errors.Is(err, contacts.ErrBadRevocation) {
			t.Errorf("tampered revocation %d: %v", i, err)
		}
	}
	if _, err := contacts.ParseRevocation(raw, now.Add(-70*time.Minute)); !errors.Is(err, contacts.ErrRevocationFuture) {
		t.Errorf("revocation from the future: %v", err)
	}
	if _, err := contacts.ParseRevocationPEM(pemCard(bob.chain, nil), now); !errors.Is(err, contacts.ErrBadRevocation) {
		t.Errorf("a card as a revocation: %v", err)
	}
	// A peer record's envelope is no revocation.
	if _, err := contacts.ParseRevocation(sealedRecord(t, bob.testPeer), now); !errors.Is(err, contacts.ErrBadRevocation) {
		t.Errorf("a peer record as a revocation: %v", err)
	}
}

func TestCardCarriesRevocations(t *testing.T) {
	bob := firstDevice(t, "Bob")
	laptop := link(t, bob, "laptop", now)
	phone := link(t, bob, "phone", now)
	r := revoke(t, bob, phone.id.ID(), now)
	card, err := contacts.NewCard(laptop.id, laptop.chain, []ma.Multiaddr{addr}, now)
	if err != nil {
		t.Fatal(err)
	}
	card, err = card.WithRevocations([]*contacts.Revocation{r}, now)
	if err != nil {
		t.Fatal(err)
	}
	back, err := contacts.ParseCard(card.Marshal(), now)
	if err != nil {
		t.Fatal(err)
	}
	if revs := back.Revocations(); len(revs) != 1 || revs[0].Device != phone.id.ID() || len(back.Addrs()) != 1 {
		t.Fatalf("card carries %v, addresses %v", revs, back.Addrs())
	}
	// The first device's card carries them too.
	first, err := contacts.NewCard(bob.id, bob.chain, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.WithRevocations([]*contacts.Revocation{r}, now); err != nil {
		t.Errorf("first device's card with a revocation: %v", err)
	}
	// Another person's card cannot carry Bob's revocations.
	alice := firstDevice(t, "Alice")
	ac, _ := contacts.NewCard(alice.id, alice.chain, nil, now)
	if _, err := ac.WithRevocations([]*contacts.Revocation{r}, now); !errors.Is(err, contacts.ErrWrongPerson) {
		t.Errorf("Alice's card with Bob's revocation: %v", err)
	}
	// A revocation before the certificates is out of order.
	data := append(r.MarshalPEM(), pemCard(bob.chain, nil)...)
	if _, err := contacts.ParseCard(data, now); !errors.Is(err, contacts.ErrBlockOrder) {
		t.Errorf("revocation first: %v", err)
	}
	// Old cards, without any of this, load as before.
	old, err := contacts.ParseCard(pemCard([]*x509.Certificate{alice.cert}, sealedRecord(t, alice.testPeer)), now)
	if err != nil || old.Device() != nil || len(old.Revocations()) != 0 || old.PersonID() != alice.id.ID() {
		t.Errorf("old card: %v", err)
	}
}
