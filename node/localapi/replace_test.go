package localapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// TestAddContactRefusesToReplace: POST /v1/contacts of a contact's card
// answers 409 contact_exists and changes nothing; endorsement_dropped when
// the card would drop the stored card's endorsement; "replace": true
// replaces it and lists the endorsement dropped.
func TestAddContactRefusesToReplace(t *testing.T) {
	_, alice, _ := serve(t, "Alice")
	_, bob, _ := serve(t, "Bob")
	_, carol, _ := serve(t, "Carol")
	bobCard, err := bob.Card(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	endorsed, err := alice.Endorse(ctx(t), apitype.EndorseRequest{Card: bobCard.Card})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := carol.AddContact(ctx(t), apitype.AddContactRequest{Card: endorsed.Card}); err != nil || !res.Created {
		t.Fatalf("add: %+v %v", res, err)
	}
	_, err = carol.AddContact(ctx(t), apitype.AddContactRequest{Card: endorsed.Card})
	var e *apitype.Error
	if !errors.As(err, &e) || e.Code != apitype.CodeContactExists || e.Status != http.StatusConflict ||
		!strings.Contains(e.Message, "is a contact already") || !strings.Contains(e.Message, "--replace") {
		t.Fatalf("the same card again: %v", err)
	}
	_, err = carol.AddContact(ctx(t), apitype.AddContactRequest{Card: bobCard.Card})
	if !errors.As(err, &e) || e.Code != apitype.CodeEndorsementDropped || e.Status != http.StatusConflict ||
		!strings.Contains(e.Message, "endorsement by Alice") {
		t.Fatalf("a card without the endorsement: %v", err)
	}
	res, err := carol.AddContact(ctx(t), apitype.AddContactRequest{Card: bobCard.Card, Replace: true})
	if err != nil || res.Created || len(res.DroppedEndorsements) != 1 || res.DroppedEndorsements[0].DisplayName != "Alice" || res.Contact.EndorsedBy != "" {
		t.Fatalf("replace: %+v %v", res, err)
	}
}
