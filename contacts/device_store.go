package contacts

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	bolt "go.etcd.io/bbolt"
)

// The devices bucket holds what the node knows of its own person's
// devices, its pending link request, and the device revocations it has
// accepted (its own person's and its contacts').
var (
	bucketDevices = []byte("devices")
	keyLink       = []byte("link")
	prefixDevice  = "dev/" // + device peer ID bytes: a PersonDevice
	prefixRevoked = "rev/" // + person bytes + "/" + device bytes: a signed revocation
)

// ErrDeviceNotFound means no device of the person matches.
var ErrDeviceNotFound = errors.New("contacts: no such device")

// PersonDevice is a device of the node's own person as the node knows it.
type PersonDevice struct {
	// Device is the device's peer ID.
	Device peer.ID `json:"device"`
	// Name is what the device goes by ("" for the first device, which
	// goes by the person's name).
	Name string `json:"name,omitempty"`
	// ApprovedBy is the device that approved it, Issued when ("" and zero
	// for the first device).
	ApprovedBy peer.ID   `json:"approved_by,omitempty"`
	Issued     time.Time `json:"issued,omitzero"`
	// First is true for the person's first device (its ID is the person).
	First bool `json:"first,omitempty"`
	// Revoked is when the device was revoked, if it was (the newest
	// revocation not older than its grant).
	Revoked time.Time `json:"revoked,omitzero"`
	// Chain is the device's grant chain, DER certificates leaf first,
	// when known.
	Chain [][]byte `json:"chain,omitempty"`
}

// DeviceFromLink makes the record of a device of a verified chain.
func DeviceFromLink(dc *DeviceChain, i int) PersonDevice {
	l := dc.Links[i]
	d := PersonDevice{Device: l.Device, Name: l.Name, ApprovedBy: l.ApprovedBy, Issued: l.Issued, First: i == len(dc.Links)-1}
	for _, c := range dc.certs[i:] {
		d.Chain = append(d.Chain, c.Raw)
	}
	return d
}

// PutDevice stores (or replaces, when its grant is not older) a device of
// the node's own person.
func (s *Store) PutDevice(d PersonDevice) error {
	if err := d.Device.Validate(); err != nil {
		return err
	}
	return s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		b, err := tx.CreateBucketIfNotExists(bucketDevices)
		if err != nil {
			return nil, err
		}
		key := append([]byte(prefixDevice), d.Device...)
		if v := b.Get(key); v != nil {
			var old PersonDevice
			if json.Unmarshal(v, &old) == nil && old.Issued.After(d.Issued) {
				return nil, nil // a newer grant is known
			}
		}
		v, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		return nil, b.Put(key, v)
	})
}

// Devices returns the devices of the node's own person that the store
// knows, each with its revocation time if revoked, the first device first,
// then by name.
func (s *Store) Devices() ([]PersonDevice, error) {
	var out []PersonDevice
	revs := map[peer.ID]*Revocation{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		if b == nil {
			return nil
		}
		if err := b.ForEach(func(k, v []byte) error {
			if !bytes.HasPrefix(k, []byte(prefixDevice)) {
				return nil
			}
			var d PersonDevice
			if err := json.Unmarshal(v, &d); err != nil {
				log.Errorw("a stored device cannot be read; it is left out", "error", err)
				return nil
			}
			out = append(out, d)
			return nil
		}); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var person peer.ID
	for _, d := range out {
		if d.First {
			person = d.Device
		}
	}
	if person != "" {
		rs, err := s.Revocations(person)
		if err != nil {
			return nil, err
		}
		for _, r := range rs.All() {
			revs[r.Device] = r
		}
	}
	for i, d := range out {
		if r, ok := revs[d.Device]; ok && !r.Time.Before(d.Issued) {
			out[i].Revoked = r.Time
		}
	}
	slices.SortFunc(out, func(a, b PersonDevice) int {
		switch {
		case a.First != b.First:
			if a.First {
				return -1
			}
			return 1
		}
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(string(a.Device), string(b.Device))
	})
	return out, nil
}

// SetLinkRequest keeps the device's pending link request (nil clears it).
func (s *Store) SetLinkRequest(req *LinkRequest) error {
	return s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		b, err := tx.CreateBucketIfNotExists(bucketDevices)
		if err != nil {
			return nil, err
		}
		if req == nil {
			return nil, b.Delete(keyLink)
		}
		return nil, b.Put(keyLink, req.Marshal())
	})
}

// LinkRequest returns the pending link request, or ErrNoLinkRequest. It
// is returned however old it is: the grant that answers it was checked
// when it was issued.
func (s *Store) LinkRequest() (*LinkRequest, error) {
	var raw []byte
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketDevices); b != nil {
			raw = bytes.Clone(b.Get(keyLink))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, ErrNoLinkRequest
	}
	req, err := parseLinkRequest(raw, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("stored link request: %w", err)
	}
	return req, nil
}

// AddRevocation checks a revocation against the revocations known of its
// person and the grants noted in grants (may be nil), and stores it. It
// returns false, nil when it was known already.
func (s *Store) AddRevocation(r *Revocation, grants ...*DeviceChain) (bool, error) {
	var added bool
	err := s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		b, err := tx.CreateBucketIfNotExists(bucketDevices)
		if err != nil {
			return nil, err
		}
		rs := revocationsIn(b, r.Person)
		for _, dc := range grants {
			rs.NoteGrant(dc)
		}
		noteOwnGrants(b, rs)
		cb := tx.Bucket(bucketContacts)
		c, cerr := decode([]byte(r.Person), cb.Get([]byte(r.Person)))
		if cerr == nil {
			noteContactGrants(c, rs)
		}
		if added, err = rs.Add(r); err != nil || !added {
			return nil, err
		}
		if err := b.Put(revocationKey(r.Person, r.Device), r.raw); err != nil {
			return nil, err
		}
		// A contact's endpoints that it revokes are marked.
		if cerr != nil || len(c.Devices) == 0 {
			return nil, nil
		}
		markRevoked(c, rs)
		if err := put(cb, []byte(c.PeerID), c); err != nil {
			return nil, err
		}
		return &EvtContactChanged{Change: Updated, Contact: *c.clone()}, nil
	})
	return added, err
}

// Revocations returns the revocations known of person.
func (s *Store) Revocations(person peer.ID) (*Revocations, error) {
	rs := NewRevocations(person)
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketDevices); b != nil {
			rs = revocationsIn(b, person)
			noteOwnGrants(b, rs)
		}
		if c, err := decode([]byte(person), tx.Bucket(bucketContacts).Get([]byte(person))); err == nil {
			noteContactGrants(c, rs)
		}
		return nil
	})
	return rs, err
}

// noteOwnGrants notes the grants of the stored devices of our own person in
// rs (nothing when rs is about another person).
func noteOwnGrants(b *bolt.Bucket, rs *Revocations) {
	if ownPerson(b) != rs.person {
		return
	}
	c := b.Cursor()
	for k, v := c.Seek([]byte(prefixDevice)); k != nil && bytes.HasPrefix(k, []byte(prefixDevice)); k, v = c.Next() {
		var d PersonDevice
		if json.Unmarshal(v, &d) != nil || d.Issued.IsZero() {
			continue
		}
		if prev, ok := rs.granted[d.Device]; !ok || d.Issued.After(prev) {
			rs.granted[d.Device] = d.Issued
		}
	}
}

// ownPerson is the person of the stored devices ("" if none is first).
func ownPerson(b *bolt.Bucket) peer.ID {
	c := b.Cursor()
	for k, v := c.Seek([]byte(prefixDevice)); k != nil && bytes.HasPrefix(k, []byte(prefixDevice)); k, v = c.Next() {
		var d PersonDevice
		if json.Unmarshal(v, &d) == nil && d.First {
			return d.Device
		}
	}
	return ""
}

// revocationsIn reads the stored revocations of person, oldest first, as
// they were accepted (they are not checked again: they were when stored,
// and a revocation stays valid after its signer's certificates expire).
func revocationsIn(b *bolt.Bucket, person peer.ID) *Revocations {
	rs := NewRevocations(person)
	prefix := append([]byte(prefixRevoked), person...)
	prefix = append(prefix, '/')
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		r, err := parseRevocation(v, time.Time{})
		if err != nil {
			log.Errorw("a stored device revocation cannot be read; it is left out", "error", err)
			continue
		}
		if r.Person != person {
			continue
		}
		if known, ok := rs.revoked[r.Device]; !ok || r.Time.After(known.Time) {
			rs.revoked[r.Device] = r
		}
	}
	return rs
}

func revocationKey(person, device peer.ID) []byte {
	k := append([]byte(prefixRevoked), person...)
	k = append(k, '/')
	return append(k, device...)
}

// parseDER parses DER certificates.
func parseDER(ders [][]byte) ([]*x509.Certificate, error) {
	out := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
		}
		out[i] = c
	}
	return out, nil
}

// Certificates returns the device's grant chain as certificates.
func (d PersonDevice) Certificates() ([]*x509.Certificate, error) { return parseDER(d.Chain) }

// RevocationsStamp changes whenever the revocations stored of person do; it
// is cheap (no signature is checked), for a cache key.
func (s *Store) RevocationsStamp(person peer.ID) string {
	h := fnv.New64a()
	n := 0
	s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		if b == nil {
			return nil
		}
		prefix := append([]byte(prefixRevoked), person...)
		prefix = append(prefix, '/')
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			h.Write(k)
			h.Write(v)
			n++
		}
		return nil
	})
	return fmt.Sprintf("%d:%x", n, h.Sum64())
}
