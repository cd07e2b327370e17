package contacts

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Refusals of Rename and of a renamed card.
var (
	// ErrSameProfile means a rename asks for the name and e-mail address
	// the certificate carries already.
	ErrSameProfile = errors.New("contacts: your certificate carries this name and e-mail address already")
	// ErrRenameIssued means our own certificate was issued by another key
	// (a device of a person, whose name its first device holds), so this
	// node cannot re-issue it.
	ErrRenameIssued = errors.New("contacts: your certificate was issued by another key; change the name on the device whose key issued it")
	// ErrNotRenamed means a card offered as a contact's new name is not a
	// newer self-signed certificate of the contact's own key.
	ErrNotRenamed = errors.New("contacts: the card is not a newer self-signed certificate of the contact's key")
)

// Rename re-issues our own self-signed certificate for profile, with the
// same key, and stores it in the "me" contact (whose other fields stay): the
// display name and e-mail address change, the peer ID does not, and neither
// does anyone's trust, which is in the key. Endorsements issued before keep
// the old certificate in their chains and stay valid. It returns the
// updated "me" contact; the store emits its change (Me set).
func Rename(s *Store, id *Identity, profile Profile, now time.Time) (*Contact, error) {
	if err := profile.Check(); err != nil {
		return nil, err
	}
	me, err := s.Me()
	if err != nil {
		return nil, err
	}
	if me.PeerID != id.ID() {
		return nil, fmt.Errorf("contacts: store belongs to peer %s, identity key to %s", me.PeerID, id.ID())
	}
	if len(me.Card) > 0 {
		if cur, err := ParseCard(me.Card, now); err == nil && len(cur.Chain()) > 1 {
			return nil, ErrRenameIssued
		}
	}
	if me.DisplayName == profile.DisplayName && me.Email == profile.Email {
		return nil, ErrSameProfile
	}
	cert, err := NewCertificate(id, profile, now)
	if err != nil {
		return nil, err
	}
	card, err := NewCard(id, []*x509.Certificate{cert}, nil, now)
	if err != nil {
		return nil, err
	}
	me.SetCard(card)
	if err := s.SetMe(me); err != nil {
		return nil, err
	}
	return me, nil
}

// Renamed applies to contact c the name and e-mail address of newer, a card
// its peer sent of itself: a self-signed certificate of the contact's own
// key, issued no earlier than the certificate of the stored card. A stored card that
// is self-signed too is replaced by newer; an endorsed one is kept, with the
// endorsements it carries, and only the names change. A nickname that was
// the old display name follows the new one. It reports whether anything
// changed; ErrNotRenamed when newer is not such a card.
func Renamed(c *Contact, newer *Card, now time.Time) (bool, error) {
	chain := newer.Chain()
	if newer.PeerID() != c.PeerID || len(chain) != 1 {
		return false, ErrNotRenamed
	}
	stored, err := ParseCard(c.Card, now)
	// Certificates carry whole seconds: one issued in the same second as
	// the stored one is taken (only an older one is surely stale).
	if err == nil && chain[0].NotBefore.Before(stored.Certificate().NotBefore) {
		return false, ErrNotRenamed
	}
	p := newer.Profile()
	if p.DisplayName == c.DisplayName && p.Email == c.Email {
		return false, nil
	}
	oldName := c.DisplayName
	if err != nil || len(stored.Chain()) == 1 {
		c.SetCard(newer)
	} else {
		c.DisplayName, c.Email = p.DisplayName, p.Email
	}
	if c.Nickname == oldName {
		c.Nickname = p.DisplayName
	}
	return true, nil
}
