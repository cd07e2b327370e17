package contacts_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/peercollab/peercollab/contacts"
)

func TestStoreDevicesAndRevocations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "contacts.db")
	s := openStore(t, path)
	bob := firstDevice(t, "Bob")
	laptop := link(t, bob, "laptop", now)
	phone := link(t, bob, "phone", now.Add(time.Minute))
	person := bob.id.ID()

	if _, err := s.LinkRequest(); !errors.Is(err, contacts.ErrNoLinkRequest) {
		t.Errorf("no link request: %v", err)
	}
	req, err := contacts.NewLinkRequest(laptop.id, laptop.cert, "laptop", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetLinkRequest(req); err != nil {
		t.Fatal(err)
	}
	for _, d := range []device{bob, laptop, phone} {
		dc, err := contacts.VerifyDeviceChain(d.chain, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutDevice(contacts.DeviceFromLink(dc, 0)); err != nil {
			t.Fatal(err)
		}
	}
	old := revoke(t, bob, phone.id.ID(), now.Add(2*time.Minute))
	if ok, err := s.AddRevocation(old); !ok || err != nil {
		t.Fatalf("AddRevocation = %v, %v", ok, err)
	}
	s.Close()

	// Everything survives a restart.
	s = openStore(t, path)
	got, err := s.LinkRequest()
	if err != nil || got.Device != laptop.id.ID() {
		t.Errorf("LinkRequest = %v, %v", got, err)
	}
	devs, err := s.Devices()
	if err != nil || len(devs) != 3 {
		t.Fatalf("Devices = %v, %v", devs, err)
	}
	if !devs[0].First || devs[0].Device != person || devs[1].Name != "laptop" || devs[2].Name != "phone" {
		t.Errorf("Devices in order: %+v", devs)
	}
	if !devs[1].Revoked.IsZero() || !devs[2].Revoked.Equal(old.Time) {
		t.Errorf("revoked: %v %v", devs[1].Revoked, devs[2].Revoked)
	}
	rs, err := s.Revocations(person)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contacts.VerifyDevice(phone.chain, person, rs, now.Add(time.Hour)); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("stored revocation does not refuse the phone: %v", err)
	}
	// Bob approves the phone again; the old revocation, replayed, is refused.
	again := relink(t, bob, phone, "phone", now.Add(3*time.Minute))
	dc, err := contacts.VerifyDeviceChain(again, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutDevice(contacts.DeviceFromLink(dc, 0)); err != nil {
		t.Fatal(err)
	}
	if devs, _ := s.Devices(); !devs[2].Revoked.IsZero() {
		t.Errorf("phone approved again still revoked: %+v", devs[2])
	}
	s.Close()
	s = openStore(t, path)
	defer s.Close()
	// A fresh revocation set (another node) would take the replay; this
	// store knows the newer grant.
	fresh, err := contacts.ParseRevocation(old.Marshal(), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, filepath.Join(t.TempDir(), "other.db"))
	defer s2.Close()
	if _, err := s2.AddRevocation(fresh, dc); !errors.Is(err, contacts.ErrRevocationReplay) {
		t.Errorf("replay with the newer grant noted: %v", err)
	}
	if ok, err := s.AddRevocation(fresh); ok || err != nil {
		t.Errorf("the same revocation again: %v, %v", ok, err)
	}
	if err := s.SetLinkRequest(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LinkRequest(); !errors.Is(err, contacts.ErrNoLinkRequest) {
		t.Errorf("cleared link request: %v", err)
	}
}
