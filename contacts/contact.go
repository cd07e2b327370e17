package contacts

import (
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// WatcherPermission says whether a contact may subscribe to our endpoint
// data (Windows' PEER_WATCH_PERMISSION). The zero value is Allowed: adding a
// contact is an act of trust.
type WatcherPermission int

const (
	// Allowed lets the contact see our presence, applications and objects.
	Allowed WatcherPermission = iota
	// Blocked lets the contact see nothing of our endpoint data.
	Blocked
)

func (p WatcherPermission) String() string {
	switch p {
	case Allowed:
		return "allowed"
	case Blocked:
		return "blocked"
	}
	return fmt.Sprintf("WatcherPermission(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p WatcherPermission) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *WatcherPermission) UnmarshalText(b []byte) error {
	switch string(b) {
	case "allowed":
		*p = Allowed
	case "blocked":
		*p = Blocked
	default:
		return fmt.Errorf("contacts: unknown watcher permission %q", b)
	}
	return nil
}

// Contact is one entry of the contact list (Windows' PEER_CONTACT). Values
// are copies: changing one changes nothing in the store; use Store.Update.
type Contact struct {
	// PeerID is the key: at most one contact per peer.
	PeerID peer.ID `json:"peer_id"`
	// Nickname is the user's own short name for the contact; it defaults to
	// the display name and is how the CLI's PEER arguments find a contact.
	Nickname string `json:"nickname"`
	// DisplayName and Email come from the contact's certificate.
	DisplayName string `json:"display_name"`
	Email       string `json:"email,omitempty"`
	// Fingerprint is the SHA-256 fingerprint of the contact's certificate.
	Fingerprint Fingerprint `json:"fingerprint"`
	// Endorsed is true when the card's certificate was issued by another
	// peer; EndorsedBy names that issuer.
	EndorsedBy peer.ID `json:"endorsed_by,omitempty"`
	// Watch: we subscribe to the contact's endpoint data.
	Watch bool `json:"watch"`
	// WatcherPermission: whether the contact may subscribe to ours.
	WatcherPermission WatcherPermission `json:"watcher_permission"`
	// Addrs are the contact's last known addresses.
	Addrs []ma.Multiaddr `json:"addrs,omitempty"`
	// Card is the contact's card as last received (PEM). It is left out of
	// the JSON form, which is the contact's public view.
	Card []byte `json:"-"`
	// Added is when the contact was added; LastSeen when we last heard
	// from it (zero if never).
	Added    time.Time `json:"added"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Devices are the person's other devices that were accepted as this
	// same contact (see Store.AttachDevice): its endpoints besides PeerID,
	// which is the person ID. Empty for a single-device contact. Not in the
	// JSON view yet (the API's Contact mirrors it); the store keeps them.
	Devices []ContactDevice `json:"-"`
}

// ContactDevice is another device of a contact's person: an endpoint of
// the contact.
type ContactDevice struct {
	// Device is the device's peer ID.
	Device peer.ID `json:"device"`
	// Name is what the device goes by (from its grant).
	Name string `json:"name,omitempty"`
	// Fingerprint is the fingerprint of the device's certificate (its
	// grant).
	Fingerprint Fingerprint `json:"fingerprint"`
	// Addrs are the device's last known addresses.
	Addrs []ma.Multiaddr `json:"addrs,omitempty"`
	// Added is when it was attached; LastSeen when last heard from.
	Added    time.Time `json:"added"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Revoked is when the person revoked it, if it did: it is kept, and
	// refused.
	Revoked time.Time `json:"revoked,omitzero"`
	// Card is the device's card as last received (PEM); not in the JSON
	// view (the store keeps it beside).
	Card []byte `json:"-"`
}

// Device returns the contact's endpoint device, if it is one.
func (ct *Contact) Device(id peer.ID) (ContactDevice, bool) {
	for _, d := range ct.Devices {
		if d.Device == id {
			return d, true
		}
	}
	return ContactDevice{}, false
}

// clone returns a deep copy of c.
func (c *Contact) clone() *Contact {
	d := *c
	d.Addrs = slices.Clone(c.Addrs)
	d.Card = slices.Clone(c.Card)
	if c.Devices != nil {
		d.Devices = make([]ContactDevice, len(c.Devices))
		for i, e := range c.Devices {
			e.Addrs = slices.Clone(e.Addrs)
			e.Card = slices.Clone(e.Card)
			d.Devices[i] = e
		}
	}
	return &d
}

// ContactFromCard makes a new contact (not yet stored) from a checked card.
func ContactFromCard(c *Card, now time.Time) *Contact {
	p := c.Profile()
	ct := &Contact{
		PeerID:      c.PeerID(),
		Nickname:    p.DisplayName,
		DisplayName: p.DisplayName,
		Email:       p.Email,
		Added:       now.UTC(),
	}
	ct.SetCard(c)
	return ct
}

// SetCard replaces the contact's card and the fields derived from it, keeping
// the user's own fields (nickname, watch, permission).
func (ct *Contact) SetCard(c *Card) {
	p := c.Profile()
	ct.DisplayName, ct.Email = p.DisplayName, p.Email
	ct.Fingerprint = c.Fingerprint()
	ct.EndorsedBy = ""
	if chain := c.Chain(); len(chain) > 1 {
		ct.EndorsedBy, _ = KeyPeerID(chain[1])
	}
	if addrs := c.Addrs(); len(addrs) > 0 {
		ct.Addrs = addrs
	}
	ct.Card = c.Marshal()
}

// ChangeType says what happened to a contact (Windows' PEER_CHANGE_TYPE).
type ChangeType int

// Change types.
const (
	Added ChangeType = iota
	Deleted
	Updated
)

func (t ChangeType) String() string {
	switch t {
	case Added:
		return "added"
	case Deleted:
		return "deleted"
	case Updated:
		return "updated"
	}
	return fmt.Sprintf("ChangeType(%d)", int(t))
}

// MarshalText implements encoding.TextMarshaler.
func (t ChangeType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// EvtContactChanged is emitted on the store's event bus after every committed
// change of the contact list or of the "me" contact.
type EvtContactChanged struct {
	Change  ChangeType `json:"change"`
	Contact Contact    `json:"contact"`
	// Me is true when the change is to our own contact.
	Me bool `json:"me,omitempty"`
}
