package invitations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/internal/retry"
	"github.com/peercollab/peercollab/protocols/invite"
)

// Request is what to invite peers to.
type Request struct {
	AppID   string
	Message string
	Data    []byte
	// Expiry is how long the invitation waits for an answer; 0 means
	// invite.DefaultExpiry.
	Expiry    time.Duration
	SessionID string
}

// Send invites every peer to the application, one invitation each, and
// returns at once: the invitations are stored as pending and delivered in
// the background. They share a batch ID, for List and Count.
func (s *Service) Send(peers []peer.ID, req Request) ([]Record, error) {
	targets := make([]Target, len(peers))
	for i, p := range peers {
		targets[i] = Target{Peer: p}
	}
	return s.SendTo(targets, req)
}

// Target is an invitee of SendTo: a peer, and when the invitation goes to
// several devices of one person, that person's ID.
type Target struct {
	Peer   peer.ID
	Person peer.ID
}

// SendTo is Send to targets: the invitations to the devices of one person
// (the same Target.Person) answer for the person: the first accepted
// withdraws the others (see Record.Person).
func (s *Service) SendTo(targets []Target, req Request) ([]Record, error) {
	if len(targets) == 0 {
		return nil, ErrNoPeers
	}
	if req.Expiry == 0 {
		req.Expiry = invite.DefaultExpiry
	}
	if req.Expiry < 0 || req.Expiry > invite.MaxExpiry {
		return nil, invite.ErrBadExpiry
	}
	card, err := s.cfg.Node.Card()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	batch := invite.NewID()
	recs := make([]*entry, 0, len(targets))
	for _, t := range targets {
		p := t.Peer
		if p == s.cfg.Host.ID() {
			return nil, ErrSelf
		}
		e := &entry{Record: Record{
			Invitation: invite.Invitation{ID: invite.NewID(), AppID: req.AppID, Message: req.Message, Data: req.Data,
				Sent: now, Expires: now.Add(req.Expiry), SessionID: req.SessionID, InviterCard: card.Marshal()},
			Direction: Sent, Peer: p, PeerName: s.cfg.Node.Name(p), State: Pending, Trusted: s.cfg.Node.IsContact(p),
			Batch: batch, Person: t.Person, Updated: now, Unacked: stepInvite,
		}}
		if err := e.Check(); err != nil {
			return nil, err
		}
		e.Data, e.InviterCard = nil, nil
		recs = append(recs, e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, len(recs))
	for i, e := range recs {
		if err := s.addLocked(e, payload{Data: req.Data}); err != nil {
			return nil, err
		}
		s.saveLocked(e)
		s.scheduleLocked(e)
		out[i] = e.Record.View()
		out[i].Data = append([]byte(nil), req.Data...)
	}
	return out, nil
}

// Cancel withdraws a sent invitation that has not been answered. One never
// delivered is simply dropped; a delivered one is cancelled at the invitee
// too, which can then no longer answer it.
func (s *Service) Cancel(id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.findLocked(id)
	if err != nil {
		return Record{}, err
	}
	if e.Direction != Sent {
		return Record{}, ErrNotSent
	}
	if e.State.Answered() {
		return Record{}, ErrAnswered
	}
	s.cancelLocked(e)
	return e.Record.View(), nil
}

// cancelLocked withdraws the unanswered sent invitation e (see Cancel).
func (s *Service) cancelLocked(e *entry) {
	next := stepCancel
	if e.State == Pending {
		// Not delivered: nothing to tell the invitee, unless the invitation
		// is on its way right now; then its acknowledgement sends the cancel.
		next = stepNone
		if s.sending[e.key()] {
			next = stepInvite
		}
	}
	s.setLocked(e, Cancelled, invite.NoReason, next)
	s.scheduleLocked(e)
}

// deliverLocked starts delivering a record's unacknowledged step, unless a
// delivery of it runs already.
func (s *Service) deliverLocked(e *entry) {
	key := e.key()
	if s.closed || s.sending[key] {
		return
	}
	s.sending[key] = true
	s.wg.Go(func() { s.deliver(key) })
}

// Delivery backoff: the first retry after about retryMin, doubling to
// about retryMax, each wait randomised (see node/internal/retry).
const (
	retryMin = 250 * time.Millisecond
	retryMax = 30 * time.Second
)

// deliver sends a record's unacknowledged steps until the peer
// acknowledges them, the invitation expires, or the service closes.
func (s *Service) deliver(key string) {
	defer func() {
		s.mu.Lock()
		delete(s.sending, key)
		s.mu.Unlock()
	}()
	backoff := retry.New(retryMin, retryMax)
	for {
		s.mu.Lock()
		e, ok := s.records[key]
		if !ok || s.closed || e.Unacked == stepNone {
			s.mu.Unlock()
			return
		}
		snap, st, stored := e.Record, e.Unacked, e.payload
		s.mu.Unlock()
		if time.Now().After(snap.Expires) && st != stepRespond {
			s.mu.Lock()
			if e.Unacked == st {
				e.Unacked = stepNone
				s.saveLocked(e)
			}
			s.mu.Unlock()
			return
		}
		ack, err := s.send(snap, st, stored)
		if err == nil || errors.Is(err, invite.ErrBadAck) {
			s.acked(key, st, ack, err)
			backoff.Reset()
			continue
		}
		log.Debugw("deliver invitation step", "invitation", snap.ID, "step", st, "peer", snap.Peer, "error", err)
		if !backoff.Wait(s.ctx) {
			return
		}
	}
}

// send performs one step over the network. The invitation's data, and the
// inviter's card of a received one (for its addresses), are read from the
// database when stored; the invitation carries this node's card as it is
// now.
func (s *Service) send(r Record, st step, stored bool) (invite.Ack, error) {
	if stored && (st == stepInvite || r.Direction == Received) {
		p, err := s.loadPayload(r.key())
		if err != nil {
			return invite.Ack{}, fmt.Errorf("read invitation data: %w", err)
		}
		r.Data, r.Card = p.Data, p.Card
	}
	ctx, cancel := context.WithTimeout(s.ctx, invite.Timeout)
	defer cancel()
	var addrs []ma.Multiaddr
	if card, err := contacts.ParseCard(r.Card, time.Now()); err == nil {
		addrs = card.Addrs()
	}
	if err := s.cfg.Node.Connect(ctx, r.Peer, addrs); err != nil {
		return invite.Ack{}, err
	}
	switch st {
	case stepInvite:
		card, err := s.cfg.Node.Card()
		if err != nil {
			return invite.Ack{}, err
		}
		r.InviterCard = card.Marshal()
		return invite.Invite(ctx, s.cfg.Host, r.Peer, r.Invitation)
	case stepCancel:
		return invite.Cancel(ctx, s.cfg.Host, r.Peer, r.ID)
	default:
		return invite.Respond(ctx, s.cfg.Host, r.Peer, responseOf(r))
	}
}

// responseOf is the response a received record's state stands for.
func responseOf(r Record) invite.Response {
	resp := invite.Response{InvitationID: r.ID, Reason: r.Reason}
	switch r.State {
	case Accepted:
		resp.Action = invite.Accepted
	case Expired:
		resp.Action = invite.Expired
	case Error:
		resp.Action = invite.Error
	default:
		resp.Action = invite.Declined
	}
	return resp
}

// acked records the peer's acknowledgement of step st, or the malformed
// acknowledgement it sent instead (badAck).
func (s *Service) acked(key string, st step, ack invite.Ack, badAck error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.records[key]
	if !ok || e.Unacked != st {
		return
	}
	err := ack.Err()
	if badAck != nil {
		log.Debugw("malformed acknowledgement", "invitation", e.ID, "step", st, "peer", e.Peer, "error", badAck)
		err = badAck
	}
	switch {
	case st == stepInvite && err == nil && ack.Response != nil:
		s.answeredLocked(e, *ack.Response)
	case st == stepInvite && err == nil:
		if e.State == Pending {
			s.setLocked(e, Delivered, invite.NoReason, stepNone)
		} else { // cancelled while the invitation was on its way
			s.setLocked(e, e.State, e.Reason, stepCancel)
			s.deliverLocked(e)
		}
	case st == stepInvite && errors.Is(err, invite.ErrAnswered) && ack.Response != nil:
		s.answeredLocked(e, *ack.Response)
	case st == stepInvite && err != nil:
		if e.State.Answered() { // cancelled meanwhile: it stays so
			e.Unacked = stepNone
			s.saveLocked(e)
			return
		}
		s.setLocked(e, Error, invite.Invalid, stepNone)
	default:
		// A response or cancel the peer knows, has seen, or does not
		// want: either way there is nothing more to tell it.
		if err != nil {
			log.Debugw("invitation step refused", "invitation", e.ID, "step", st, "error", err)
		}
		e.Unacked = stepNone
		s.saveLocked(e)
	}
}

// answeredLocked records the invitee's response to a sent invitation.
func (s *Service) answeredLocked(e *entry, resp invite.Response) {
	if e.State.Answered() {
		return
	}
	st := map[invite.Action]State{invite.Accepted: Accepted, invite.Declined: Declined, invite.Expired: Expired, invite.Error: Error}[resp.Action]
	s.setLocked(e, st, resp.Reason, stepNone)
	if st != Accepted || e.Person == "" {
		return
	}
	// The person accepted on this device: the invitations to its other
	// devices are withdrawn.
	for _, o := range s.records {
		if o != e && o.Direction == Sent && o.Batch == e.Batch && o.Person == e.Person && !o.State.Answered() {
			log.Debugw("invitation withdrawn: the person accepted on another device", "invitation", o.ID, "peer", o.Peer, "accepted", e.ID)
			s.cancelLocked(o)
		}
	}
}
