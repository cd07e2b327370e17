package contacts_test

import (
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
)

func TestPick(t *testing.T) {
	type dev struct {
		id   peer.ID
		name string
	}
	ids := []peer.ID{newPeer(t, "A").id.ID(), newPeer(t, "B").id.ID(), newPeer(t, "C").id.ID()}
	all := []dev{{ids[0], ""}, {ids[1], "laptop"}, {ids[2], "Phone"}}
	key := func(d dev) (peer.ID, string) { return d.id, d.name }
	for _, c := range []struct {
		query string
		want  peer.ID // "" for none
		err   error
	}{
		{"PHO", ids[2], nil},
		{"phone", ids[2], nil},
		{"laptop", ids[1], nil},
		{ids[0].String(), ids[0], nil},
		{ids[0].String()[:20], ids[0], nil},
		{"tablet", "", nil},
		{"", "", nil},
		{"12D3KooW", "", contacts.ErrAmbiguous},
	} {
		d, ok, err := contacts.Pick(all, c.query, key)
		if !errors.Is(err, c.err) || ok != (c.want != "") || (ok && d.id != c.want) {
			t.Errorf("Pick(%q) = %v, %v, %v; want %v, %v", c.query, d.id, ok, err, c.want, c.err)
		}
	}
}
