package sessions

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/protocols/pb"
	"github.com/peercollab/peercollab/session"
)

// handler answers the session protocol for the service.
type handler struct{ s *Service }

func status(st pb.SessionResponse_Status) *pb.SessionResponse { return &pb.SessionResponse{Status: st} }

// Join hands a member the roster, keys and topic tag. An invited peer that
// names its invitation is taken as having accepted it (its answer may still
// be on its way). A peer that was never invited is told UNKNOWN, as if there
// were no such session; one that was invited but is no member (declined,
// removed, left) NOT_MEMBER; neither hears anything else of the session.
func (h handler) Join(from peer.ID, sid, invitationID string) *pb.SessionResponse {
	s := h.s
	s.mu.Lock()
	x, ok := s.sessions[sid]
	if !ok || !x.hosting {
		s.mu.Unlock()
		return status(pb.SessionResponse_UNKNOWN)
	}
	standing, party := x.h.Standing()[from]
	switch {
	case !party || from == x.host:
		s.mu.Unlock()
		return status(pb.SessionResponse_UNKNOWN)
	case x.roster.State == session.Ended:
		s.mu.Unlock()
		return status(pb.SessionResponse_ENDED)
	}
	after := func() {}
	if standing == session.Invited && invitationID != "" && x.h.Snapshot().Invites[from.String()] == invitationID {
		fx, err := x.h.Answer(from, session.Member)
		if err == nil {
			after = x.applyLocked(fx)
		}
	}
	if !x.roster.IsMember(from) {
		s.mu.Unlock()
		return status(pb.SessionResponse_NOT_MEMBER)
	}
	resp := &pb.SessionResponse{Status: pb.SessionResponse_OK, Roster: rosterMessage(x.roster).GetRoster(), Keys: x.currentKeysLocked(),
		TopicTag: x.tag}
	s.mu.Unlock()
	after()
	return resp
}

// Fetch returns messages of the log to a current member; anyone else is
// told UNKNOWN, whether this node has the session or not.
func (h handler) Fetch(from peer.ID, sid string, sender peer.ID, first, last uint64) *pb.SessionResponse {
	s := h.s
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.sessions[sid]
	if !ok || !x.roster.IsMember(from) {
		return status(pb.SessionResponse_UNKNOWN)
	}
	resp := status(pb.SessionResponse_OK)
	for seq := first; seq <= last; seq++ {
		if d, ok := x.log[sender][seq]; ok {
			resp.Messages = append(resp.Messages, d)
		}
	}
	return resp
}

// Post publishes a member's message for it.
func (h handler) Post(from peer.ID, sid string, d *pb.SessionData) *pb.SessionResponse {
	s := h.s
	s.mu.Lock()
	x, ok := s.sessions[sid]
	if !ok || !x.hosting || !x.roster.IsMember(from) {
		s.mu.Unlock()
		return status(pb.SessionResponse_UNKNOWN)
	}
	if peer.ID(d.GetSender()) != from {
		s.mu.Unlock()
		return &pb.SessionResponse{Status: pb.SessionResponse_INVALID, Detail: "a member posts its own messages only"}
	}
	x.receiveLocked(d)
	s.mu.Unlock()
	s.goPublish(x, &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: d}})
	return status(pb.SessionResponse_OK)
}

// Leave takes a member that leaves out of the roster.
func (h handler) Leave(from peer.ID, sid string) *pb.SessionResponse {
	s := h.s
	s.mu.Lock()
	x, ok := s.sessions[sid]
	if !ok || !x.hosting {
		s.mu.Unlock()
		return status(pb.SessionResponse_UNKNOWN)
	}
	if _, party := x.h.Standing()[from]; !party {
		s.mu.Unlock()
		return status(pb.SessionResponse_UNKNOWN)
	}
	fx, err := x.h.Leave(from)
	if err != nil {
		s.mu.Unlock()
		return status(pb.SessionResponse_NOT_MEMBER)
	}
	after := x.applyLocked(fx)
	s.mu.Unlock()
	after()
	return status(pb.SessionResponse_OK)
}

// Deliver takes a topic message the host handed over directly (this node
// is not on the topic's mesh).
func (h handler) Deliver(from peer.ID, sid string, tm *pb.SessionTopicMessage) *pb.SessionResponse {
	s := h.s
	s.mu.Lock()
	x, ok := s.sessions[sid]
	s.mu.Unlock()
	if !ok || x.hosting || from != x.host {
		return status(pb.SessionResponse_UNKNOWN)
	}
	if d := tm.GetData(); d != nil && !x.IsMember(peer.ID(d.GetSender())) {
		return status(pb.SessionResponse_NOT_MEMBER)
	}
	s.handleTopic(x, tm, from)
	return status(pb.SessionResponse_OK)
}

// standingOf maps an answered invitation to a session standing.
var standingOf = map[invitations.State]session.Standing{
	invitations.Accepted:  session.Member,
	invitations.Declined:  session.Declined,
	invitations.Expired:   session.Expired,
	invitations.Cancelled: session.Cancelled,
	invitations.Error:     session.Failed,
}

// Changed follows the invitations: answers to a hosted session's feed its
// tally and roster; an accepted invitation to someone else's session makes
// this node join it. It is invitations.Config.Changed.
func (s *Service) Changed(r invitations.Record) {
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
	s.mu.Lock()
	x, known := s.sessions[r.SessionID]
	if r.Direction == invitations.Sent {
		if !known || !x.hosting || x.h.Standing()[r.Peer] != session.Invited {
			s.mu.Unlock()
			return
		}
		fx, err := x.h.Answer(r.Peer, standingOf[r.State])
		if err != nil {
			s.mu.Unlock()
			return
		}
		after := x.applyLocked(fx)
		s.mu.Unlock()
		after()
		return
	}
	if r.State != invitations.Accepted || known || s.closed {
		s.mu.Unlock()
		return
	}
	x = newSess(s, r.SessionID, r.AppID, r.Peer, false)
	x.invitationID = r.ID
	s.sessions[x.id] = x
	x.changedLocked()
	s.mu.Unlock()
	s.goJoin(x)
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
