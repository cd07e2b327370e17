package node_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
)

// TestAddNeverReplacesUnasked: adding a contact's card again changes
// nothing and says so (the very card, or another), unless Replace is set;
// a card that would drop the stored card's endorsement is refused with its
// own error naming the endorser, and replacing it all the same names what
// was lost.
func TestAddNeverReplacesUnasked(t *testing.T) {
	alice, bob, carol := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Carol"))
	bobCard := mustCard(t, bob)
	endorsed, err := alice.Endorse(bobCard.Marshal(), 0)
	if err != nil {
		t.Fatal(err)
	}
	bid := bob.Identity().ID()
	carolEv := carol.Events()
	defer carolEv.Close()

	// The endorsed card first.
	if _, created, _, err := carol.AddCard(endorsed.Marshal(), node.AddOptions{}); err != nil || !created {
		t.Fatalf("AddCard: %v %v", created, err)
	}
	waitEvent(t, carolEv, "contact.changed", `"added"`)

	// The same card again: refused, nothing changed.
	nick := "bobby"
	_, _, _, err = carol.AddCard(endorsed.Marshal(), node.AddOptions{Nickname: &nick})
	var re *node.ReplaceError
	if !errors.As(err, &re) || !re.Same || len(re.Dropped) != 0 || !errors.Is(err, contacts.ErrContactExists) || errors.Is(err, node.ErrDropsEndorsement) {
		t.Fatalf("adding the same card again: %v", err)
	}
	if !strings.Contains(err.Error(), "is a contact already") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("message: %v", err)
	}
	if c, _ := carol.Contacts().Get(bid); c.Nickname != "Bob" || c.EndorsedBy != alice.Identity().ID() {
		t.Fatalf("a refused add changed the contact: %+v", c)
	}

	// His self-signed card would drop Alice's endorsement: refused, with
	// its own error that names her.
	_, _, _, err = carol.AddCard(bobCard.Marshal(), node.AddOptions{})
	if !errors.As(err, &re) || re.Same || len(re.Dropped) != 1 || re.Dropped[0].PeerID != alice.Identity().ID() ||
		!errors.Is(err, node.ErrDropsEndorsement) || !errors.Is(err, contacts.ErrContactExists) {
		t.Fatalf("a card without the endorsement: %v", err)
	}
	if !strings.Contains(err.Error(), "endorsement by Alice ("+alice.Identity().ID().String()+")") {
		t.Errorf("message does not name the endorsement lost: %v", err)
	}
	if c, _ := carol.Contacts().Get(bid); c.EndorsedBy != alice.Identity().ID() {
		t.Fatalf("the endorsement was lost: %+v", c)
	}

	// Asked: replaced, the user's settings kept, the loss named.
	c, created, chk, err := carol.AddCard(bobCard.Marshal(), node.AddOptions{Replace: true})
	if err != nil || created || c.EndorsedBy != "" || len(chk.Dropped) != 1 || chk.Dropped[0].DisplayName != "Alice" {
		t.Fatalf("replace: %+v %v %+v %v", c, created, chk.Dropped, err)
	}
	waitEvent(t, carolEv, "contact.changed", `"updated"`)

	// The endorsed card over the self-signed one drops nothing, and is
	// refused all the same without Replace.
	_, _, _, err = carol.AddCard(endorsed.Marshal(), node.AddOptions{})
	if !errors.As(err, &re) || re.Same || len(re.Dropped) != 0 || errors.Is(err, node.ErrDropsEndorsement) {
		t.Fatalf("the endorsed card over the self-signed one: %v", err)
	}
	c, _, chk, err = carol.AddCard(endorsed.Marshal(), node.AddOptions{Replace: true, Nickname: &nick})
	if err != nil || c.Nickname != "bobby" || c.EndorsedBy != alice.Identity().ID() || len(chk.Dropped) != 0 {
		t.Fatalf("replace with the endorsed card: %+v %+v %v", c, chk.Dropped, err)
	}
}

// TestAddCardOfAnotherDevice: the card of another device of a contact's
// person, added as a card, becomes one of the contact's devices, without
// replacing its card.
func TestAddCardOfAnotherDevice(t *testing.T) {
	alice, bob, laptop := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Bob"))
	joinDevice(t, bob, laptop, "laptop")
	bobCard, lcard := mustCard(t, bob), mustCard(t, laptop)
	if _, _, _, err := alice.AddCard(bobCard.Marshal(), node.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	c, created, chk, err := alice.AddCard(lcard.Marshal(), node.AddOptions{})
	if err != nil || created || !chk.Attached || c.PeerID != bob.Identity().ID() || len(c.Devices) != 1 {
		t.Fatalf("adding the laptop's card: %+v %v %+v %v", c, created, chk.Attached, err)
	}
	if c, _ := alice.Contacts().Get(bob.Identity().ID()); c.Fingerprint != bobCard.Fingerprint() {
		t.Fatalf("bob's card was replaced: %+v", c)
	}
}
