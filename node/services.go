package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/reach"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/card"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// Near is the People Near Me service.
func (n *Node) Near() *near.Service { return n.near }

// Publish is the service of the node's own endpoint data.
func (n *Node) Publish() *publish.Service { return n.publish }

// Watch is the service that follows other nodes' endpoint data.
func (n *Node) Watch() *watch.Service { return n.watch }

// hello is this node's introduction to peer to for the card protocol. Its
// presence is shown only to those who may watch it; a blocked contact sees
// this node offline.
func (n *Node) hello(to peer.ID) (card.Hello, error) {
	c, err := n.MyCard()
	if err != nil {
		return card.Hello{}, err
	}
	name, pres := n.publish.Profile()
	if _, err := n.access(to); err != nil {
		pres = endpoint.Presence{Status: endpoint.Offline}
	}
	return card.Hello{Card: c, EndpointName: name, Presence: pres}, nil
}

// nearProfile is what the node announces to its subnet: its public profile.
func (n *Node) nearProfile() (near.Profile, error) {
	me, err := n.store.Me()
	if err != nil {
		return near.Profile{}, err
	}
	name, pres := n.publish.Profile()
	return near.Profile{DisplayName: me.DisplayName, Email: me.Email, EndpointName: name, Presence: pres,
		Fingerprint: me.Fingerprint}, nil
}

// access decides what of this node's endpoint data a peer may see: trusted
// contacts allowed to watch get everything, people near who are not
// contacts the public profile, blocked contacts and strangers nothing.
func (n *Node) access(from peer.ID) (endpoint.Tier, error) {
	scope := n.Scope()
	if scope == ScopeNone {
		return 0, endpoint.ErrNotSignedIn
	}
	isNear := scope.Has(ScopeNearMe) && n.near.OnSubnet(from)
	// Another device of a contact's person is that contact; a revoked one
	// is a stranger.
	c, err := n.store.PersonOf(from)
	switch {
	case err == nil && c.WatcherPermission == contacts.Blocked:
		return 0, endpoint.ErrBlocked
	case err == nil && (scope.Has(ScopeInternet) || isNear):
		return endpoint.Full, nil
	case err == nil:
		return 0, endpoint.ErrNotSignedIn
	case !errors.Is(err, contacts.ErrContactNotFound):
		return 0, err
	case isNear:
		return endpoint.Public, nil
	}
	return 0, endpoint.ErrNotAllowed
}

// Relays returns the state of the node's relay reservations.
func (n *Node) Relays() []reach.RelayStatus { return n.reach.Relays() }

// trusted tells whether a card's peer is a contact or endorsed by one
// within the trust depth.
func (n *Node) trusted(c *contacts.Card) bool {
	t, err := contacts.Evaluate(c, n.store, n.cfg.MaxTrustDepth)
	return err == nil && t.Trusted
}

// peerName names a peer for a person: its contact nickname (with the
// device's name, "Bob/laptop", for another device of the contact's
// person), its name near, or its ID.
func (n *Node) peerName(p peer.ID) string {
	if c, err := n.store.PersonOf(p); err == nil {
		if d, ok := c.Device(p); ok {
			return c.Nickname + "/" + d.Name
		}
		return c.Nickname
	}
	if person, ok := n.near.Get(p); ok {
		return person.DisplayName
	}
	return p.String()
}

// invitationNode is the node as the invitation service sees it
// (invitations.Node).
type invitationNode struct{ n *Node }

var _ invitations.Node = invitationNode{}

func (in invitationNode) Card() (*contacts.Card, error) { return in.n.MyCard() }
func (in invitationNode) Trusted(c *contacts.Card) bool { return in.n.trusted(c) }
func (in invitationNode) IsContact(p peer.ID) bool      { return in.n.store.IsContact(p) }
func (in invitationNode) Name(p peer.ID) string         { return in.n.peerName(p) }
func (in invitationNode) Connect(ctx context.Context, p peer.ID, addrs []ma.Multiaddr) error {
	return in.n.connectWith(ctx, p, addrs)
}

// App is a registered application as the invitation service sees it.
func (in invitationNode) App(id string) (invitations.App, bool) {
	a, ok := in.n.publish.App(id)
	return invitations.App{Launch: a.Launch, AutoAccept: a.AutoAccept}, ok
}

// InvitationPolicy says whose invitations the node takes (default anyone,
// as in Windows; untrusted invitations are marked as such). The invitation
// service keeps it (invitations.Service.Policy).
func (n *Node) InvitationPolicy() invitations.Policy { return n.invites.Policy() }

// SetInvitationPolicy changes whose invitations the node takes, durably
// (invitations.Service.SetPolicy).
func (n *Node) SetInvitationPolicy(p invitations.Policy) error { return n.invites.SetPolicy(p) }

// Invitations is the invitation inbox and outbox.
func (n *Node) Invitations() *invitations.Service { return n.invites }

// followContacts keeps watches and topic keys in line with the contact list:
// a contact marked watch is watched; one blocked or removed makes the node
// change its topic keys, so that it reads nothing more; one added or
// unblocked is handed the keys and the full data at once if it watches this
// node already (publish.Service.Grant); and this node's own watch of a peer
// it adds or removes fetches a new snapshot (what the peer shows may have
// changed with it).
func (n *Node) followContacts() {
	// Started here, with the node's other followers: a contact's hello
	// may carry its new name, and a contact that connects may need ours.
	n.near.SetReceived(n.cardReceived)
	n.wg.Go(n.followNearDevices)
	if sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.BufSize(64),
		eventbus.Name("peercollab/node/cards")); err == nil {
		n.wg.Go(func() { n.followConnections(sub) })
		defer sub.Close()
	} else {
		log.Warnw("follow connections for renames", "error", err)
	}
	// allowed remembers which contacts may watch, so that only a change
	// to allowed hands over the keys (a contact's other changes do not).
	allowed := map[peer.ID]bool{}
	// devices remembers the devices of each contact watched through it,
	// trusted the unrevoked devices of each contact.
	devices := map[peer.ID][]peer.ID{}
	trusted := map[peer.ID][]peer.ID{}
	if list, err := n.store.List(); err == nil {
		for _, c := range list {
			allowed[c.PeerID] = c.WatcherPermission == contacts.Allowed
			n.watchDevices(c, false, devices)
			trusted[c.PeerID] = n.trustDevices(c, false, nil)
		}
	}
	for e := range n.contactSub.Out() {
		ev := e.(contacts.EvtContactChanged)
		if ev.Me {
			continue
		}
		c := ev.Contact
		if ev.Change == contacts.Deleted {
			n.host.ConnManager().Unprotect(c.PeerID, tagContact)
		} else {
			n.host.ConnManager().Protect(c.PeerID, tagContact)
		}
		if ev.Change == contacts.Deleted || c.WatcherPermission == contacts.Blocked {
			n.publish.Rekey()
		}
		nowAllowed := ev.Change != contacts.Deleted && c.WatcherPermission == contacts.Allowed
		if nowAllowed && (ev.Change == contacts.Added || !allowed[c.PeerID]) {
			n.grant(c.PeerID)
		}
		if ev.Change == contacts.Deleted {
			delete(allowed, c.PeerID)
		} else {
			allowed[c.PeerID] = nowAllowed
		}
		if ev.Change != contacts.Updated {
			n.watch.Resync(c.PeerID)
		}
		switch {
		case ev.Change != contacts.Deleted && c.Watch:
			n.watch.Watch(c.PeerID)
		case ev.Change == contacts.Deleted || !c.Watch:
			if e, ok := n.watch.Get(c.PeerID); ok && e.Watching {
				n.watch.Unwatch(c.PeerID)
			}
		}
		n.watchDevices(&c, ev.Change == contacts.Deleted, devices)
		if t := n.trustDevices(&c, ev.Change == contacts.Deleted, trusted[c.PeerID]); len(t) > 0 {
			trusted[c.PeerID] = t
		} else {
			delete(trusted, c.PeerID)
		}
	}
}

// trustDevices keeps the node in line with contact c's unrevoked devices
// (none when deleted), given those it had (was): each is protected from
// the connection manager like the contact; a device revoked or dropped
// makes the node change its topic keys, as a block does, and a new one is
// handed the keys and full data at once if it watches this node already
// and the contact may watch. It returns the unrevoked devices.
func (n *Node) trustDevices(c *contacts.Contact, deleted bool, was []peer.ID) []peer.ID {
	var now []peer.ID
	if !deleted {
		for _, d := range c.Devices {
			if d.Revoked.IsZero() {
				now = append(now, d.Device)
			}
		}
	}
	rekey := false
	for _, d := range was {
		if !slices.Contains(now, d) {
			n.host.ConnManager().Unprotect(d, tagContact)
			rekey = true
		}
	}
	if rekey && !deleted { // a deleted contact rekeys already
		n.publish.Rekey()
	}
	for _, d := range now {
		n.host.ConnManager().Protect(d, tagContact)
		if !slices.Contains(was, d) && c.WatcherPermission == contacts.Allowed {
			n.grant(d)
		}
	}
	return now
}

// watchDevices makes the watch of contact c follow each of its unrevoked
// devices too (a device revoked, or the contact unwatched or deleted, is
// unwatched); devices holds the devices watched per contact.
func (n *Node) watchDevices(c *contacts.Contact, deleted bool, devices map[peer.ID][]peer.ID) {
	var want []peer.ID
	if !deleted && c.Watch {
		for _, d := range c.Devices {
			if d.Revoked.IsZero() {
				want = append(want, d.Device)
			}
		}
	}
	for _, d := range devices[c.PeerID] {
		if !slices.Contains(want, d) {
			n.watch.Unwatch(d)
		}
	}
	for _, d := range want {
		if !slices.Contains(devices[c.PeerID], d) {
			if err := n.watch.Watch(d); err != nil {
				log.Debugw("watch a contact's device", "contact", c.PeerID, "device", d, "error", err)
			}
		}
	}
	if len(want) == 0 {
		delete(devices, c.PeerID)
	} else {
		devices[c.PeerID] = want
	}
}

// grant hands p, if it is connected, the snapshot it may see now, in the
// background (see publish.Service.Grant).
func (n *Node) grant(p peer.ID) {
	if c := n.host.Network().Connectedness(p); (c != network.Connected && c != network.Limited) || n.ctx.Err() != nil {
		return
	}
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.ctx, endpoint.Timeout)
		defer cancel()
		if err := n.publish.Grant(ctx, p); err != nil {
			log.Debugw("hand endpoint snapshot to a new contact", "peer", p, "error", err)
		}
	})
}

// SetPresence sets the node's presence and tells the people near.
func (n *Node) SetPresence(p endpoint.Presence) error {
	if err := n.publish.SetPresence(p); err != nil {
		return err
	}
	n.near.Announce()
	return nil
}

// SetEndpointName sets the node's endpoint name and tells the people near.
func (n *Node) SetEndpointName(name string) error {
	if err := n.publish.SetName(name); err != nil {
		return err
	}
	n.near.Announce()
	return nil
}

// WatchPeer starts following p's endpoint data: durably, by setting the
// watch flag, when p is a contact; for this run only otherwise.
func (n *Node) WatchPeer(p peer.ID) error {
	if _, err := n.store.Get(p); err == nil {
		t := true
		if _, err := n.UpdateContact(p, AddOptions{Watch: &t}); err != nil {
			return err
		}
	}
	// At once, not only when the contact event comes round: the caller
	// wants to see the watch.
	return n.watch.Watch(p)
}

// UnwatchPeer stops following p.
func (n *Node) UnwatchPeer(p peer.ID) error {
	if _, err := n.store.Get(p); err == nil {
		f := false
		if _, err := n.UpdateContact(p, AddOptions{Watch: &f}); err != nil {
			return err
		}
	}
	n.watch.Unwatch(p)
	return nil
}

// ForgetEndpointData drops what the node keeps of p's endpoint data, which
// must not be watched (watch.Service.Forget).
func (n *Node) ForgetEndpointData(p peer.ID) error { return n.watch.Forget(p) }

// EndpointData returns p's endpoint data: from its watch when watched,
// otherwise fetched now (Windows' refresh).
func (n *Node) EndpointData(ctx context.Context, p peer.ID) (watch.Entry, error) {
	if e, ok := n.watch.Get(p); ok && e.Watching && e.State == watch.Following {
		return e, nil
	}
	ctx, cancel := context.WithTimeout(ctx, endpoint.Timeout)
	defer cancel()
	return n.watch.Refresh(ctx, p)
}

// ResolvePeer finds the peer a user means: a contact (nickname, ID or
// prefix), someone near (display name, ID or prefix), or a peer ID.
func (n *Node) ResolvePeer(query string) (peer.ID, error) {
	if strings.HasPrefix(query, "/") { // a multiaddr: remember its address
		ai, err := n.Resolve(query)
		if err != nil {
			return "", err
		}
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.RecentlyConnectedAddrTTL)
		return ai.ID, nil
	}
	c, cerr := n.store.Resolve(query)
	if cerr == nil {
		return c.PeerID, nil
	}
	if errors.Is(cerr, contacts.ErrAmbiguous) {
		return "", cerr
	}
	if n.near.Active() {
		p, err := n.near.Resolve(query)
		if err == nil {
			return p.Peer, nil
		}
		if errors.Is(err, near.ErrAmbiguous) {
			return "", err
		}
	}
	if id, err := peer.Decode(query); err == nil {
		return id, nil
	}
	return "", cerr
}

// AddNear adds a person near as a contact, with the card fetched from them
// over the card protocol (Windows' AddToContactManager).
func (n *Node) AddNear(query string, opts AddOptions) (*contacts.Contact, bool, CardCheck, error) {
	p, err := n.near.Resolve(query)
	if err != nil {
		return nil, false, CardCheck{}, err
	}
	crd, err := n.near.Card(n.ctx, p.Peer)
	if err != nil {
		return nil, false, CardCheck{}, err
	}
	c, created, chk, err := n.AddCard(crd.Marshal(), opts)
	if err == nil {
		n.store.Update(c.PeerID, func(c *contacts.Contact) error { c.LastSeen = time.Now().UTC(); return nil })
	}
	return c, created, chk, err
}

// sessionApp tells the session service about a registered application.
func (n *Node) sessionApp(id string) (registered, autoHost bool) {
	a, ok := n.publish.App(id)
	return ok, a.AutoHost
}

// Sessions is the session service.
func (n *Node) Sessions() *sessions.Service { return n.sessions }
