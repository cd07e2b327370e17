package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// A contact is a person with endpoints (see contacts/device.go): the
// contact's own peer ID, the person's first device, and the devices of the
// person accepted as the same contact (Contact.Devices).

// ContactEndpoint is one endpoint of a contact as the node sees it now.
type ContactEndpoint struct {
	// Peer is the device's peer ID; First is set for the person's first
	// device (the contact's own peer ID).
	Peer  peer.ID `json:"peer_id"`
	First bool    `json:"first"`
	// Device is the name the device goes by ("" for the first device).
	Device string `json:"device,omitempty"`
	// Presence is what the node knows of the device's presence: from its
	// watch, from People Near Me, or Offline.
	Presence endpoint.Presence `json:"presence"`
	// Connected is set while the node is connected to the device.
	Connected bool `json:"connected"`
	// Addrs are the device's last known addresses.
	Addrs    []ma.Multiaddr `json:"addrs,omitempty"`
	LastSeen time.Time      `json:"last_seen,omitzero"`
	// Revoked is when the person revoked the device, if it did.
	Revoked time.Time `json:"revoked,omitzero"`
}

// ContactEndpoints returns the endpoints of contact c, its first device
// first, with their presence now, and the contact's presence: the most
// available of its unrevoked endpoints'.
func (n *Node) ContactEndpoints(c *contacts.Contact) ([]ContactEndpoint, endpoint.Presence) {
	out := []ContactEndpoint{{Peer: c.PeerID, First: true, Addrs: c.Addrs, LastSeen: c.LastSeen}}
	for _, d := range c.Devices {
		out = append(out, ContactEndpoint{Peer: d.Device, Device: d.Name, Addrs: d.Addrs, LastSeen: d.LastSeen, Revoked: d.Revoked})
	}
	best := endpoint.Presence{Status: endpoint.Offline}
	for i := range out {
		e := &out[i]
		e.Connected = n.connected(e.Peer)
		e.Presence = n.endpointPresence(e.Peer, e.Connected)
		if e.Revoked.IsZero() && e.Presence.Status > best.Status {
			best = e.Presence
		}
	}
	return out, best
}

// endpointPresence is what the node knows of p's presence now: its watch's
// while following it, its announcement near, else Offline (Online when
// connected and nothing else is known).
func (n *Node) endpointPresence(p peer.ID, connected bool) endpoint.Presence {
	if e, ok := n.watch.Get(p); ok && e.Watching && e.State == watch.Following {
		return e.Data.Presence
	}
	if person, ok := n.near.Get(p); ok {
		return person.Presence
	}
	if connected {
		return endpoint.Presence{Status: endpoint.Online}
	}
	return endpoint.Presence{Status: endpoint.Offline}
}

// endpointTarget is a contact and, when the query names one device of it
// ("Bob/laptop", or a device's peer ID), that device.
type endpointTarget struct {
	Contact *contacts.Contact
	Device  peer.ID // "" for every endpoint
}

// resolveEndpoint finds what a user means by query: a device's peer ID
// (of a contact's person), "CONTACT/DEVICE" (DEVICE a device's name, or
// "" / the person's name for the first device), or a contact.
func (n *Node) resolveEndpoint(query string) (endpointTarget, error) {
	if id, err := peer.Decode(query); err == nil {
		if c, err := n.store.PersonOf(id); err == nil && c.PeerID != id {
			return endpointTarget{Contact: c, Device: id}, nil
		}
	}
	if i := strings.LastIndexByte(query, '/'); i > 0 && !strings.HasPrefix(query, "/") {
		c, err := n.store.Resolve(query[:i])
		if err != nil {
			if whole, werr := n.store.Resolve(query); werr == nil { // a nickname with a slash
				return endpointTarget{Contact: whole}, nil
			}
			return endpointTarget{}, err
		}
		dev := query[i+1:]
		if dev == "" || strings.EqualFold(dev, c.DisplayName) || strings.EqualFold(dev, c.Nickname) {
			return endpointTarget{Contact: c, Device: c.PeerID}, nil
		}
		for _, d := range c.Devices {
			if strings.EqualFold(d.Name, dev) || d.Device.String() == dev {
				if !d.Revoked.IsZero() {
					return endpointTarget{}, contacts.ErrDeviceRevoked
				}
				return endpointTarget{Contact: c, Device: d.Device}, nil
			}
		}
		return endpointTarget{}, contacts.ErrDeviceNotFound
	}
	c, err := n.store.Resolve(query)
	if err != nil {
		return endpointTarget{}, err
	}
	return endpointTarget{Contact: c}, nil
}

// onlineEndpoints are the peers of c's unrevoked endpoints that seem
// reachable now (connected, following, near), the first device first; the
// first device alone when none seems so.
func (n *Node) onlineEndpoints(c *contacts.Contact) []peer.ID {
	eps, _ := n.ContactEndpoints(c)
	var out []peer.ID
	for _, e := range eps {
		if e.Revoked.IsZero() && (e.Connected || e.Presence.Status != endpoint.Offline) {
			out = append(out, e.Peer)
		}
	}
	if len(out) == 0 {
		out = []peer.ID{c.PeerID}
	}
	return out
}

// InviteTargets finds the invitees that names mean (see ResolvePeer): a
// contact with several endpoints that seem reachable is each of them, as
// the same person (the first to accept answers for it, see
// invitations.SendTo); "CONTACT/DEVICE" or a device's peer ID is that
// device alone; anyone else is the peer ResolvePeer finds.
func (n *Node) InviteTargets(names []string) ([]invitations.Target, error) {
	var out []invitations.Target
	for _, q := range names {
		t, err := n.resolveEndpoint(q)
		switch {
		case err == nil && t.Device != "":
			out = append(out, invitations.Target{Peer: t.Device})
			continue
		case err == nil && len(t.Contact.Devices) > 0:
			eps := n.onlineEndpoints(t.Contact)
			if len(eps) == 1 {
				out = append(out, invitations.Target{Peer: eps[0]})
				continue
			}
			for _, p := range eps {
				out = append(out, invitations.Target{Peer: p, Person: t.Contact.PeerID})
			}
			continue
		case err != nil && !errors.Is(err, contacts.ErrContactNotFound):
			return nil, err
		}
		p, err := n.ResolvePeer(q)
		if err != nil {
			return nil, err
		}
		out = append(out, invitations.Target{Peer: p})
	}
	return out, nil
}

// followNearDevices fetches the card of a person near who is no contact
// but goes by a contact's display name with another certificate: it may be
// another device of the contact's person, which the card's hello then
// attaches (AttachDeviceCard checks its grant chain; a card of anyone else
// changes nothing). It looks when someone near appears or changes, and
// through everyone near when a contact is added or changed. Each peer's
// certificate is fetched once. It runs until the node closes.
func (n *Node) followNearDevices() {
	tried := map[string]bool{}
	names := n.contactNames()
	consider := func(p near.Person) {
		key := p.Peer.String() + "/" + p.Fingerprint.String()
		fps, named := names[p.DisplayName]
		if tried[key] || !named || slices.Contains(fps, p.Fingerprint) || p.Peer == n.host.ID() || n.store.IsContact(p.Peer) {
			return
		}
		tried[key] = true
		n.wg.Go(func() {
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			defer cancel()
			if _, err := n.near.Card(ctx, p.Peer); err != nil {
				log.Debugw("card of a person near who may be a contact's device", "peer", p.Peer, "error", err)
			}
		})
	}
	for {
		sub := n.hub.Subscribe(64)
		var err error
		for {
			var ev events.Event
			if ev, err = sub.Next(n.ctx); err != nil {
				break
			}
			switch d := ev.Data.(type) {
			case near.ChangeEvent:
				if d.Change != contacts.Deleted {
					consider(d.Person)
				}
			case ContactEvent:
				if ev.Type != "contact.changed" {
					continue
				}
				names = n.contactNames()
				if d.Change != contacts.Deleted {
					if list, err := n.near.List(); err == nil {
						for _, p := range list {
							consider(p)
						}
					}
				}
			}
		}
		sub.Close()
		if !errors.Is(err, events.ErrOverflow) {
			return // the node is closing
		}
	}
}

// contactNames maps the contacts' display names to their certificates'
// fingerprints.
func (n *Node) contactNames() map[string][]contacts.Fingerprint {
	out := map[string][]contacts.Fingerprint{}
	list, err := n.store.List()
	if err != nil {
		return out
	}
	for _, c := range list {
		out[c.DisplayName] = append(out[c.DisplayName], c.Fingerprint)
	}
	return out
}

// DeviceOf tells, for a peer that is a device of a contact's person with
// several devices (as the contact store knows them: verified grant
// chains, not revoked), the person's ID and the device's name ("" for the
// first device). A single-device contact, and anyone else, is not.
func (n *Node) DeviceOf(p peer.ID) (person peer.ID, device string, ok bool) {
	c, err := n.store.PersonOf(p)
	if err != nil || !slices.ContainsFunc(c.Devices, func(d contacts.ContactDevice) bool { return d.Revoked.IsZero() }) {
		return "", "", false
	}
	if d, ok := c.Device(p); ok {
		return c.PeerID, d.Name, true
	}
	return c.PeerID, "", true
}
