package contacts

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	bolt "go.etcd.io/bbolt"
)

// A contact is a person with endpoints: the contact's own PeerID (the
// person ID, the person's first device) and the person's other devices
// accepted as the same contact. A single-device contact has none.

// indexDevices replaces the device index entries of old (nil: none) by
// those of c (nil: none). The caller holds cacheMu, or owns s alone.
func (s *Store) indexDevices(old, c *Contact) {
	if old != nil {
		for _, d := range old.Devices {
			if s.devices[d.Device] == old.PeerID {
				delete(s.devices, d.Device)
			}
		}
	}
	if c != nil {
		for _, d := range c.Devices {
			if d.Revoked.IsZero() {
				s.devices[d.Device] = c.PeerID
			}
		}
	}
}

// PersonOf returns the contact whose unrevoked device id is (the contact
// itself when id is a contact's PeerID), or ErrContactNotFound.
func (s *Store) PersonOf(id peer.ID) (*Contact, error) {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	if c, ok := s.cache[id]; ok {
		return c.clone(), nil
	}
	if p, ok := s.devices[id]; ok {
		if c, ok := s.cache[p]; ok {
			return c.clone(), nil
		}
	}
	return nil, ErrContactNotFound
}

// AttachDevice accepts the card of another device of a contact's person as
// an endpoint of that same contact: the card's device chain must end at the
// contact (its PeerID is the person ID), and no device on it may be revoked
// by what the store knows or the card carries (its revocations are taken).
// A device attached before is updated (its card, name and addresses). It
// returns ErrNotDeviceGrant for a card of no person's other device,
// ErrContactNotFound when its person is no contact, ErrIsMe for a device of
// our own person, ErrDeviceRevoked for a revoked device.
func (s *Store) AttachDevice(card *Card, now time.Time) (*Contact, error) {
	dc := card.Device()
	if dc == nil || dc.IsFirst() {
		return nil, ErrNotDeviceGrant
	}
	var out *Contact
	err := s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		if me, _ := decode(nil, tx.Bucket(bucketMeta).Get(keyMe)); me != nil && (me.PeerID == dc.Person || me.PeerID == card.PeerID()) {
			return nil, ErrIsMe
		}
		b := tx.Bucket(bucketContacts)
		c, err := decode([]byte(dc.Person), b.Get([]byte(dc.Person)))
		if err != nil {
			return nil, err
		}
		db, err := tx.CreateBucketIfNotExists(bucketDevices)
		if err != nil {
			return nil, err
		}
		revs, err := takeRevocations(db, card, dc, c)
		if err != nil {
			return nil, err
		}
		if err := revs.Check(dc); err != nil {
			return nil, err
		}
		dev := ContactDevice{Device: card.PeerID(), Added: now.UTC()}
		i := -1
		for j, d := range c.Devices {
			if d.Device == dev.Device {
				dev, i = d, j
			}
		}
		dev.Name = dc.Device().Name
		dev.Fingerprint = card.Fingerprint()
		dev.Revoked = time.Time{}
		if addrs := card.Addrs(); len(addrs) > 0 {
			dev.Addrs = addrs
		}
		dev.Card = card.Marshal()
		if i < 0 {
			c.Devices = append(c.Devices, dev)
		} else {
			c.Devices[i] = dev
		}
		markRevoked(c, revs)
		if err := put(b, []byte(c.PeerID), c); err != nil {
			return nil, err
		}
		out = c
		return &EvtContactChanged{Change: Updated, Contact: *c.clone()}, nil
	})
	return out, err
}

// TakeRevocations takes the device revocations a card carries, when its
// person is a contact or our own: each is checked against what the store
// knows (see Revocations.Add); refused ones are left out. The contact's
// endpoints that they revoke are marked. It returns how many were new.
func (s *Store) TakeRevocations(card *Card) (int, error) {
	if len(card.Revocations()) == 0 {
		return 0, nil
	}
	person := card.PersonID()
	var n int
	err := s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		db, err := tx.CreateBucketIfNotExists(bucketDevices)
		if err != nil {
			return nil, err
		}
		me, _ := decode(nil, tx.Bucket(bucketMeta).Get(keyMe))
		b := tx.Bucket(bucketContacts)
		c, cerr := decode([]byte(person), b.Get([]byte(person)))
		if cerr != nil && ownPerson(db) != person && (me == nil || me.PeerID != person) {
			return nil, nil // not a person we keep revocations of
		}
		before := len(revocationsIn(db, person).revoked)
		revs, err := takeRevocations(db, card, card.Device(), c)
		if err != nil {
			return nil, err
		}
		n = len(revs.revoked) - before
		if cerr != nil || n == 0 {
			return nil, nil
		}
		markRevoked(c, revs)
		if err := put(b, []byte(c.PeerID), c); err != nil {
			return nil, err
		}
		return &EvtContactChanged{Change: Updated, Contact: *c.clone()}, nil
	})
	return n, err
}

// takeRevocations adds the revocations card carries to those stored of its
// person (noting the grants of dc, which may be nil), stores the new ones,
// and returns the set. Refused revocations are left out and logged.
func takeRevocations(db *bolt.Bucket, card *Card, dc *DeviceChain, c *Contact) (*Revocations, error) {
	person := card.PersonID()
	revs := revocationsIn(db, person)
	noteOwnGrants(db, revs)
	noteContactGrants(c, revs)
	if dc != nil {
		revs.NoteGrant(dc)
	}
	for _, r := range card.Revocations() {
		ok, err := revs.Add(r)
		if err != nil {
			log.Infow("a device revocation is refused", "person", person, "device", r.Device, "error", err)
			continue
		}
		if ok {
			if err := db.Put(revocationKey(r.Person, r.Device), r.raw); err != nil {
				return nil, err
			}
		}
	}
	return revs, nil
}

// noteContactGrants notes the grants of c's devices (c may be nil).
func noteContactGrants(c *Contact, revs *Revocations) {
	if c == nil {
		return
	}
	for _, d := range c.Devices {
		if dc, err := deviceChainOf(d.Card); err == nil {
			revs.NoteGrant(dc)
		}
	}
}

// markRevoked sets or clears Revoked on each device of c as revs says of
// its stored card.
func markRevoked(c *Contact, revs *Revocations) {
	for i, d := range c.Devices {
		c.Devices[i].Revoked = time.Time{}
		dc, err := deviceChainOf(d.Card)
		if err != nil {
			continue
		}
		if errors.Is(revs.Check(dc), ErrDeviceRevoked) {
			// The newest revocation on the chain dates it.
			for _, l := range dc.Links {
				if r, ok := revs.Revoked(l.Device); ok && !r.Time.Before(l.Issued) && r.Time.After(c.Devices[i].Revoked) {
					c.Devices[i].Revoked = r.Time
				}
			}
		}
	}
}

// deviceChainOf reads the device chain of a stored card, without checking
// validity periods (it was checked when stored).
func deviceChainOf(card []byte) (*DeviceChain, error) {
	var chain []*x509.Certificate
	for rest := card; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil || block.Type != pemCertificate {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: stored card", ErrNoCertificate)
	}
	return verifyDeviceChain(chain, time.Time{}, false)
}

// OwnPerson is the person of our own card: the person of its device chain,
// or our own peer ID ("" before SetMe).
func (s *Store) OwnPerson() peer.ID {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	return s.mePerson
}

// personOfMe computes OwnPerson for me.
func personOfMe(me *Contact) peer.ID {
	if me == nil {
		return ""
	}
	if dc, err := deviceChainOf(me.Card); err == nil {
		return dc.Person
	}
	return me.PeerID
}
