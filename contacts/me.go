package contacts

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// EnsureMe makes sure the store holds our own contact for id: when there is
// none it issues a self-signed certificate for profile and stores it. An
// existing "me" contact is kept as it is (profile is then ignored), so that
// init never overwrites; it must belong to id.
func EnsureMe(s *Store, id *Identity, profile Profile, now time.Time) (me *Contact, created bool, err error) {
	me, err = s.Me()
	if err == nil {
		if me.PeerID != id.ID() {
			return nil, false, fmt.Errorf("contacts: store belongs to peer %s, identity key to %s", me.PeerID, id.ID())
		}
		return me, false, nil
	}
	if !errors.Is(err, ErrContactNotFound) {
		return nil, false, err
	}
	cert, err := NewCertificate(id, profile, now)
	if err != nil {
		return nil, false, err
	}
	card, err := NewCard(id, []*x509.Certificate{cert}, nil, now)
	if err != nil {
		return nil, false, err
	}
	me = ContactFromCard(card, now)
	if err := s.SetMe(me); err != nil {
		return nil, false, err
	}
	return me, true, nil
}
