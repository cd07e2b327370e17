package localapi_test

import (
	"testing"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// TestSetMe: PUT /v1/me renames the node with the same peer ID; a request
// with nothing to change, the same profile, an empty name and a bad e-mail
// address are refused, each with its own code.
func TestSetMe(t *testing.T) {
	_, c, _ := serve(t, "Alice")
	before, err := c.ID(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	name, email := "Alicia", "alicia@example.org"
	info, err := c.SetMe(ctx(t), apitype.MeRequest{DisplayName: &name, Email: &email})
	if err != nil || info.DisplayName != "Alicia" || info.Email != email || info.PeerID != before.PeerID || info.Fingerprint == before.Fingerprint {
		t.Fatalf("SetMe: %+v %v", info, err)
	}
	// Only the e-mail address: the name stays.
	other := "a@example.org"
	if info, err = c.SetMe(ctx(t), apitype.MeRequest{Email: &other}); err != nil || info.DisplayName != "Alicia" || info.Email != other {
		t.Fatalf("SetMe of the e-mail address: %+v %v", info, err)
	}
	empty, bad := " ", "nope"
	for _, tc := range []struct {
		name string
		req  apitype.MeRequest
		code string
	}{
		{"nothing", apitype.MeRequest{}, apitype.CodeBadRequest},
		{"same", apitype.MeRequest{DisplayName: &name}, apitype.CodeSameProfile},
		{"empty name", apitype.MeRequest{DisplayName: &empty}, apitype.CodeEmptyName},
		{"bad e-mail", apitype.MeRequest{Email: &bad}, apitype.CodeBadEmail},
	} {
		if _, err := c.SetMe(ctx(t), tc.req); code(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}
