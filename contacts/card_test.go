package contacts_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
)

var now = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// testPeer is an identity with its self-signed certificate.
type testPeer struct {
	id   *contacts.Identity
	cert *x509.Certificate
}

func newPeer(t testing.TB, name string) testPeer {
	t.Helper()
	id, err := contacts.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := contacts.NewCertificate(id, contacts.Profile{DisplayName: name, Email: strings.ToLower(name) + "@example.org"}, now)
	if err != nil {
		t.Fatal(err)
	}
	return testPeer{id, cert}
}

// endorse has e endorse p at time at.
func (e testPeer) endorse(t testing.TB, p *x509.Certificate, at time.Time, validity time.Duration) *x509.Certificate {
	t.Helper()
	c, err := contacts.Endorse(e.id, e.cert, p, at, validity)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// anchors is a contact list for Evaluate.
type anchors map[peer.ID]bool

func (a anchors) IsContact(id peer.ID) bool { return a[id] }

var addr = ma.StringCast("/ip4/192.0.2.1/tcp/4737")

// pemCard encodes certificates and optional record bytes as a card.
func pemCard(certs []*x509.Certificate, rec []byte) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if rec != nil {
		pem.Encode(&b, &pem.Block{Type: "LIBP2P PEER RECORD", Bytes: rec})
	}
	return b.Bytes()
}

func sealedRecord(t testing.TB, p testPeer) []byte {
	t.Helper()
	env, err := record.Seal(peer.PeerRecordFromAddrInfo(peer.AddrInfo{ID: p.id.ID(), Addrs: []ma.Multiaddr{addr}}), p.id.PrivKey())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// rawCert signs tmpl with signer for pub, filling in what every peer
// certificate needs unless tmpl sets it.
func rawCert(t testing.TB, tmpl, parent *x509.Certificate, pub any, signer any) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(1)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func peerURI(id peer.ID) []*url.URL { return []*url.URL{{Scheme: "p2p", Opaque: id.String()}} }

func TestCardRoundTrip(t *testing.T) {
	alice := newPeer(t, "Alice")
	card, err := contacts.NewCard(alice.id, []*x509.Certificate{alice.cert}, []ma.Multiaddr{addr}, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := contacts.ParseCard(card.Marshal(), now)
	if err != nil {
		t.Fatal(err)
	}
	if got.PeerID() != alice.id.ID() {
		t.Errorf("peer ID = %s, want %s", got.PeerID(), alice.id.ID())
	}
	if p := got.Profile(); p.DisplayName != "Alice" || p.Email != "alice@example.org" {
		t.Errorf("profile = %+v", p)
	}
	if a := got.Addrs(); len(a) != 1 || !a[0].Equal(addr) {
		t.Errorf("addrs = %v", a)
	}
	if got.Fingerprint() != card.Fingerprint() || got.Endorsed() {
		t.Errorf("fingerprint or endorsement changed in transit")
	}
	if !bytes.Equal(got.Marshal(), card.Marshal()) {
		t.Errorf("re-marshalled card differs")
	}
}

func TestEvaluate(t *testing.T) {
	alice, bob, dave, erin := newPeer(t, "Alice"), newPeer(t, "Bob"), newPeer(t, "Dave"), newPeer(t, "Erin")
	bobByAlice := alice.endorse(t, bob.cert, now, contacts.EndorsementValidity)
	daveByBob := testPeer{bob.id, bobByAlice}.endorse(t, dave.cert, now, contacts.EndorsementValidity)
	erinByDave := testPeer{dave.id, daveByBob}.endorse(t, erin.cert, now, contacts.EndorsementValidity)

	cases := []struct {
		name    string
		chain   []*x509.Certificate
		anchors anchors
		want    contacts.Trust
		err     error
	}{
		{"contact itself", []*x509.Certificate{bob.cert}, anchors{bob.id.ID(): true}, contacts.Trust{Trusted: true, Via: bob.id.ID()}, nil},
		{"self-signed stranger", []*x509.Certificate{bob.cert}, anchors{alice.id.ID(): true}, contacts.Trust{}, contacts.ErrUntrusted},
		{"endorsed by contact", []*x509.Certificate{bobByAlice, alice.cert}, anchors{alice.id.ID(): true}, contacts.Trust{Trusted: true, Via: alice.id.ID(), Depth: 1}, nil},
		{"endorsed, no contact", []*x509.Certificate{bobByAlice, alice.cert}, anchors{}, contacts.Trust{}, contacts.ErrUntrusted},
		{"depth 2", []*x509.Certificate{daveByBob, bobByAlice, alice.cert}, anchors{alice.id.ID(): true}, contacts.Trust{Trusted: true, Via: alice.id.ID(), Depth: 2}, nil},
		{"nearest contact wins", []*x509.Certificate{daveByBob, bobByAlice, alice.cert}, anchors{alice.id.ID(): true, bob.id.ID(): true}, contacts.Trust{Trusted: true, Via: bob.id.ID(), Depth: 1}, nil},
		{"depth 3 too deep", []*x509.Certificate{erinByDave, daveByBob, bobByAlice, alice.cert}, anchors{alice.id.ID(): true}, contacts.Trust{Via: alice.id.ID(), Depth: 3}, contacts.ErrChainTooDeep},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			card, err := contacts.ParseCard(pemCard(tc.chain, nil), now)
			if err != nil {
				t.Fatalf("ParseCard: %v", err)
			}
			got, err := contacts.Evaluate(card, tc.anchors, contacts.DefaultMaxDepth)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("trust = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestBadCards feeds cards that must be refused, each for its own reason.
func TestBadCards(t *testing.T) {
	alice, bob, carol, mallory := newPeer(t, "Alice"), newPeer(t, "Bob"), newPeer(t, "Carol"), newPeer(t, "Mallory")
	trusted := anchors{alice.id.ID(): true}
	bobByAlice := alice.endorse(t, bob.cert, now, contacts.EndorsementValidity)
	bobRec := sealedRecord(t, bob)
	good := pemCard([]*x509.Certificate{bobByAlice, alice.cert}, bobRec)
	if c, err := contacts.ParseCard(good, now); err != nil {
		t.Fatalf("baseline card refused: %v", err)
	} else if _, err := contacts.Evaluate(c, trusted, contacts.DefaultMaxDepth); err != nil {
		t.Fatalf("baseline card untrusted: %v", err)
	}

	edPub := func(p testPeer) ed25519.PublicKey { return p.id.Signer().Public().(ed25519.PublicKey) }
	ca := func(tmpl *x509.Certificate) *x509.Certificate {
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		return tmpl
	}

	cases := []struct {
		name string
		card func() []byte
		want error
	}{
		{"empty file", func() []byte { return []byte("  \n") }, contacts.ErrCardEmpty},
		{"oversized file", func() []byte {
			return append(bytes.Repeat([]byte("#"), contacts.MaxCardSize), good...)
		}, contacts.ErrCardTooLarge},
		{"garbage", func() []byte { return []byte("this is not a contact card\x00\x01\x02") }, contacts.ErrNotPEM},
		{"truncated PEM", func() []byte { return good[:len(good)/3] }, contacts.ErrTruncatedPEM},
		{"trailing garbage", func() []byte { return append(append([]byte{}, good...), "junk"...) }, contacts.ErrTrailingData},
		{"unknown block", func() []byte {
			return append(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}}), good...)
		}, contacts.ErrUnknownBlock},
		{"certificate after record", func() []byte {
			return append(pemCard([]*x509.Certificate{bob.cert}, bobRec), pemCard([]*x509.Certificate{alice.cert}, nil)...)
		}, contacts.ErrBlockOrder},
		{"record only", func() []byte { return pemCard(nil, bobRec) }, contacts.ErrNoCertificate},
		{"chain longer than 8", func() []byte {
			chain := make([]*x509.Certificate, contacts.MaxChainLen+1)
			for i := range chain {
				chain[i] = alice.cert
			}
			return pemCard(chain, nil)
		}, contacts.ErrChainTooLong},
		{"certificate DER garbage", func() []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("\x30\x03\x02\x01\x01")})
		}, contacts.ErrBadCertificate},
		{"wrong key type", func() []byte {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			c := rawCert(t, ca(&x509.Certificate{Subject: pkix.Name{CommonName: "Eve"}, URIs: peerURI(bob.id.ID())}), nil, &k.PublicKey, k)
			return pemCard([]*x509.Certificate{c}, nil)
		}, contacts.ErrKeyType},
		{"no peer ID", func() []byte {
			c := rawCert(t, ca(&x509.Certificate{Subject: pkix.Name{CommonName: "Bob"}}), nil, edPub(bob), bob.id.Signer())
			return pemCard([]*x509.Certificate{c}, nil)
		}, contacts.ErrNoPeerID},
		{"key not matching peer ID", func() []byte {
			// Mallory's key, claiming Bob's peer ID.
			c := rawCert(t, ca(&x509.Certificate{Subject: pkix.Name{CommonName: "Bob"}, URIs: peerURI(bob.id.ID())}), nil, edPub(mallory), mallory.id.Signer())
			return pemCard([]*x509.Certificate{c}, nil)
		}, contacts.ErrPeerIDMismatch},
		{"bad signature", func() []byte {
			raw := append([]byte{}, bobByAlice.Raw...)
			raw[len(raw)-1] ^= 0xff
			var b bytes.Buffer
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: raw})
			pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: alice.cert.Raw})
			return b.Bytes()
		}, contacts.ErrBadSignature},
		{"chain broken", func() []byte { return pemCard([]*x509.Certificate{bobByAlice, carol.cert}, nil) }, contacts.ErrBrokenChain},
		{"issuer not a CA", func() []byte {
			notCA := rawCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Alice"}, URIs: peerURI(alice.id.ID()), BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature}, nil, edPub(alice), alice.id.Signer())
			leaf := rawCert(t, ca(&x509.Certificate{Subject: pkix.Name{CommonName: "Bob"}, URIs: peerURI(bob.id.ID())}), notCA, edPub(bob), alice.id.Signer())
			return pemCard([]*x509.Certificate{leaf, notCA}, nil)
		}, contacts.ErrIssuerNotCA},
		{"issuer missing", func() []byte { return pemCard([]*x509.Certificate{bobByAlice}, bobRec) }, contacts.ErrIncompleteChain},
		{"expired", func() []byte {
			old := alice.endorse(t, bob.cert, now.Add(-3*365*24*time.Hour), 365*24*time.Hour)
			return pemCard([]*x509.Certificate{old, alice.cert}, bobRec)
		}, contacts.ErrExpired},
		{"not yet valid", func() []byte {
			future := alice.endorse(t, bob.cert, now.Add(30*24*time.Hour), 365*24*time.Hour)
			return pemCard([]*x509.Certificate{future, alice.cert}, bobRec)
		}, contacts.ErrNotYetValid},
		{"name too long", func() []byte {
			c := rawCert(t, ca(&x509.Certificate{Subject: pkix.Name{CommonName: strings.Repeat("B", 256)}, URIs: peerURI(bob.id.ID())}), nil, edPub(bob), bob.id.Signer())
			return pemCard([]*x509.Certificate{c}, nil)
		}, contacts.ErrTextTooLong},
		{"record garbage", func() []byte {
			return pemCard([]*x509.Certificate{bobByAlice, alice.cert}, []byte("not an envelope"))
		}, contacts.ErrBadRecord},
		{"record of another peer", func() []byte {
			return pemCard([]*x509.Certificate{bobByAlice, alice.cert}, sealedRecord(t, mallory))
		}, contacts.ErrRecordMismatch},
		{"two records", func() []byte {
			return append(good, pem.EncodeToMemory(&pem.Block{Type: "LIBP2P PEER RECORD", Bytes: bobRec})...)
		}, contacts.ErrDuplicateRecord},
		{"endorsed by a stranger", func() []byte {
			return pemCard([]*x509.Certificate{mallory.endorse(t, bob.cert, now, time.Hour), mallory.cert}, bobRec)
		}, contacts.ErrUntrusted},
		{"chain deeper than allowed", func() []byte {
			// Bob <- Mallory <- Carol <- Alice: three endorsements from Alice.
			carolByAlice := alice.endorse(t, carol.cert, now, time.Hour)
			malloryByCarol := testPeer{carol.id, carolByAlice}.endorse(t, mallory.cert, now, time.Hour)
			bobByMallory := testPeer{mallory.id, malloryByCarol}.endorse(t, bob.cert, now, time.Hour)
			return pemCard([]*x509.Certificate{bobByMallory, malloryByCarol, carolByAlice, alice.cert}, bobRec)
		}, contacts.ErrChainTooDeep},
	}

	seen := map[error]string{}
	for _, tc := range cases {
		if other, dup := seen[tc.want]; dup {
			t.Fatalf("cases %q and %q expect the same error; each bad card must have its own", other, tc.name)
		}
		seen[tc.want] = tc.name
		t.Run(tc.name, func(t *testing.T) {
			card, err := contacts.ParseCard(tc.card(), now)
			if err == nil {
				_, err = contacts.Evaluate(card, trusted, contacts.DefaultMaxDepth)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !contacts.IsCardError(err) {
				t.Errorf("IsCardError(%v) = false", err)
			}
		})
	}
	if len(cases) < 15 {
		t.Fatalf("only %d bad cards", len(cases))
	}
}

func TestEndorseRefusesSelf(t *testing.T) {
	alice := newPeer(t, "Alice")
	if _, err := contacts.Endorse(alice.id, alice.cert, alice.cert, now, time.Hour); !errors.Is(err, contacts.ErrSelfEndorsement) {
		t.Fatalf("err = %v", err)
	}
}

func TestEndorsementNeverOutlivesIssuer(t *testing.T) {
	alice, bob := newPeer(t, "Alice"), newPeer(t, "Bob")
	c := alice.endorse(t, bob.cert, now, 2*contacts.CertValidity)
	if !c.NotAfter.Equal(alice.cert.NotAfter) {
		t.Fatalf("NotAfter = %v, issuer's %v", c.NotAfter, alice.cert.NotAfter)
	}
}

func TestProfileLimits(t *testing.T) {
	for _, tc := range []struct {
		p    contacts.Profile
		want error
	}{
		{contacts.Profile{DisplayName: "Alice"}, nil},
		{contacts.Profile{DisplayName: strings.Repeat("é", 255)}, nil},
		{contacts.Profile{DisplayName: strings.Repeat("é", 256)}, contacts.ErrTextTooLong},
		{contacts.Profile{DisplayName: " "}, contacts.ErrEmptyName},
		{contacts.Profile{DisplayName: "A", Email: "nope"}, contacts.ErrBadEmail},
	} {
		if err := tc.p.Check(); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("Check(%.20q) = %v, want %v", tc.p.DisplayName, err, tc.want)
		}
	}
}

func TestFingerprintText(t *testing.T) {
	alice := newPeer(t, "Alice")
	f := contacts.CertFingerprint(alice.cert)
	txt, _ := f.MarshalText()
	var back contacts.Fingerprint
	if err := back.UnmarshalText(bytes.ToLower(txt)); err != nil || back != f {
		t.Fatalf("round trip: %v, %v != %v", err, back, f)
	}
	if len(f.String()) != 32*3-1 {
		t.Errorf("fingerprint %q has the wrong form", f)
	}
}

func FuzzParseCard(f *testing.F) {
	alice, bob := newPeer(f, "Alice"), newPeer(f, "Bob")
	f.Add(pemCard([]*x509.Certificate{alice.endorse(f, bob.cert, now, time.Hour), alice.cert}, sealedRecord(f, bob)))
	f.Add(pemCard([]*x509.Certificate{alice.cert}, nil))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n"))
	// A device card of a person, carrying a revocation.
	first := firstDevice(f, "Bob")
	laptop, phone := link(f, first, "laptop", now), link(f, first, "phone", now)
	f.Add(append(pemCard(laptop.chain, sealedRecord(f, laptop.testPeer)), revoke(f, first, phone.id.ID(), now).MarshalPEM()...))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := contacts.ParseCard(data, now)
		if err != nil {
			if !contacts.IsCardError(err) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if _, err := contacts.ParseCard(c.Marshal(), now); err != nil {
			t.Fatalf("re-parse of accepted card: %v", err)
		}
	})
}
