package contacts_test

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/peercollab/peercollab/contacts"
)

// renameSetup is a store whose "me" is a fresh identity named Alice.
func renameSetup(t *testing.T, at time.Time) (*contacts.Store, *contacts.Identity) {
	t.Helper()
	s, err := contacts.OpenStore(filepath.Join(t.TempDir(), contacts.StoreFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	id, err := contacts.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := contacts.EnsureMe(s, id, contacts.Profile{DisplayName: "Alice", Email: "alice@example.org"}, at); err != nil {
		t.Fatal(err)
	}
	return s, id
}

func TestRename(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s, id := renameSetup(t, t0)
	before, _ := s.Me()
	me, err := contacts.Rename(s, id, contacts.Profile{DisplayName: "Alicia", Email: "alicia@example.org"}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := s.Me()
	if me.DisplayName != "Alicia" || stored.DisplayName != "Alicia" || stored.Email != "alicia@example.org" || stored.PeerID != id.ID() {
		t.Fatalf("renamed me: %+v", stored)
	}
	if stored.Fingerprint == before.Fingerprint || !stored.Added.Equal(before.Added) {
		t.Fatalf("fingerprint or added time: %+v, before %+v", stored, before)
	}
	card, err := contacts.ParseCard(stored.Card, t0.Add(2*time.Hour))
	if err != nil || card.PeerID() != id.ID() || len(card.Chain()) != 1 || card.Profile().DisplayName != "Alicia" {
		t.Fatalf("new card: %v %v", card, err)
	}

	// Refusals, each with its own error; nothing changes.
	for _, tc := range []struct {
		name string
		p    contacts.Profile
		want error
	}{
		{"same profile", contacts.Profile{DisplayName: "Alicia", Email: "alicia@example.org"}, contacts.ErrSameProfile},
		{"empty name", contacts.Profile{DisplayName: " "}, contacts.ErrEmptyName},
		{"bad e-mail", contacts.Profile{DisplayName: "A", Email: "nope"}, contacts.ErrBadEmail},
	} {
		if _, err := contacts.Rename(s, id, tc.p, t0.Add(2*time.Hour)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if now, _ := s.Me(); now.Fingerprint != stored.Fingerprint {
		t.Fatal("a refused rename changed the certificate")
	}
	other, _ := contacts.GenerateIdentity()
	if _, err := contacts.Rename(s, other, contacts.Profile{DisplayName: "Mallory"}, t0.Add(2*time.Hour)); err == nil {
		t.Fatal("renamed with another key")
	}
}

// TestRenameIssuedRefused: a certificate another key issued (a device of a
// person) cannot be re-issued by this node.
func TestRenameIssuedRefused(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s, id := renameSetup(t, t0)
	issuer, _ := contacts.GenerateIdentity()
	issuerCert, err := contacts.NewCertificate(issuer, contacts.Profile{DisplayName: "Person"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	me, _ := s.Me()
	mine, _ := contacts.ParseCard(me.Card, t0)
	issued, err := contacts.Endorse(issuer, issuerCert, mine.Certificate(), t0, time.Hour*24)
	if err != nil {
		t.Fatal(err)
	}
	card, err := contacts.NewCard(id, []*x509.Certificate{issued, issuerCert}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	me.SetCard(card)
	if err := s.SetMe(me); err != nil {
		t.Fatal(err)
	}
	if _, err := contacts.Rename(s, id, contacts.Profile{DisplayName: "Other"}, t0.Add(time.Hour)); !errors.Is(err, contacts.ErrRenameIssued) {
		t.Fatalf("rename of an issued certificate: %v", err)
	}
}

// TestRenamed: a contact's newer self-signed card renames the stored
// contact; an endorsed stored card keeps its endorsement; an older card, a
// card of another key or an endorsed card is refused.
func TestRenamed(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	bob, _ := contacts.GenerateIdentity()
	cardAt := func(name string, at time.Time) *contacts.Card {
		t.Helper()
		cert, err := contacts.NewCertificate(bob, contacts.Profile{DisplayName: name}, at)
		if err != nil {
			t.Fatal(err)
		}
		c, err := contacts.NewCard(bob, []*x509.Certificate{cert}, nil, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old, newer := cardAt("Bob", t0), cardAt("Robert", t0.Add(time.Hour))
	check := t0.Add(2 * time.Hour)

	// Self-signed stored card: replaced; the default nickname follows.
	c := contacts.ContactFromCard(old, t0)
	if changed, err := contacts.Renamed(c, newer, check); err != nil || !changed {
		t.Fatalf("Renamed: %v %v", changed, err)
	}
	if c.DisplayName != "Robert" || c.Nickname != "Robert" || c.Fingerprint != newer.Fingerprint() {
		t.Fatalf("renamed contact: %+v", c)
	}
	if changed, err := contacts.Renamed(c, newer, check); err != nil || changed {
		t.Fatalf("the same card again: %v %v", changed, err)
	}
	// An older card is refused.
	if _, err := contacts.Renamed(c, old, check); !errors.Is(err, contacts.ErrNotRenamed) {
		t.Fatalf("older card: %v", err)
	}
	// A nickname of the user's own stays.
	c = contacts.ContactFromCard(old, t0)
	c.Nickname = "bobby"
	contacts.Renamed(c, newer, check)
	if c.Nickname != "bobby" || c.DisplayName != "Robert" {
		t.Fatalf("own nickname: %+v", c)
	}

	// Endorsed stored card: kept with its endorsement; the names change.
	alice, _ := contacts.GenerateIdentity()
	aliceCert, _ := contacts.NewCertificate(alice, contacts.Profile{DisplayName: "Alice"}, t0)
	endorsement, err := contacts.Endorse(alice, aliceCert, old.Certificate(), t0, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	endorsed, err := contacts.NewCard(bob, []*x509.Certificate{endorsement, aliceCert}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	c = contacts.ContactFromCard(endorsed, t0)
	if changed, err := contacts.Renamed(c, newer, check); err != nil || !changed {
		t.Fatalf("Renamed over an endorsed card: %v %v", changed, err)
	}
	if c.DisplayName != "Robert" || c.EndorsedBy != alice.ID() || c.Fingerprint != endorsed.Fingerprint() {
		t.Fatalf("endorsed contact renamed: %+v", c)
	}
	// An endorsed card is no rename, nor is a card of another key.
	if _, err := contacts.Renamed(c, endorsed, check); !errors.Is(err, contacts.ErrNotRenamed) {
		t.Fatalf("endorsed card as a rename: %v", err)
	}
	aliceCard, _ := contacts.NewCard(alice, []*x509.Certificate{aliceCert}, nil, t0)
	if _, err := contacts.Renamed(c, aliceCard, check); !errors.Is(err, contacts.ErrNotRenamed) {
		t.Fatalf("another key's card: %v", err)
	}
}
