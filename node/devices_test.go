package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

func TestDevicesLinkApproveJoinRevoke(t *testing.T) {
	bob, laptop, phone := newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Bob"))
	person := bob.Identity().ID()

	// A node is the first device of a person of its own.
	ds, err := bob.Devices()
	if err != nil || ds.Person != person || len(ds.Devices) != 1 || !ds.Devices[0].First || !ds.Devices[0].Self || ds.Devices[0].Name != "Bob" {
		t.Fatalf("Devices = %+v, %v", ds, err)
	}

	req, err := laptop.LinkDevice("laptop")
	if err != nil {
		t.Fatal(err)
	}
	if ds, _ := laptop.Devices(); !ds.PendingLink {
		t.Error("no pending link after link")
	}
	// The phone cannot join with the laptop's grant.
	preq, err := phone.LinkDevice("phone")
	if err != nil {
		t.Fatal(err)
	}
	grant, dev, err := bob.ApproveDevice(req)
	if err != nil {
		t.Fatal(err)
	}
	if dev.Device != laptop.Identity().ID() || dev.Name != "laptop" || dev.ApprovedBy != person {
		t.Errorf("approved %+v", dev)
	}
	if _, err := phone.JoinDevice(grant); !errors.Is(err, contacts.ErrGrantForOtherKey) {
		t.Errorf("phone joins with the laptop's grant: %v", err)
	}
	ds, err = laptop.JoinDevice(grant)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Person != person || ds.PendingLink || len(ds.Devices) != 2 || ds.Devices[0].Device != person || !ds.Devices[1].Self {
		t.Errorf("laptop's devices after join: %+v", ds)
	}
	if got := laptop.Contacts().OwnPerson(); got != person {
		t.Errorf("the laptop's own person is %s", got)
	}
	// The laptop's card names the person; a contact of Bob trusts it.
	card, err := laptop.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	if card.PersonID() != person || card.PeerID() != laptop.Identity().ID() || len(card.Addrs()) == 0 {
		t.Errorf("laptop's card: person %s, peer %s, %d addresses", card.PersonID(), card.PeerID(), len(card.Addrs()))
	}
	// The laptop approves the phone.
	grant, _, err = laptop.ApproveDevice(preq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.JoinDevice(grant); err != nil {
		t.Fatal(err)
	}
	// A joined device cannot join another person; the first device, with
	// devices, cannot join any.
	carol := newNode(t, testConfig(t, "Carol"))
	again, err := laptop.LinkDevice("")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := carol.ApproveDevice(again)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.JoinDevice(other); !errors.Is(err, node.ErrJoined) {
		t.Errorf("joined device joins Carol: %v", err)
	}
	if _, err := bob.LinkDevice("again"); !errors.Is(err, node.ErrHasDevices) {
		t.Errorf("first device with devices links: %v", err)
	}
	// Bob revokes the laptop; the first device cannot be.
	if _, _, err := laptop.RevokeDevice(person.String()); !errors.Is(err, contacts.ErrRevokePerson) {
		t.Errorf("revoking the first device: %v", err)
	}
	if _, _, err := laptop.RevokeDevice("bob"); !errors.Is(err, contacts.ErrRevokePerson) {
		t.Errorf("revoking the first device by name: %v", err)
	}
	if _, _, err := bob.RevokeDevice("tablet"); !errors.Is(err, contacts.ErrDeviceNotFound) {
		t.Errorf("revoking no device: %v", err)
	}
	d, file, err := bob.RevokeDevice("lap")
	if err != nil {
		t.Fatal(err)
	}
	if d.Device != laptop.Identity().ID() || d.Revoked.IsZero() {
		t.Errorf("revoked %+v", d)
	}
	r, err := contacts.ParseRevocationPEM(file, time.Now())
	if err != nil || r.Device != laptop.Identity().ID() || r.Person != person {
		t.Errorf("revocation file: %v, %v", r, err)
	}
	ds, _ = bob.Devices()
	for _, d := range ds.Devices {
		if d.Device == laptop.Identity().ID() && d.Revoked.IsZero() {
			t.Errorf("laptop not revoked in %+v", ds)
		}
	}
	// The phone's chain passes through the laptop: Bob's revocations
	// refuse it, and a revoked device approves nothing.
	revs, err := bob.Contacts().Revocations(person)
	if err != nil {
		t.Fatal(err)
	}
	pcard, err := phone.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contacts.VerifyDevice(pcard.Chain(), person, revs, time.Now()); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("phone approved by the revoked laptop: %v", err)
	}
	// Bob approves the laptop again (it asks under the name it had).
	time.Sleep(time.Second) // grants are dated to the second
	again, err = laptop.LinkDevice("")
	if err != nil {
		t.Fatal(err)
	}
	grant, dev, err = bob.ApproveDevice(again)
	if err != nil || dev.Name != "laptop" {
		t.Fatalf("approve again: %+v, %v", dev, err)
	}
	if _, err := laptop.JoinDevice(grant); err != nil {
		t.Fatal(err)
	}
	ds, _ = bob.Devices()
	for _, d := range ds.Devices {
		if d.Device == laptop.Identity().ID() && !d.Revoked.IsZero() {
			t.Errorf("laptop approved again is revoked: %+v", d)
		}
	}
	lcard, _ := laptop.MyCard()
	revs, _ = bob.Contacts().Revocations(person)
	if _, err := contacts.VerifyDevice(lcard.Chain(), person, revs, time.Now()); err != nil {
		t.Errorf("laptop approved again: %v", err)
	}
}

func TestDeviceCardsReachContacts(t *testing.T) {
	alice, bob, laptop := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Bob"))
	person := bob.Identity().ID()
	joinDevice(t, bob, laptop, "laptop")
	bobCard, _ := bob.MyCard()
	if _, _, _, err := alice.AddCard(bobCard.Marshal(), node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	lcard, err := laptop.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	// A card that is no device's is the caller's.
	if c, ok, err := alice.AttachDeviceCard(bobCard); c != nil || ok || err != nil {
		t.Errorf("Bob's own card: %v, %v, %v", c, ok, err)
	}
	c, ok, err := alice.AttachDeviceCard(lcard)
	if err != nil || !ok || c.PeerID != person || len(c.Devices) != 1 {
		t.Fatalf("AttachDeviceCard = %+v, %v, %v", c, ok, err)
	}
	if !alice.Contacts().IsContact(laptop.Identity().ID()) {
		t.Error("the laptop is not Alice's contact")
	}
	// An invitation to the laptop names it as Bob's device, a contact.
	recs, err := alice.Invitations().Send([]peer.ID{laptop.Identity().ID()}, invitations.Request{AppID: "chat", Expiry: time.Minute})
	if err != nil || recs[0].PeerName != "Bob/laptop" || !recs[0].Trusted {
		t.Errorf("an invitation to the laptop: %+v, %v", recs, err)
	}
	eps, _ := alice.ContactEndpoints(c)
	if len(eps) != 2 || eps[0].Peer != person || !eps[0].First || eps[1].Peer != laptop.Identity().ID() || eps[1].Device != "laptop" {
		t.Errorf("ContactEndpoints = %+v", eps)
	}
	// Bob's own node takes the laptop's card as its own person's.
	if _, _, err := bob.AttachDeviceCard(lcard); !errors.Is(err, contacts.ErrIsMe) {
		t.Errorf("Bob's node takes the laptop's card: %v", err)
	}
	// Bob revokes the laptop; his card carries it to Alice.
	if _, _, err := bob.RevokeDevice("laptop"); err != nil {
		t.Fatal(err)
	}
	bobCard, err = bob.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	key := bob.DeviceCardKey()
	if _, _, err := bob.RevokeDevice("laptop"); err != nil { // the same device, revoked again
		t.Fatal(err)
	}
	if bob.DeviceCardKey() == key {
		t.Error("DeviceCardKey did not change with a revocation")
	}
	withRevs, err := bob.WithDeviceRevocations(bobCard)
	if err != nil || len(withRevs.Revocations()) != 1 {
		t.Fatalf("WithDeviceRevocations = %v, %v", withRevs, err)
	}
	if _, _, err := alice.AttachDeviceCard(withRevs); err != nil {
		t.Fatal(err)
	}
	if alice.Contacts().IsContact(laptop.Identity().ID()) {
		t.Error("the revoked laptop is still Alice's contact")
	}
	if c, _ := alice.Contacts().Get(person); c != nil {
		if eps, _ := alice.ContactEndpoints(c); len(eps) != 2 || eps[1].Revoked.IsZero() {
			t.Errorf("ContactEndpoints after the revocation = %+v", eps)
		}
	}
	chk, err := alice.CheckCard(lcard.Marshal())
	if err != nil || !errors.Is(chk.TrustErr, contacts.ErrDeviceRevoked) {
		t.Errorf("CheckCard of the revoked laptop: %v, %v", chk.TrustErr, err)
	}
	if _, _, err := alice.AttachDeviceCard(lcard); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("attaching the revoked laptop: %v", err)
	}
}

// TestInviteAPersonsDevices: an invitation to a person's two devices is
// answered by the first that accepts; the other's is withdrawn, and the
// tally counts the person once. "Bob/laptop" is the laptop alone.
func TestInviteAPersonsDevices(t *testing.T) {
	alice, bob, laptop := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Bob"))
	joinDevice(t, bob, laptop, "laptop")
	pair(t, alice, bob)
	befriend(t, laptop, alice, contacts.Allowed)
	lcard, err := laptop.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := alice.AddCard(lcard.Marshal(), node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	lid := laptop.Identity().ID()
	targets, err := alice.InviteTargets([]string{"Bob/laptop"})
	if err != nil || len(targets) != 1 || targets[0].Peer != lid || targets[0].Person != "" {
		t.Fatalf("InviteTargets(Bob/laptop) = %+v, %v", targets, err)
	}
	if targets, err = alice.InviteTargets([]string{lid.String()}); err != nil || len(targets) != 1 || targets[0].Peer != lid {
		t.Fatalf("InviteTargets(laptop's ID) = %+v, %v", targets, err)
	}
	for _, n := range []*node.Node{bob, laptop} {
		register(t, n, publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"}})
	}
	person := bob.Identity().ID()
	recs, err := alice.Invitations().SendTo([]invitations.Target{{Peer: person, Person: person}, {Peer: lid, Person: person}},
		invitations.Request{AppID: "chat", Expiry: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if tl := invitations.Count(recs); tl.Total != 1 || tl.NoAnswer != 1 {
		t.Errorf("tally of the two invitations: %+v", tl)
	}
	waitInvitation(t, laptop, recs[1].ID, invitations.Pending)
	waitInvitation(t, bob, recs[0].ID, invitations.Pending)
	if _, err := laptop.Invitations().Accept(recs[1].ID); err != nil {
		t.Fatal(err)
	}
	waitInvitation(t, alice, recs[1].ID, invitations.Accepted)
	waitInvitation(t, alice, recs[0].ID, invitations.Cancelled)
	waitInvitation(t, bob, recs[0].ID, invitations.Cancelled)
	if tl := invitations.Count(alice.Invitations().List(invitations.Filter{Batch: recs[0].Batch})); tl.Total != 1 || tl.Accepted != 1 {
		t.Errorf("tally once accepted: %+v", tl)
	}
	// Bob revokes the laptop: his card, sent to Alice who is connected,
	// carries the revocation, and the laptop is a stranger to her.
	if _, _, err := bob.RevokeDevice("laptop"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return !alice.Contacts().IsContact(lid) },
		func() string { return "Alice still takes the revoked laptop as Bob's" })
	if targets, err := alice.InviteTargets([]string{"Bob/laptop"}); !errors.Is(err, contacts.ErrDeviceRevoked) {
		t.Errorf("InviteTargets(Bob/laptop) after the revocation = %+v, %v", targets, err)
	}
}

// joinDevice makes device a device of person's, named name: link,
// approve, join.
func joinDevice(t *testing.T, person, device *node.Node, name string) {
	t.Helper()
	req, err := device.LinkDevice(name)
	if err != nil {
		t.Fatal(err)
	}
	grant, _, err := person.ApproveDevice(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := device.JoinDevice(grant); err != nil {
		t.Fatal(err)
	}
}
