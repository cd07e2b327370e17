package watch

import (
	"bytes"
	"cmp"
	"errors"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

// Event types and their payloads.
const (
	EvtName        = "endpoint.name.changed"
	EvtPresence    = "endpoint.presence.changed"
	EvtApplication = "endpoint.application.changed"
	EvtObject      = "endpoint.object.changed"
	// EvtWatchList: a peer was added to the watches or removed from them
	// (Windows' WATCHLIST_CHANGED).
	EvtWatchList = "watch.list.changed"
	// EvtRequestDone: a refresh or a new watch's first snapshot finished,
	// or failed (Windows' REQUEST_STATUS_CHANGED).
	EvtRequestDone = "watch.request.done"
)

// WatchListEvent is the payload of EvtWatchList.
type WatchListEvent struct {
	Peer   peer.ID             `json:"peer"`
	Change contacts.ChangeType `json:"change"`
}

// Requests that EvtRequestDone reports.
const (
	RequestRefresh   = "refresh"
	RequestSubscribe = "subscribe"
)

// RequestDoneEvent is the payload of EvtRequestDone. Error is empty when the
// request succeeded.
type RequestDoneEvent struct {
	Peer    peer.ID `json:"peer"`
	Request string  `json:"request"`
	OK      bool    `json:"ok"`
	Full    bool    `json:"full"`
	Error   string  `json:"error,omitempty"`
}

// Event is a change of a watched peer's endpoint data, ready for the hub.
type Event struct {
	Type string
	Data any
}

// NameEvent is the payload of EvtName.
type NameEvent struct {
	Peer peer.ID `json:"peer"`
	Name string  `json:"endpoint_name"`
}

// PresenceEvent is the payload of EvtPresence.
type PresenceEvent struct {
	Peer     peer.ID           `json:"peer"`
	Presence endpoint.Presence `json:"presence"`
}

// ApplicationEvent is the payload of EvtApplication.
type ApplicationEvent struct {
	Peer        peer.ID              `json:"peer"`
	Change      contacts.ChangeType  `json:"change"`
	Application endpoint.Application `json:"application"`
}

// ObjectEvent is the payload of EvtObject.
type ObjectEvent struct {
	Peer   peer.ID             `json:"peer"`
	Change contacts.ChangeType `json:"change"`
	Object endpoint.Object     `json:"object"`
}

// applyChange applies a change to snap (kept sorted by ID) and returns the
// event it makes, or an error when the change is invalid.
func applyChange(p peer.ID, snap *endpoint.Snapshot, c *pb.Change) (Event, error) {
	switch c := c.GetChange().(type) {
	case *pb.Change_EndpointName:
		if err := endpoint.CheckName(c.EndpointName); err != nil {
			return Event{}, err
		}
		snap.Name = c.EndpointName
		return Event{EvtName, NameEvent{p, c.EndpointName}}, nil
	case *pb.Change_Presence:
		pres, err := endpoint.PresenceFromPB(c.Presence)
		if err != nil {
			return Event{}, err
		}
		snap.Presence = pres
		return Event{EvtPresence, PresenceEvent{p, pres}}, nil
	case *pb.Change_ApplicationSet:
		a, err := endpoint.ApplicationFromPB(c.ApplicationSet)
		if err != nil {
			return Event{}, err
		}
		change, err := upsert(&snap.Applications, a, func(a endpoint.Application) string { return a.ID }, endpoint.MaxApplications)
		if err != nil {
			return Event{}, err
		}
		return Event{EvtApplication, ApplicationEvent{p, change, a}}, nil
	case *pb.Change_ApplicationRemoved:
		if err := endpoint.CheckID(c.ApplicationRemoved); err != nil {
			return Event{}, err
		}
		a, ok := remove(&snap.Applications, c.ApplicationRemoved, func(a endpoint.Application) string { return a.ID })
		if !ok {
			a = endpoint.Application{ID: c.ApplicationRemoved}
		}
		return Event{EvtApplication, ApplicationEvent{p, contacts.Deleted, a}}, nil
	case *pb.Change_ObjectSet:
		o, err := endpoint.ObjectFromPB(c.ObjectSet)
		if err != nil {
			return Event{}, err
		}
		change, err := upsert(&snap.Objects, o, func(o endpoint.Object) string { return o.ID }, endpoint.MaxObjects)
		if err != nil {
			return Event{}, err
		}
		return Event{EvtObject, ObjectEvent{p, change, o}}, nil
	case *pb.Change_ObjectRemoved:
		if err := endpoint.CheckID(c.ObjectRemoved); err != nil {
			return Event{}, err
		}
		o, ok := remove(&snap.Objects, c.ObjectRemoved, func(o endpoint.Object) string { return o.ID })
		if !ok {
			o = endpoint.Object{ID: c.ObjectRemoved}
		}
		return Event{EvtObject, ObjectEvent{p, contacts.Deleted, o}}, nil
	}
	return Event{}, errEmptyChange
}

// errTooMany means a change would take a host past the limits of
// endpoint data (64 applications, 128 objects).
var errTooMany = errors.New("watch: the host's change goes beyond the limits of endpoint data")

// upsert puts v into list (sorted by id), which may hold at most max.
func upsert[T any](list *[]T, v T, id func(T) string, max int) (contacts.ChangeType, error) {
	i, found := slices.BinarySearchFunc(*list, id(v), func(e T, k string) int { return cmp.Compare(id(e), k) })
	if found {
		(*list)[i] = v
		return contacts.Updated, nil
	}
	if len(*list) >= max {
		return 0, errTooMany
	}
	*list = slices.Insert(*list, i, v)
	return contacts.Added, nil
}

func remove[T any](list *[]T, key string, id func(T) string) (T, bool) {
	i, found := slices.BinarySearchFunc(*list, key, func(e T, k string) int { return cmp.Compare(id(e), k) })
	var zero T
	if !found {
		return zero, false
	}
	v := (*list)[i]
	*list = slices.Delete(*list, i, i+1)
	return v, true
}

// diff lists the events that turn old into new (both sorted by ID).
func diff(p peer.ID, old, new *endpoint.Snapshot) []Event {
	var out []Event
	if old.Name != new.Name {
		out = append(out, Event{EvtName, NameEvent{p, new.Name}})
	}
	if old.Presence != new.Presence {
		out = append(out, Event{EvtPresence, PresenceEvent{p, new.Presence}})
	}
	for _, c := range diffLists(old.Applications, new.Applications, func(a endpoint.Application) string { return a.ID },
		func(a, b endpoint.Application) bool {
			return a.Description == b.Description && bytes.Equal(a.Data, b.Data)
		}) {
		out = append(out, Event{EvtApplication, ApplicationEvent{p, c.change, c.v}})
	}
	for _, c := range diffLists(old.Objects, new.Objects, func(o endpoint.Object) string { return o.ID },
		func(a, b endpoint.Object) bool { return bytes.Equal(a.Data, b.Data) }) {
		out = append(out, Event{EvtObject, ObjectEvent{p, c.change, c.v}})
	}
	return out
}

type listChange[T any] struct {
	change contacts.ChangeType
	v      T
}

func diffLists[T any](old, new []T, id func(T) string, same func(a, b T) bool) []listChange[T] {
	var out []listChange[T]
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && id(old[i]) < id(new[j])):
			out = append(out, listChange[T]{contacts.Deleted, old[i]})
			i++
		case i == len(old) || id(new[j]) < id(old[i]):
			out = append(out, listChange[T]{contacts.Added, new[j]})
			j++
		default:
			if !same(old[i], new[j]) {
				out = append(out, listChange[T]{contacts.Updated, new[j]})
			}
			i++
			j++
		}
	}
	return out
}
