package localapi

import (
	"errors"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// Info is the answer to GET /v1/id.
type Info = node.Info

// Contact is a contact as the API shows it (no card bytes; see CardResponse).
type Contact = contacts.Contact

// ChainLink is one certificate of a card's chain.
type ChainLink struct {
	PeerID      peer.ID              `json:"peer_id"`
	DisplayName string               `json:"display_name"`
	Fingerprint contacts.Fingerprint `json:"fingerprint"`
	NotAfter    time.Time            `json:"not_after"`
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
	PeerID      peer.ID              `json:"peer_id"`
	DisplayName string               `json:"display_name"`
	Email       string               `json:"email,omitempty"`
	Fingerprint contacts.Fingerprint `json:"fingerprint"`
	// Chain is the card's certificates, its own first; more than one means
	// the card is endorsed.
	Chain []ChainLink    `json:"chain"`
	Addrs []ma.Multiaddr `json:"addrs,omitempty"`
	Trust TrustView      `json:"trust"`
}

// CardRequest carries a card (PEM text).
type CardRequest struct {
	Card string `json:"card"`
}

// CardResponse carries a card (PEM text) and the peer it describes.
type CardResponse struct {
	PeerID peer.ID `json:"peer_id"`
	Card   string  `json:"card"`
}

// AddContactRequest is the body of POST /v1/contacts. Nil fields keep the
// defaults (nickname = display name, not watched, allowed to watch us).
type AddContactRequest struct {
	Card              string                      `json:"card"`
	Nickname          *string                     `json:"nickname,omitempty"`
	Watch             *bool                       `json:"watch,omitempty"`
	WatcherPermission *contacts.WatcherPermission `json:"watcher_permission,omitempty"`
}

// AddContactResponse is the answer to POST /v1/contacts.
type AddContactResponse struct {
	Contact Contact `json:"contact"`
	// Created is false when the contact existed and its card was replaced.
	Created bool     `json:"created"`
	Card    CardView `json:"card"`
}

// UpdateContactRequest is the body of PATCH /v1/contacts/{peer}.
type UpdateContactRequest struct {
	Nickname          *string                     `json:"nickname,omitempty"`
	Watch             *bool                       `json:"watch,omitempty"`
	WatcherPermission *contacts.WatcherPermission `json:"watcher_permission,omitempty"`
}

// ContactDetail is the answer to GET /v1/contacts/{peer}.
type ContactDetail struct {
	Contact Contact  `json:"contact"`
	Card    CardView `json:"card"`
}

// EndorseRequest is the body of POST /v1/cards/endorse.
type EndorseRequest struct {
	Card string `json:"card"`
	// Validity is a Go duration ("8760h"); empty means the default.
	Validity string `json:"validity,omitempty"`
}

// cardView describes a checked card.
func cardView(chk node.CardCheck, nickname func(peer.ID) string) CardView {
	c := chk.Card
	p := c.Profile()
	v := CardView{PeerID: c.PeerID(), DisplayName: p.DisplayName, Email: p.Email, Fingerprint: c.Fingerprint(), Addrs: c.Addrs()}
	for _, cert := range c.Chain() {
		id, _ := contacts.KeyPeerID(cert)
		v.Chain = append(v.Chain, ChainLink{PeerID: id, DisplayName: cert.Subject.CommonName, Fingerprint: contacts.CertFingerprint(cert), NotAfter: cert.NotAfter})
	}
	v.Trust = TrustView{Trusted: chk.Trust.Trusted, Via: chk.Trust.Via, Depth: chk.Trust.Depth}
	if chk.Trust.Via != "" {
		v.Trust.ViaName = nickname(chk.Trust.Via)
	}
	if chk.TrustErr != nil {
		v.Trust.Reason = toError(chk.TrustErr).Message
	}
	return v
}

var errEmptyCard = errors.New("localapi: the request carries no card")

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
	Peer    peer.ID           `json:"peer"`
	Results []node.PingResult `json:"results"`
}

// ScopeRequest is the body of POST /v1/signin and /v1/signout.
type ScopeRequest struct {
	Scope node.Scope `json:"scope"`
}

// ScopeResponse tells where the node is signed in.
type ScopeResponse struct {
	Scope node.Scope `json:"scope"`
}

// Person is someone near.
type Person struct {
	near.Person
	// Contact is true when the person is in the contact list.
	Contact bool `json:"contact"`
}

// MyEndpoint is the node's own endpoint data, with the launch commands of
// its applications.
type MyEndpoint struct {
	Name         string                  `json:"endpoint_name"`
	Presence     endpoint.Presence       `json:"presence"`
	Scope        node.Scope              `json:"scope"`
	Applications []publish.RegisteredApp `json:"applications"`
	Objects      []endpoint.Object       `json:"objects"`
}

// NameRequest is the body of PUT /v1/me/name.
type NameRequest struct {
	Name string `json:"endpoint_name"`
}

// ObjectRequest is the body of PUT /v1/me/objects/{id}.
type ObjectRequest struct {
	Data []byte `json:"data"`
}

// PeerEndpoint is a peer's endpoint data as this node knows it.
type PeerEndpoint = watch.Entry

// AddNearRequest is the body of POST /v1/near/{peer}/contact.
type AddNearRequest struct {
	Nickname          *string                     `json:"nickname,omitempty"`
	Watch             *bool                       `json:"watch,omitempty"`
	WatcherPermission *contacts.WatcherPermission `json:"watcher_permission,omitempty"`
}

// InviteRequest is the body of POST /v1/invitations.
type InviteRequest struct {
	// Peers are contacts, people near, peer IDs or /p2p/ multiaddrs.
	Peers   []string `json:"peers"`
	AppID   string   `json:"application_id"`
	Message string   `json:"message,omitempty"`
	Data    []byte   `json:"data,omitempty"`
	// Timeout is a Go duration (default 5m, at most 24h).
	Timeout   string `json:"timeout,omitempty"`
	SessionID string `json:"session_id,omitempty"`
}

// InvitationList is a list of invitations and their tally.
type InvitationList struct {
	Batch       string               `json:"batch,omitempty"`
	Invitations []invitations.Record `json:"invitations"`
	Tally       invitations.Tally    `json:"tally"`
}

// InvitationDetail is one invitation with the card of its inviter (Windows'
// PEER_APP_LAUNCH_INFO for a received one).
type InvitationDetail struct {
	Invitation invitations.Record `json:"invitation"`
	// Inviter describes the inviter's card and the trust in it (received
	// invitations only).
	Inviter *CardView `json:"inviter,omitempty"`
	// InviterCard is the inviter's card (PEM).
	InviterCard string `json:"inviter_card,omitempty"`
	// Contact is the inviter's contact entry, if a contact.
	Contact *Contact `json:"contact,omitempty"`
}

// PolicyBody is the body and answer of /v1/invitations/policy.
type PolicyBody struct {
	Policy invitations.Policy `json:"policy"`
}

// BatchRequest names a batch of invitations.
type BatchRequest struct {
	Batch string `json:"batch"`
}

// SessionCreateRequest is the body of POST /v1/sessions.
type SessionCreateRequest struct {
	AppID string `json:"application_id"`
}

// SessionInviteRequest is the body of POST /v1/sessions/{id}/invite.
type SessionInviteRequest struct {
	Peers   []string `json:"peers"`
	Message string   `json:"message,omitempty"`
	Timeout string   `json:"timeout,omitempty"`
}

// SessionInviteResponse is the answer to POST /v1/sessions/{id}/invite.
type SessionInviteResponse struct {
	Session     sessions.View        `json:"session"`
	Invitations []invitations.Record `json:"invitations"`
}

// SessionSendRequest is the body of POST /v1/sessions/{id}/send.
type SessionSendRequest struct {
	Data []byte `json:"data"`
}

// PeerRequest names a peer.
type PeerRequest struct {
	Peer string `json:"peer"`
}

// HostRequestBody is the body of POST /v1/host-requests.
type HostRequestBody struct {
	Peer    string `json:"peer"`
	AppID   string `json:"application_id"`
	Message string `json:"message,omitempty"`
}

// HostRequestResult is the answer to POST /v1/host-requests: the peer
// accepted at once (Session set) or will decide later (Pending).
type HostRequestResult struct {
	Peer    peer.ID `json:"peer"`
	Pending bool    `json:"pending"`
	Session string  `json:"session,omitempty"`
}
