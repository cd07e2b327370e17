package localapi

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/reach"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/session"
)

// The node's types become the contract's (package apitype) here, field by
// field: what the API shows is chosen, not inherited, and bookkeeping the
// node keeps for itself (such as which step of an invitation its peer has
// not acknowledged) stays out.

// mapSlice converts every element of in; nil stays nil, so that the JSON
// of a list keeps its null or [].
func mapSlice[T, U any](in []T, f func(T) U) []U {
	if in == nil {
		return nil
	}
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

func infoView(i node.Info) apitype.Info {
	return apitype.Info{
		PeerID:       i.PeerID,
		DisplayName:  i.DisplayName,
		Email:        i.Email,
		Fingerprint:  apitype.Fingerprint(i.Fingerprint),
		Addrs:        i.Addrs,
		Reachability: i.Reachability,
		PublicAddrs:  i.PublicAddrs,
		PrivateAddrs: i.PrivateAddrs,
		RelayAddrs:   i.RelayAddrs,
		HolePunching: i.HolePunching,
		Relays:       mapSlice(i.Relays, relayView),
		Protocols:    mapSlice(i.Protocols, func(p protocol.ID) string { return string(p) }),
		Version:      i.Version,
		Connections:  i.Connections,
		Peers:        i.Peers,
	}
}

func relayView(r reach.RelayStatus) apitype.RelayStatus {
	return apitype.RelayStatus{Relay: r.Relay, Reserved: r.Reserved, Expires: r.Expires, LastError: r.LastError}
}

func contactView(c *contacts.Contact) apitype.Contact {
	return apitype.Contact{
		PeerID:            c.PeerID,
		Nickname:          c.Nickname,
		DisplayName:       c.DisplayName,
		Email:             c.Email,
		Fingerprint:       apitype.Fingerprint(c.Fingerprint),
		EndorsedBy:        c.EndorsedBy,
		Watch:             c.Watch,
		WatcherPermission: apitype.WatcherPermission(c.WatcherPermission.String()),
		Addrs:             c.Addrs,
		Added:             c.Added,
		LastSeen:          c.LastSeen,
	}
}

// endpointViews are a contact's endpoints as the contract shows them.
func endpointViews(eps []node.ContactEndpoint) []apitype.ContactEndpoint {
	out := make([]apitype.ContactEndpoint, len(eps))
	for i, e := range eps {
		out[i] = apitype.ContactEndpoint{PeerID: e.Peer, First: e.First, Device: e.Device, Presence: presenceView(e.Presence),
			Connected: e.Connected, Addrs: e.Addrs, LastSeen: e.LastSeen, Revoked: e.Revoked}
	}
	return out
}

func contactPtrView(c *contacts.Contact) *apitype.Contact {
	v := contactView(c)
	return &v
}

// cardView describes a checked card; nickname names the contact the trust
// goes through.
func cardView(chk node.CardCheck, nickname func(peer.ID) string) apitype.CardView {
	c := chk.Card
	p := c.Profile()
	v := apitype.CardView{PeerID: c.PeerID(), DisplayName: p.DisplayName, Email: p.Email, Fingerprint: apitype.Fingerprint(c.Fingerprint()), Addrs: c.Addrs()}
	for _, cert := range c.Chain() {
		id, _ := contacts.KeyPeerID(cert)
		v.Chain = append(v.Chain, apitype.ChainLink{PeerID: id, DisplayName: cert.Subject.CommonName, Fingerprint: apitype.Fingerprint(contacts.CertFingerprint(cert)), NotAfter: cert.NotAfter})
	}
	v.Trust = apitype.TrustView{Trusted: chk.Trust.Trusted, Via: chk.Trust.Via, Depth: chk.Trust.Depth}
	if chk.Trust.Via != "" {
		v.Trust.ViaName = nickname(chk.Trust.Via)
	}
	if chk.TrustErr != nil {
		v.Trust.Reason = toError(chk.TrustErr).Message
	}
	return v
}

func pingResultView(r node.PingResult) apitype.PingResult {
	return apitype.PingResult{Seq: r.Seq, RTT: r.RTT, Conn: apitype.ConnInfo{Addr: r.Conn.Addr, Relayed: r.Conn.Relayed}, Error: r.Error}
}

func scopeView(s node.Scope) apitype.Scope { return apitype.Scope(s.String()) }

func changeView(c contacts.ChangeType) apitype.Change { return apitype.Change(c.String()) }

func presenceView(p endpoint.Presence) apitype.Presence {
	return apitype.Presence{Status: apitype.PresenceStatus(p.Status.String()), Text: p.Text}
}

func personView(p near.Person) apitype.Person {
	return apitype.Person{
		PeerID:       p.Peer,
		DisplayName:  p.DisplayName,
		Email:        p.Email,
		EndpointName: p.EndpointName,
		Presence:     presenceView(p.Presence),
		Fingerprint:  apitype.Fingerprint(p.Fingerprint),
		Addrs:        p.Addrs,
		Since:        p.Since,
		LastSeen:     p.LastSeen,
	}
}

func applicationView(a endpoint.Application) apitype.Application {
	return apitype.Application{ID: a.ID, Description: a.Description, Data: a.Data}
}

func registeredAppView(a publish.RegisteredApp) apitype.RegisteredApp {
	return apitype.RegisteredApp{ID: a.ID, Description: a.Description, Data: a.Data, Launch: a.Launch, AutoAccept: a.AutoAccept, AutoHost: a.AutoHost}
}

func objectView(o endpoint.Object) apitype.Object { return apitype.Object{ID: o.ID, Data: o.Data} }

func peerEndpointView(e watch.Entry) apitype.PeerEndpoint {
	d := e.Data
	return apitype.PeerEndpoint{
		Peer:     e.Peer,
		Watching: e.Watching,
		State:    apitype.WatchState(e.State),
		Error:    e.Error,
		Updated:  e.Updated,
		Data: apitype.EndpointData{
			Epoch:        d.Epoch,
			Version:      d.Version,
			Name:         d.Name,
			Presence:     presenceView(d.Presence),
			Full:         d.Full,
			Applications: mapSlice(d.Applications, applicationView),
			Objects:      mapSlice(d.Objects, objectView),
		},
	}
}

// invitationView is an invitation as the API shows it: without the
// inviter's card (InvitationDetail carries it) and without the delivery
// bookkeeping of the record.
func invitationView(r invitations.Record) apitype.Invitation {
	return apitype.Invitation{
		ID:        r.ID,
		AppID:     r.AppID,
		Message:   r.Message,
		Data:      r.Data,
		Sent:      r.Sent,
		Expires:   r.Expires,
		SessionID: r.SessionID,
		Direction: apitype.Direction(r.Direction),
		Peer:      r.Peer,
		PeerName:  r.PeerName,
		State:     apitype.InvitationState(r.State),
		Reason:    r.Reason.String(),
		Trusted:   r.Trusted,
		Source:    r.Source,
		Batch:     r.Batch,
		Person:    r.Person,
		Updated:   r.Updated,
		Launched:  r.Launched,
	}
}

func tallyView(t invitations.Tally) apitype.Tally {
	return apitype.Tally{Total: t.Total, Accepted: t.Accepted, Declined: t.Declined, NoAnswer: t.NoAnswer, Expired: t.Expired, Cancelled: t.Cancelled, Error: t.Error}
}

// invitationList lists records with their tally.
func invitationList(batch string, recs []invitations.Record) apitype.InvitationList {
	return apitype.InvitationList{Batch: batch, Invitations: mapSlice(recs, invitationView), Tally: tallyView(invitations.Count(recs))}
}

func sessionView(v sessions.View) apitype.Session {
	s := apitype.Session{
		ID:       v.ID,
		AppID:    v.App,
		Host:     v.Host,
		Hosting:  v.Hosting,
		State:    apitype.SessionState(v.State.String()),
		Version:  v.Version,
		Epoch:    v.Epoch,
		Members:  v.Members,
		Joined:   v.Joined,
		Me:       apitype.Standing(v.Me),
		Sent:     v.Sent,
		Received: v.Received,
		Error:    v.Error,
	}
	if v.Standing != nil {
		s.Standing = make(map[string]apitype.Standing, len(v.Standing))
		for p, st := range v.Standing {
			s.Standing[p] = apitype.Standing(st)
		}
	}
	if v.Tally != nil {
		t := tallyView(*v.Tally)
		s.Tally = &t
	}
	return s
}

func messageView(m sessions.Message) apitype.Message {
	return apitype.Message{Session: m.Session, Sender: m.Sender, Seq: m.Seq, Data: m.Data, Time: m.Time, Index: m.Index}
}

func hostRequestView(r sessions.HostRequest) apitype.HostRequest {
	return apitype.HostRequest{ID: r.ID, From: r.From, AppID: r.App, Message: r.Message, Received: r.Received, State: r.State, Session: r.Session}
}

// eventData converts the payload of a node event into its contract type.
// It reports false for a payload the contract does not know, which the
// stream then leaves out: a new event of the node reaches clients once it
// has its type in apitype and a case here.
func eventData(data any) (any, bool) {
	switch d := data.(type) {
	case node.ContactEvent:
		return apitype.ContactEvent{Change: changeView(d.Change), Contact: contactView(&d.Contact)}, true
	case node.ScopeEvent:
		return apitype.ScopeResponse{Scope: scopeView(d.Scope)}, true
	case node.ConnectionEvent:
		return apitype.ConnectionEvent{Peer: d.Peer, State: d.State, Addr: d.Addr}, true
	case publish.PresenceEvent:
		return apitype.MyPresenceEvent{Presence: presenceView(d.Presence)}, true
	case publish.NameEvent:
		return apitype.MyNameEvent{Name: d.Name}, true
	case publish.ApplicationEvent:
		return apitype.MyApplicationEvent{Change: changeView(d.Change), Application: applicationView(d.Application)}, true
	case publish.ObjectEvent:
		return apitype.MyObjectEvent{Change: changeView(d.Change), Object: objectView(d.Object)}, true
	case near.ChangeEvent:
		return apitype.NearEvent{Change: changeView(d.Change), Person: personView(d.Person)}, true
	case watch.NameEvent:
		return apitype.PeerNameEvent{Peer: d.Peer, Name: d.Name}, true
	case watch.PresenceEvent:
		return apitype.PeerPresenceEvent{Peer: d.Peer, Presence: presenceView(d.Presence)}, true
	case watch.ApplicationEvent:
		return apitype.PeerApplicationEvent{Peer: d.Peer, Change: changeView(d.Change), Application: applicationView(d.Application)}, true
	case watch.ObjectEvent:
		return apitype.PeerObjectEvent{Peer: d.Peer, Change: changeView(d.Change), Object: objectView(d.Object)}, true
	case watch.WatchListEvent:
		return apitype.WatchListEvent{Peer: d.Peer, Change: changeView(d.Change)}, true
	case watch.RequestDoneEvent:
		return apitype.RequestDoneEvent{Peer: d.Peer, Request: d.Request, OK: d.OK, Full: d.Full, Error: d.Error}, true
	case invitations.Record:
		return invitationView(d), true
	case sessions.View:
		return sessionView(d), true
	case sessions.Message:
		return messageView(d), true
	case sessions.HostRequest:
		return hostRequestView(d), true
	case session.Gap:
		return apitype.LostEvent{Sender: d.Sender, From: d.From, To: d.To}, true
	case events.Lost:
		return apitype.EventsLostEvent{From: d.From, To: d.To, Reason: d.Reason}, true
	}
	return nil, false
}

// Requests: the contract's values, checked by the wire types of decode.go,
// become the node's.

func permissionArg(p *apitype.WatcherPermission) (*contacts.WatcherPermission, error) {
	if p == nil {
		return nil, nil
	}
	var v contacts.WatcherPermission
	if err := v.UnmarshalText([]byte(*p)); err != nil {
		return nil, badValue(apitype.CodeBadPermission, "unknown watcher permission %s (allowed or blocked)", sentence.Quote(string(*p)))
	}
	return &v, nil
}

func addOptions(nickname *string, watch *bool, perm *apitype.WatcherPermission) (node.AddOptions, error) {
	p, err := permissionArg(perm)
	return node.AddOptions{Nickname: nickname, Watch: watch, Permission: p}, err
}

// addResponse is the answer to adding a contact.
func addResponse(c *contacts.Contact, created bool, chk node.CardCheck, nickname func(peer.ID) string) apitype.AddContactResponse {
	r := apitype.AddContactResponse{Contact: contactView(c), Created: created, Card: cardView(chk, nickname), DeviceAdded: chk.Attached}
	for _, d := range chk.Dropped {
		r.DroppedEndorsements = append(r.DroppedEndorsements, apitype.Endorser{PeerID: d.PeerID, DisplayName: d.DisplayName})
	}
	return r
}

func presenceArg(p apitype.Presence) (endpoint.Presence, error) {
	st, err := endpoint.ParseStatus(string(p.Status))
	if err != nil {
		return endpoint.Presence{}, toError(err)
	}
	return endpoint.Presence{Status: st, Text: p.Text}, nil
}

func scopeArg(s apitype.Scope) (node.Scope, error) {
	v, err := node.ParseScope(string(s))
	if err != nil {
		return 0, badValue(apitype.CodeBadScope, "unknown scope %s (none, nearme, internet or all)", sentence.Quote(string(s)))
	}
	return v, nil
}

func policyArg(p apitype.Policy) (invitations.Policy, error) {
	v, err := invitations.ParsePolicy(string(p))
	if err != nil {
		return "", badValue(apitype.CodeBadPolicy, "unknown invitation policy %s (anyone, contacts or nobody)", sentence.Quote(string(p)))
	}
	return v, nil
}

func registeredAppArg(a apitype.RegisteredApp) publish.RegisteredApp {
	return publish.RegisteredApp{Application: endpoint.Application{ID: a.ID, Description: a.Description, Data: a.Data}, Launch: a.Launch, AutoAccept: a.AutoAccept, AutoHost: a.AutoHost}
}
