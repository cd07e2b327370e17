package apitype

import (
	"encoding/json"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Event is one event of the stream (GET /v1/events): each is sent as an
// "id:" line (Seq), an "event:" line (Type) and a "data:" line holding the
// Event as JSON. A stream cut off by the daemon ends with an "error" event
// whose data is an ErrorBody.
//
// A stream opened with the Last-Event-ID header (or the last_event_id
// parameter) set to an event's Seq resumes after that event: the daemon
// keeps its latest EventHistory events. Events it no longer keeps are
// replaced by one EventsLost event; see GET /v1/events in the OpenAPI
// document.
type Event struct {
	// Seq numbers the daemon's events from 1, without gaps, so that a
	// reader sees whether it missed any; it starts at 1 again when the
	// daemon restarts. An EventsLost event has Seq 0.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Type is one of the Event* names; it says what Data holds.
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// EventHistory is how many of its latest events the daemon keeps for
// streams that resume.
const EventHistory = 1024

// Event types, with the type of their payload.
const (
	// EventsLost: events this stream will not deliver, because the daemon
	// no longer keeps them, or numbered them before it restarted
	// (EventsLostEvent). It has no "id:" line and Seq 0, and is sent
	// whatever ?types= asks for.
	EventsLost = "events.lost"
	// EventContact: a contact was added, changed or removed (ContactEvent).
	EventContact = "contact.changed"
	// EventMe: the node's own contact entry changed (ContactEvent).
	EventMe = "me.changed"
	// EventScope: the node signed in or out (ScopeResponse).
	EventScope = "me.scope.changed"
	// EventMyPresence: the node's presence changed (MyPresenceEvent).
	EventMyPresence = "me.presence.changed"
	// EventMyName: the node's endpoint name changed (MyNameEvent).
	EventMyName = "me.name.changed"
	// EventMyApplication: an application was registered or removed
	// (MyApplicationEvent).
	EventMyApplication = "me.application.changed"
	// EventMyObject: an object was published, replaced or removed
	// (MyObjectEvent).
	EventMyObject = "me.object.changed"
	// EventNear: someone near came, changed or left (NearEvent).
	EventNear = "near.changed"
	// EventPeerName: a watched peer's endpoint name changed
	// (PeerNameEvent).
	EventPeerName = "endpoint.name.changed"
	// EventPeerPresence: a watched peer's presence changed
	// (PeerPresenceEvent).
	EventPeerPresence = "endpoint.presence.changed"
	// EventPeerApplication: a watched peer's application changed
	// (PeerApplicationEvent).
	EventPeerApplication = "endpoint.application.changed"
	// EventPeerObject: a watched peer's object changed (PeerObjectEvent).
	EventPeerObject = "endpoint.object.changed"
	// EventConnection: how the node reaches a peer changed
	// (ConnectionEvent).
	EventConnection = "peer.connection"
	// EventInvitation: an invitation, sent or received, changed
	// (Invitation).
	EventInvitation = "invitation.changed"
	// EventSession: a session changed (Session).
	EventSession = "session.changed"
	// EventMessage: a session message was delivered (Message).
	EventMessage = "session.message"
	// EventLost: a sender's messages could not be recovered and were
	// skipped (LostEvent).
	EventLost = "session.lost"
	// EventHostRequest: a host request was received or answered
	// (HostRequest).
	EventHostRequest = "host-request.changed"
	// EventWatchList: a peer was added to the node's watches or removed
	// from them (WatchListEvent; Windows' WATCHLIST_CHANGED).
	EventWatchList = "watch.list.changed"
	// EventRequestDone: a refresh of a peer's endpoint data, or a new
	// watch's first snapshot, succeeded or failed (RequestDoneEvent;
	// Windows' REQUEST_STATUS_CHANGED).
	EventRequestDone = "watch.request.done"
)

// WatchListEvent is the payload of EventWatchList.
type WatchListEvent struct {
	Peer   peer.ID `json:"peer"`
	Change Change  `json:"change"`
}

// RequestDoneEvent is the payload of EventRequestDone. Request is
// "refresh" (GET /v1/peers/{peer}/endpoint of a peer not watched) or
// "subscribe" (a watch's first snapshot, or its first failure); Full says
// whether the snapshot carried the applications and objects; Error why the
// request failed.
type RequestDoneEvent struct {
	Peer    peer.ID `json:"peer"`
	Request string  `json:"request"`
	OK      bool    `json:"ok"`
	Full    bool    `json:"full"`
	Error   string  `json:"error,omitempty"`
}

// ContactEvent is the payload of EventContact and EventMe.
type ContactEvent struct {
	Change  Change  `json:"change"`
	Contact Contact `json:"contact"`
}

// MyPresenceEvent is the payload of EventMyPresence.
type MyPresenceEvent struct {
	Presence Presence `json:"presence"`
}

// MyNameEvent is the payload of EventMyName.
type MyNameEvent struct {
	Name string `json:"endpoint_name"`
}

// MyApplicationEvent is the payload of EventMyApplication.
type MyApplicationEvent struct {
	Change      Change      `json:"change"`
	Application Application `json:"application"`
}

// MyObjectEvent is the payload of EventMyObject.
type MyObjectEvent struct {
	Change Change `json:"change"`
	Object Object `json:"object"`
}

// NearEvent is the payload of EventNear (Windows' PEOPLE_NEAR_ME_CHANGED).
type NearEvent struct {
	Change Change `json:"change"`
	Person Person `json:"person"`
}

// PeerNameEvent is the payload of EventPeerName.
type PeerNameEvent struct {
	Peer peer.ID `json:"peer"`
	Name string  `json:"endpoint_name"`
}

// PeerPresenceEvent is the payload of EventPeerPresence.
type PeerPresenceEvent struct {
	Peer     peer.ID  `json:"peer"`
	Presence Presence `json:"presence"`
}

// PeerApplicationEvent is the payload of EventPeerApplication.
type PeerApplicationEvent struct {
	Peer        peer.ID     `json:"peer"`
	Change      Change      `json:"change"`
	Application Application `json:"application"`
}

// PeerObjectEvent is the payload of EventPeerObject.
type PeerObjectEvent struct {
	Peer   peer.ID `json:"peer"`
	Change Change  `json:"change"`
	Object Object  `json:"object"`
}

// ConnectionEvent is the payload of EventConnection.
type ConnectionEvent struct {
	Peer peer.ID `json:"peer"`
	// State is "direct", "relayed" or "none".
	State string       `json:"state"`
	Addr  ma.Multiaddr `json:"addr,omitempty"`
}

// LostEvent is the payload of EventLost: Sender's messages From to To
// (inclusive) were skipped.
type LostEvent struct {
	Sender peer.ID `json:"sender"`
	From   uint64  `json:"from"`
	To     uint64  `json:"to"`
}

// EventsLostEvent is the payload of EventsLost: the events numbered From to
// To (inclusive) will not come. Reason is past-history (older than the
// daemon keeps), restarted (the Last-Event-ID is newer than the daemon's
// last event: it restarted, and To is 0), or dropped (the daemon itself
// missed them).
type EventsLostEvent struct {
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Reason string `json:"reason"`
}

// NewEventPayload returns a pointer to a new value of the payload type of
// events of type typ, to decode an Event's Data into; nil for a type this
// version does not know.
func NewEventPayload(typ string) any {
	switch typ {
	case EventsLost:
		return new(EventsLostEvent)
	case EventContact, EventMe:
		return new(ContactEvent)
	case EventScope:
		return new(ScopeResponse)
	case EventMyPresence:
		return new(MyPresenceEvent)
	case EventMyName:
		return new(MyNameEvent)
	case EventMyApplication:
		return new(MyApplicationEvent)
	case EventMyObject:
		return new(MyObjectEvent)
	case EventNear:
		return new(NearEvent)
	case EventPeerName:
		return new(PeerNameEvent)
	case EventPeerPresence:
		return new(PeerPresenceEvent)
	case EventPeerApplication:
		return new(PeerApplicationEvent)
	case EventPeerObject:
		return new(PeerObjectEvent)
	case EventConnection:
		return new(ConnectionEvent)
	case EventInvitation:
		return new(Invitation)
	case EventSession:
		return new(Session)
	case EventMessage:
		return new(Message)
	case EventLost:
		return new(LostEvent)
	case EventHostRequest:
		return new(HostRequest)
	case EventWatchList:
		return new(WatchListEvent)
	case EventRequestDone:
		return new(RequestDoneEvent)
	}
	return nil
}
