package apitype

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Scope is where a node is signed in (Windows' PEER_SIGNIN_FLAGS): nearme
// runs People Near Me on the subnet; internet serves contacts wherever they
// are.
type Scope string

// Scopes. The daemon also takes "near" for nearme, and ignores case and
// separators ("Near-Me").
const (
	ScopeNone     Scope = "none"
	ScopeNearMe   Scope = "nearme"
	ScopeInternet Scope = "internet"
	ScopeAll      Scope = "all"
)

// ScopeRequest is the body of POST /v1/signin and /v1/signout.
type ScopeRequest struct {
	Scope Scope `json:"scope"`
}

// ScopeResponse tells where the node is signed in: the answer to
// GET /v1/scope, POST /v1/signin and POST /v1/signout.
type ScopeResponse struct {
	Scope Scope `json:"scope"`
}

// PresenceStatus is a presence status (Windows' PEER_PRESENCE_STATUS).
type PresenceStatus string

// Presence statuses. The daemon also takes them in any case and without
// separators ("OnThePhone").
const (
	StatusOffline     PresenceStatus = "offline"
	StatusOutToLunch  PresenceStatus = "out-to-lunch"
	StatusAway        PresenceStatus = "away"
	StatusBeRightBack PresenceStatus = "be-right-back"
	StatusIdle        PresenceStatus = "idle"
	StatusBusy        PresenceStatus = "busy"
	StatusOnThePhone  PresenceStatus = "on-the-phone"
	StatusOnline      PresenceStatus = "online"
)

// Presence is a status and a text of at most 255 characters (Windows'
// PEER_PRESENCE_INFO). It is also the body of PUT /v1/me/presence, where a
// missing status means offline.
type Presence struct {
	Status PresenceStatus `json:"status"`
	Text   string         `json:"text,omitempty"`
}

// Person is someone near as they announce themselves on the subnet: the
// payload of EventNear.
type Person struct {
	PeerID       peer.ID        `json:"peer_id"`
	DisplayName  string         `json:"display_name"`
	Email        string         `json:"email,omitempty"`
	EndpointName string         `json:"endpoint_name"`
	Presence     Presence       `json:"presence"`
	Fingerprint  Fingerprint    `json:"fingerprint"`
	Addrs        []ma.Multiaddr `json:"addrs,omitempty"`
	// Since is when the person appeared; LastSeen when they last announced
	// themselves.
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
}

// PersonNear is an entry of GET /v1/near: a person near, and whether they
// are a contact.
type PersonNear struct {
	Person
	Contact bool `json:"contact"`
	// PersonID is set when the peer is a device of a contact's person
	// who has several: the person's ID (the contact's peer ID); Device is
	// the device's name ("" for the person's first device).
	PersonID peer.ID `json:"person,omitempty"`
	Device   string  `json:"device,omitempty"`
}

// AddNearRequest is the body of POST /v1/near/{peer}/contact, which adds a
// person near as a contact with the card they introduced themselves with.
// Nil fields keep the defaults, as in AddContactRequest.
type AddNearRequest struct {
	Nickname          *string            `json:"nickname,omitempty"`
	Watch             *bool              `json:"watch,omitempty"`
	WatcherPermission *WatcherPermission `json:"watcher_permission,omitempty"`
	// Replace replaces the card of a person near who is a contact already,
	// as in AddContactRequest.
	Replace bool `json:"replace,omitempty"`
}

// UserPictureID is the ID of the predefined object that holds the user's
// picture (Windows' PEER_COLLAB_OBJECTID_USER_PICTURE): publish it with
// PUT /v1/me/objects/{id}, read a peer's with GET /v1/peers/{peer}/endpoint.
const UserPictureID = "{DD15F41F-FC4E-4922-B035-4C06A754D01D}"

// Application is a registered application as others see it.
type Application struct {
	// ID is 1 to 64 letters, digits, '.', '-', '_', '{' or '}'.
	ID          string `json:"id"`
	Description string `json:"description"`
	// Data is at most 16 KiB.
	Data []byte `json:"data,omitempty"`
}

// RegisteredApp is an application registered on this node: what others see
// of it, and what stays here. It is the body (and answer) of
// POST /v1/me/apps.
type RegisteredApp struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Data        []byte `json:"data,omitempty"`
	// Launch is the command (run with sh -c) that an accepted invitation to
	// the application runs; it is never sent to anyone.
	Launch string `json:"launch,omitempty"`
	// AutoAccept accepts invitations to the application from trusted
	// contacts without asking the user.
	AutoAccept bool `json:"auto_accept,omitempty"`
	// AutoHost accepts requests to host a session for the application
	// without asking the user.
	AutoHost bool `json:"auto_host,omitempty"`
}

// Object is a published object: at most 16 KiB of data under an ID.
type Object struct {
	ID   string `json:"id"`
	Data []byte `json:"data"`
}

// MyEndpoint is the node's own endpoint data, with the launch commands of
// its applications: the answer to GET /v1/me/endpoint, PUT /v1/me/presence
// and PUT /v1/me/name.
type MyEndpoint struct {
	Name         string          `json:"endpoint_name"`
	Presence     Presence        `json:"presence"`
	Scope        Scope           `json:"scope"`
	Applications []RegisteredApp `json:"applications"`
	Objects      []Object        `json:"objects"`
}

// NameRequest is the body of PUT /v1/me/name.
type NameRequest struct {
	Name string `json:"endpoint_name"`
}

// ObjectRequest is the body of PUT /v1/me/objects/{id}.
type ObjectRequest struct {
	Data []byte `json:"data"`
}

// WatchState is how a watch of a peer's endpoint data stands.
type WatchState string

// Watch states.
const (
	WatchConnecting WatchState = "connecting"
	WatchFollowing  WatchState = "following"
	WatchFailing    WatchState = "failing"
	// WatchRefreshed: the data was fetched once and is not followed.
	WatchRefreshed WatchState = "refreshed"
)

// PeerEndpoint is a peer's endpoint data as this node knows it: the answer
// to GET /v1/peers/{peer}/endpoint and POST /v1/peers/{peer}/watch, and an
// entry of GET /v1/watching.
type PeerEndpoint struct {
	Peer     peer.ID    `json:"peer"`
	Watching bool       `json:"watching"`
	State    WatchState `json:"state"`
	// Error is why the watch is failing.
	Error   string       `json:"error,omitempty"`
	Updated time.Time    `json:"updated,omitzero"`
	Data    EndpointData `json:"data"`
}

// EndpointData is a peer's endpoint data at one version.
type EndpointData struct {
	// Epoch changes each time the peer starts; Version grows by one with
	// every change of its data within an epoch.
	Epoch    uint64   `json:"epoch"`
	Version  uint64   `json:"version"`
	Name     string   `json:"endpoint_name"`
	Presence Presence `json:"presence"`
	// Full is set when the peer shows this node its applications and
	// objects too (its trusted contacts); otherwise they are left out.
	Full         bool          `json:"full"`
	Applications []Application `json:"applications,omitempty"`
	Objects      []Object      `json:"objects,omitempty"`
}
