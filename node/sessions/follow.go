package sessions

import (
	"errors"
	"time"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/session"
)

// follow takes the invitations' changes from sub, in order, until the
// service closes. A subscription cut off for falling behind is replaced,
// and what it missed read from the list.
func (s *Service) follow(sub *invitations.Sub) {
	defer func() { sub.Close() }()
	for {
		r, err := sub.Next(s.ctx)
		switch {
		case err == nil:
			s.changed(r)
		case errors.Is(err, invitations.ErrOverflow):
			log.Warnw("fell behind the invitations' changes; reading them all", "error", err)
			sub = s.cfg.Invitations.Subscribe()
			s.reconcile()
		default:
			return // closed
		}
	}
}

// reconcile takes every invitation of a session as it stands now: what
// changed while no subscription followed them. Taking a change twice does
// nothing more.
func (s *Service) reconcile() {
	for _, r := range s.cfg.Invitations.List(invitations.Filter{}) {
		s.changed(r)
	}
}

// standingOf maps an answered invitation to a session standing.
var standingOf = map[invitations.State]session.Standing{
	invitations.Accepted:  session.Member,
	invitations.Declined:  session.Declined,
	invitations.Expired:   session.Expired,
	invitations.Cancelled: session.Cancelled,
	invitations.Error:     session.Failed,
}

// changed follows one invitation: answers to a hosted session's feed its
// tally and roster; an accepted invitation to someone else's session makes
// this node join it; one that answers a host request this node made is
// accepted.
func (s *Service) changed(r invitations.Record) {
	if r.SessionID == "" {
		return
	}
	if r.Direction == invitations.Received && r.State == invitations.Pending {
		s.acceptAsked(r)
		return
	}
	if !r.State.Answered() {
		return
	}
	if r.Direction == invitations.Sent {
		x, ok := s.lookup(r.SessionID)
		if !ok || !x.hosting {
			return
		}
		x.mu.Lock()
		if x.h.Standing()[r.Peer] != session.Invited {
			x.mu.Unlock()
			return
		}
		fx, err := x.h.Answer(r.Peer, standingOf[r.State])
		if err != nil {
			x.mu.Unlock()
			return
		}
		after := x.hostEffectsLocked(fx)
		x.mu.Unlock()
		after()
		return
	}
	if r.State != invitations.Accepted || s.closed() {
		return
	}
	x := newSess(s, r.SessionID, r.AppID, r.Peer, false)
	x.invitationID = r.ID
	s.mu.Lock()
	if _, known := s.sessions[x.id]; known {
		s.mu.Unlock()
		return
	}
	s.sessions[x.id] = x
	s.mu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.changedLocked()
	x.applyLocked(x.p.Resume())
}

// acceptAsked accepts an invitation that answers a host request this node
// made.
func (s *Service) acceptAsked(r invitations.Record) {
	key := askKey{r.Peer, r.AppID}
	s.mu.Lock()
	at, ok := s.asked[key]
	if ok {
		delete(s.asked, key)
	}
	s.mu.Unlock()
	if !ok || time.Since(at) > askedFor {
		return
	}
	if _, err := s.cfg.Invitations.Accept(r.ID); err != nil {
		log.Warnw("accept the invitation of a host request", "invitation", r.ID, "error", err)
	}
}
