package contacts_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
)

// deviceCard is d's card at at, with an address and revocations revs.
func deviceCard(t testing.TB, d device, at time.Time, revs ...*contacts.Revocation) *contacts.Card {
	t.Helper()
	c, err := contacts.NewCard(d.id, d.chain, []ma.Multiaddr{addr}, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) > 0 {
		if c, err = c.WithRevocations(revs, at); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestContactIsAPersonWithDevices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "contacts.db")
	s := openStore(t, path)
	alice, bob, carol := firstDevice(t, "Alice"), firstDevice(t, "Bob"), firstDevice(t, "Carol")
	if _, _, err := contacts.EnsureMe(s, alice.id, contacts.Profile{DisplayName: "Alice"}, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(contactOf(t, bob.testPeer)); err != nil {
		t.Fatal(err)
	}
	person := bob.id.ID()
	laptop := link(t, bob, "laptop", now)
	phone := link(t, laptop, "phone", now.Add(time.Minute))
	at := now.Add(time.Hour)

	// Before it is attached, the laptop's card is trusted through Bob, at
	// depth 0 however long its chain.
	for _, d := range []device{laptop, phone} {
		trust, err := contacts.Evaluate(deviceCard(t, d, at), s, 0)
		if err != nil || !trust.Trusted || trust.Via != person || trust.Depth != 0 {
			t.Errorf("Evaluate(%s) = %+v, %v", d.id.ID(), trust, err)
		}
	}
	if s.IsContact(laptop.id.ID()) {
		t.Error("an unattached device is a contact")
	}
	c, err := s.AttachDevice(deviceCard(t, laptop, at), at)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Devices) != 1 || c.Devices[0].Device != laptop.id.ID() || c.Devices[0].Name != "laptop" || len(c.Devices[0].Addrs) != 1 {
		t.Fatalf("devices %+v", c.Devices)
	}
	if _, err := s.AttachDevice(deviceCard(t, phone, at), at); err != nil {
		t.Fatal(err)
	}
	// Attaching again updates, not adds.
	if c, err = s.AttachDevice(deviceCard(t, laptop, at), at); err != nil || len(c.Devices) != 2 {
		t.Fatalf("attach again: %v, %v", c, err)
	}
	// A device of a person who is no contact, one of our own, a card of no
	// device: refused.
	if _, err := s.AttachDevice(deviceCard(t, link(t, carol, "tablet", now), at), at); !errors.Is(err, contacts.ErrContactNotFound) {
		t.Errorf("device of a stranger: %v", err)
	}
	mine := link(t, alice, "mine", now)
	if _, err := s.AttachDevice(deviceCard(t, mine, at), at); !errors.Is(err, contacts.ErrIsMe) {
		t.Errorf("device of our own person: %v", err)
	}
	// Our own person's devices are trusted, though no contact.
	if s.OwnPerson() != alice.id.ID() {
		t.Errorf("OwnPerson = %s", s.OwnPerson())
	}
	if trust, err := contacts.Evaluate(deviceCard(t, mine, at), s, 0); err != nil || trust.Via != alice.id.ID() {
		t.Errorf("Evaluate of our own device: %+v, %v", trust, err)
	}
	if _, err := s.AttachDevice(deviceCard(t, bob, at), at); !errors.Is(err, contacts.ErrNotDeviceGrant) {
		t.Errorf("the first device's card: %v", err)
	}
	s.Close()

	// The contact's devices survive a restart, and count as the contact.
	s = openStore(t, path)
	for _, d := range []device{laptop, phone} {
		if !s.IsContact(d.id.ID()) {
			t.Errorf("%s is not a contact", d.id.ID())
		}
		if got, err := s.PersonOf(d.id.ID()); err != nil || got.PeerID != person {
			t.Errorf("PersonOf = %v, %v", got, err)
		}
	}
	got, _ := s.Get(person)
	if len(got.Devices) != 2 || len(got.Devices[1].Card) == 0 {
		t.Fatalf("stored devices %+v", got.Devices)
	}

	// A card that carries a revocation of a device the card's person
	// revoked: the device (and what it approved) stops being the contact.
	r := revoke(t, bob, laptop.id.ID(), now.Add(2*time.Minute))
	// Evaluate heeds the card's own revocations before they are taken.
	if _, err := contacts.Evaluate(deviceCard(t, phone, at, r), s, 2); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("phone's card carrying the laptop's revocation: %v", err)
	}
	n, err := s.TakeRevocations(deviceCard(t, bob, at, r))
	if err != nil || n != 1 {
		t.Fatalf("TakeRevocations = %d, %v", n, err)
	}
	if n, err := s.TakeRevocations(deviceCard(t, bob, at, r)); err != nil || n != 0 {
		t.Errorf("the same again: %d, %v", n, err)
	}
	for _, d := range []device{laptop, phone} {
		if s.IsContact(d.id.ID()) {
			t.Errorf("revoked %s is still a contact", d.id.ID())
		}
		if _, err := contacts.Evaluate(deviceCard(t, d, at), s, 2); !errors.Is(err, contacts.ErrDeviceRevoked) {
			t.Errorf("Evaluate of revoked %s: %v", d.id.ID(), err)
		}
		if _, err := s.AttachDevice(deviceCard(t, d, at), at); !errors.Is(err, contacts.ErrDeviceRevoked) {
			t.Errorf("attach revoked %s: %v", d.id.ID(), err)
		}
	}
	got, _ = s.Get(person)
	if got.Devices[0].Revoked.IsZero() || got.Devices[1].Revoked.IsZero() {
		t.Errorf("devices not marked revoked: %+v", got.Devices)
	}

	// Bob approves the laptop again: its new card is the contact's again,
	// and the old revocation, replayed, changes nothing.
	again := device{laptop.testPeer, relink(t, bob, laptop, "laptop", now.Add(3*time.Minute))}
	if _, err := s.AttachDevice(deviceCard(t, again, at), at); err != nil {
		t.Fatalf("attach the laptop approved again: %v", err)
	}
	if !s.IsContact(laptop.id.ID()) {
		t.Error("the laptop approved again is not a contact")
	}
	older := revoke(t, bob, laptop.id.ID(), now.Add(150*time.Second))
	if _, err := s.AddRevocation(older); !errors.Is(err, contacts.ErrRevocationReplay) {
		t.Errorf("older revocation after the new grant: %v", err)
	}
	if n, err := s.TakeRevocations(deviceCard(t, bob, at, older)); err != nil || n != 0 {
		t.Errorf("a card with the older revocation: %d, %v", n, err)
	}
	if trust, err := contacts.Evaluate(deviceCard(t, again, at), s, 2); err != nil || !trust.Trusted {
		t.Errorf("laptop approved again: %+v, %v", trust, err)
	}
	// A revocation that arrives on its own marks the device too.
	if _, err := s.AddRevocation(revoke(t, bob, laptop.id.ID(), now.Add(4*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if s.IsContact(laptop.id.ID()) {
		t.Error("the laptop revoked again is a contact")
	}
	// Removing the contact removes its devices from the index.
	if err := s.Remove(person); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PersonOf(phone.id.ID()); !errors.Is(err, contacts.ErrContactNotFound) {
		t.Errorf("PersonOf after removal: %v", err)
	}
}
