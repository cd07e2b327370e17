package apitype

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Info is the answer to GET /v1/id: the node's identity and how it is
// reached.
type Info struct {
	PeerID      peer.ID     `json:"peer_id"`
	DisplayName string      `json:"display_name"`
	Email       string      `json:"email,omitempty"`
	Fingerprint Fingerprint `json:"fingerprint"`
	// Addrs are all the node's addresses, relayed ones included.
	Addrs []ma.Multiaddr `json:"addrs"`
	// Reachability is what the node believes of itself: public (others
	// can dial it), private (behind NAT or a firewall), or unknown.
	Reachability string `json:"reachability"`
	// PublicAddrs, PrivateAddrs and RelayAddrs sort Addrs: addresses that
	// look public, private ones (reachable on the local networks only),
	// and circuits through relays.
	PublicAddrs  []ma.Multiaddr `json:"public_addrs"`
	PrivateAddrs []ma.Multiaddr `json:"private_addrs"`
	RelayAddrs   []ma.Multiaddr `json:"relay_addrs"`
	// HolePunching is set when the node can upgrade relayed connections
	// to direct ones (DCUtR), which needs an address that looks public.
	HolePunching bool `json:"hole_punching"`
	// Relays is the state of the reservations on the static relays.
	Relays []RelayStatus `json:"relays,omitempty"`
	// Protocols are the IDs of the protocols the node answers.
	Protocols []string `json:"protocols"`
	Version   string   `json:"version"`
	// Connections counts the open connections, and Peers the peers they
	// go to.
	Connections int `json:"connections"`
	Peers       int `json:"peers"`
}

// MeRequest is the body of PUT /v1/me, which changes this node's display
// name and e-mail address by re-issuing its self-signed certificate with
// the same key (the peer ID stays, and so does everyone's trust). A nil
// field keeps its value; an empty Email removes the address. The answer is
// the Info, as GET /v1/id gives it.
type MeRequest struct {
	DisplayName *string `json:"display_name,omitempty"`
	Email       *string `json:"email,omitempty"`
}

// RelayStatus is the state of the node's reservation on one static relay.
type RelayStatus struct {
	Relay    peer.ID `json:"relay"`
	Reserved bool    `json:"reserved"`
	// Expires is when the reservation ends (zero without one).
	Expires   time.Time `json:"expires,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// WatcherPermission says whether a contact may watch this node's endpoint
// data.
type WatcherPermission string

// Watcher permissions.
const (
	// WatcherAllowed lets the contact see the presence, applications and
	// objects.
	WatcherAllowed WatcherPermission = "allowed"
	// WatcherBlocked lets the contact see nothing of the endpoint data.
	WatcherBlocked WatcherPermission = "blocked"
)

// Contact is one entry of the contact list (Windows' PEER_CONTACT), without
// its card (see CardResponse).
type Contact struct {
	PeerID peer.ID `json:"peer_id"`
	// Nickname is the user's own short name for the contact; it defaults to
	// the display name, and names the contact in the API's {peer} paths.
	Nickname string `json:"nickname"`
	// DisplayName and Email come from the contact's certificate.
	DisplayName string      `json:"display_name"`
	Email       string      `json:"email,omitempty"`
	Fingerprint Fingerprint `json:"fingerprint"`
	// EndorsedBy names the peer that issued the contact's certificate, for
	// an endorsed card.
	EndorsedBy peer.ID `json:"endorsed_by,omitempty"`
	// Watch: the node follows the contact's endpoint data.
	Watch bool `json:"watch"`
	// WatcherPermission: whether the contact may follow the node's.
	WatcherPermission WatcherPermission `json:"watcher_permission"`
	// Addrs are the contact's last known addresses.
	Addrs []ma.Multiaddr `json:"addrs,omitempty"`
	// Added is when the contact was added; LastSeen when the node last
	// heard from it (zero if never).
	Added    time.Time `json:"added"`
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// ChainLink is one certificate of a card's chain.
type ChainLink struct {
	PeerID      peer.ID     `json:"peer_id"`
	DisplayName string      `json:"display_name"`
	Fingerprint Fingerprint `json:"fingerprint"`
	NotAfter    time.Time   `json:"not_after"`
}

// TrustView is a verdict of the contact list on a card.
type TrustView struct {
	Trusted bool `json:"trusted"`
	// Via is the contact whose certificate the chain reaches, ViaName its
	// nickname; the card's own peer at Depth 0.
	Via     peer.ID `json:"via,omitempty"`
	ViaName string  `json:"via_name,omitempty"`
	Depth   int     `json:"depth"`
	// Reason says why the card is not trusted.
	Reason string `json:"reason,omitempty"`
}

// CardView describes a verified card.
type CardView struct {
	PeerID      peer.ID     `json:"peer_id"`
	DisplayName string      `json:"display_name"`
	Email       string      `json:"email,omitempty"`
	Fingerprint Fingerprint `json:"fingerprint"`
	// Chain is the card's certificates, its own first; more than one means
	// the card is endorsed. It is nil when the card could not be read (see
	// Trust.Reason).
	Chain []ChainLink    `json:"chain"`
	Addrs []ma.Multiaddr `json:"addrs,omitempty"`
	Trust TrustView      `json:"trust"`
}

// CardRequest carries a card (PEM text): the body of POST /v1/cards/check.
type CardRequest struct {
	Card string `json:"card"`
}

// CardResponse carries a card (PEM text) and the peer it describes: the
// answer to GET /v1/card, GET /v1/contacts/{peer}/card and
// POST /v1/cards/endorse.
type CardResponse struct {
	PeerID peer.ID `json:"peer_id"`
	Card   string  `json:"card"`
}

// AddContactRequest is the body of POST /v1/contacts. Nil fields keep the
// defaults (nickname = display name, not watched, allowed to watch us).
type AddContactRequest struct {
	Card              string             `json:"card"`
	Nickname          *string            `json:"nickname,omitempty"`
	Watch             *bool              `json:"watch,omitempty"`
	WatcherPermission *WatcherPermission `json:"watcher_permission,omitempty"`
	// Replace replaces the card of a peer that is a contact already
	// (keeping its settings unless the other fields say otherwise).
	// Without it such a request changes nothing and is refused, 409
	// contact_exists (endorsement_dropped when the card would drop an
	// endorsement that the stored card carries).
	Replace bool `json:"replace,omitempty"`
}

// AddContactResponse is the answer to POST /v1/contacts and
// POST /v1/near/{peer}/contact.
type AddContactResponse struct {
	Contact Contact `json:"contact"`
	// Created is false when the contact existed and its card was replaced
	// (asked with replace).
	Created bool     `json:"created"`
	Card    CardView `json:"card"`
	// DroppedEndorsements lists, when a card was replaced, the
	// endorsements the replaced card carried that the new one does not.
	DroppedEndorsements []Endorser `json:"dropped_endorsements,omitempty"`
	// DeviceAdded is set when the card was another device of a contact's
	// person, which became one of that contact's devices (Created is
	// false, and no card was replaced).
	DeviceAdded bool `json:"device_added,omitempty"`
}

// Endorser is a peer whose certificate vouches for a card.
type Endorser struct {
	PeerID      peer.ID `json:"peer_id"`
	DisplayName string  `json:"display_name"`
}

// UpdateContactRequest is the body of PATCH /v1/contacts/{peer}; nil fields
// are left as they are. The answer is the Contact.
type UpdateContactRequest struct {
	Nickname          *string            `json:"nickname,omitempty"`
	Watch             *bool              `json:"watch,omitempty"`
	WatcherPermission *WatcherPermission `json:"watcher_permission,omitempty"`
}

// ContactDetail is the answer to GET /v1/contacts/{peer}.
type ContactDetail struct {
	Contact Contact `json:"contact"`
	// Card describes the stored card; a card that no longer verifies (it
	// expired) has only its PeerID and Trust.Reason set.
	Card CardView `json:"card"`
	// Presence is the contact's: the most available of its unrevoked
	// endpoints'.
	Presence Presence `json:"presence"`
	// Endpoints are the person's devices that are this contact, the
	// first device (the contact's peer ID) first; a single-device contact
	// has one.
	Endpoints []ContactEndpoint `json:"endpoints"`
}

// ContactEndpoint is one device of a contact's person, as the node sees it
// now.
type ContactEndpoint struct {
	PeerID peer.ID `json:"peer_id"`
	// First is set for the person's first device, the contact's peer ID.
	First bool `json:"first"`
	// Device is the name the device goes by ("" for the first device).
	Device string `json:"device,omitempty"`
	// Presence: from the device's watch, from People Near Me, or offline
	// (online when connected and nothing else is known).
	Presence  Presence       `json:"presence"`
	Connected bool           `json:"connected"`
	Addrs     []ma.Multiaddr `json:"addrs,omitempty"`
	LastSeen  time.Time      `json:"last_seen,omitzero"`
	// Revoked is when the person revoked the device: it is refused.
	Revoked time.Time `json:"revoked,omitzero"`
}

// EndorseRequest is the body of POST /v1/cards/endorse.
type EndorseRequest struct {
	Card string `json:"card"`
	// Validity is a Go duration ("8760h"); empty means the default.
	Validity string `json:"validity,omitempty"`
}

// LocateResponse is the answer to POST /v1/contacts/{peer}/locate.
type LocateResponse struct {
	PeerID peer.ID        `json:"peer_id"`
	Addrs  []ma.Multiaddr `json:"addrs"`
}

// PingRequest is the body of POST /v1/ping.
type PingRequest struct {
	// Target is a contact, a peer ID, or a multiaddr ending in /p2p/ID.
	Target string `json:"target"`
	// Count is the number of round trips, 1 to 100 (default 3).
	Count int `json:"count,omitempty"`
	// Interval is a Go duration between round trips (default 200ms).
	Interval string `json:"interval,omitempty"`
}

// PingResponse is the answer to POST /v1/ping.
type PingResponse struct {
	Peer    peer.ID      `json:"peer"`
	Results []PingResult `json:"results"`
}

// PingResult is one round trip of a ping.
type PingResult struct {
	Seq  int           `json:"seq"`
	RTT  time.Duration `json:"rtt_ns"`
	Conn ConnInfo      `json:"conn"`
	// Error is set when this round trip failed.
	Error string `json:"error,omitempty"`
}

// ConnInfo describes a connection to a peer.
type ConnInfo struct {
	Addr    ma.Multiaddr `json:"addr"`
	Relayed bool         `json:"relayed"`
}
