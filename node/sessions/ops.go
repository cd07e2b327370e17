package sessions

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/protocols/invite"
	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// Create hosts a new session for an application. It starts Forming, with
// this node its only member.
func (s *Service) Create(app string) (View, error) {
	if err := checkApp(app); err != nil {
		return View{}, err
	}
	id := invite.NewID()
	me := s.cfg.Host.ID()
	s.mu.Lock()
	defer s.mu.Unlock()
	x := newSess(s, id, app, me, true)
	x.h = session.NewHost(id, app, me)
	x.tag = psession.NewTopicTag()
	x.setRosterLocked(x.h.Roster())
	x.addKeyLocked(psession.NewKey(x.roster.Epoch))
	x.me, x.joined = session.Member, true
	if err := x.joinTopicLocked(); err != nil {
		return View{}, err
	}
	s.sessions[id] = x
	x.changedLocked()
	log.Infow("hosting session", "session", id, "application", app)
	return x.viewLocked(), nil
}

// hosted returns a session this node hosts.
func (s *Service) hostedLocked(id string) (*sess, error) {
	x, err := s.findLocked(id)
	if err != nil {
		return nil, err
	}
	if !x.hosting {
		return nil, ErrNotHost
	}
	return x, nil
}

// apply carries out the effects of a host operation: a new key, a roster
// to publish, invitations to cancel. It is called with the lock held and
// returns what must be done after it is released.
func (x *sess) applyLocked(fx session.Effects) (after func()) {
	var msgs []*pb.SessionTopicMessage
	if fx.Rekey && fx.Roster != nil {
		x.addKeyLocked(psession.NewKey(fx.Roster.Epoch))
	}
	if fx.Roster != nil {
		x.setRosterLocked(*fx.Roster)
		msgs = append(msgs, rosterMessage(*fx.Roster))
	}
	x.changedLocked()
	if fx.Roster != nil && fx.Roster.State == session.Ended {
		x.s.goLeaveLater(x)
	}
	cancel := fx.Cancel
	return func() {
		for _, m := range msgs {
			x.s.goPublish(x, m)
		}
		for _, id := range cancel {
			if _, err := x.s.cfg.Invitations.Cancel(id); err != nil {
				log.Debugw("cancel invitation", "session", x.id, "invitation", id, "error", err)
			}
		}
	}
}

// op runs a host operation on session id.
func (s *Service) op(id string, fn func(x *sess) (session.Effects, error)) (View, error) {
	s.mu.Lock()
	x, err := s.hostedLocked(id)
	if err != nil {
		s.mu.Unlock()
		return View{}, err
	}
	fx, err := fn(x)
	if err != nil {
		s.mu.Unlock()
		return View{}, err
	}
	after := x.applyLocked(fx)
	v := x.viewLocked()
	s.mu.Unlock()
	after()
	return v, nil
}

// Invite invites peers to a hosted session (while it forms or runs).
func (s *Service) Invite(id string, peers []peer.ID, message string, expiry time.Duration) (View, []invitations.Record, error) {
	s.mu.Lock()
	x, err := s.hostedLocked(id)
	if err != nil {
		s.mu.Unlock()
		return View{}, nil, err
	}
	fx, err := x.h.Invite(peers)
	sid, app := x.id, x.app
	s.mu.Unlock()
	if err != nil {
		return View{}, nil, err
	}
	if len(fx.Invite) == 0 {
		v, err := s.Get(sid)
		return v, nil, err
	}
	recs, err := s.cfg.Invitations.Send(fx.Invite, invitations.Request{AppID: app, Message: message, Expiry: expiry, SessionID: sid})
	if err != nil {
		return View{}, nil, err
	}
	s.mu.Lock()
	for _, r := range recs {
		x.h.Invited(r.Peer, r.ID)
	}
	x.changedLocked()
	s.mu.Unlock()
	v, err := s.Get(sid)
	return v, recs, err
}

// CancelUnanswered cancels the session's invitations that have no answer.
func (s *Service) CancelUnanswered(id string) (View, error) {
	return s.op(id, func(x *sess) (session.Effects, error) { return x.h.CancelUnanswered() })
}

// Start starts a hosted session with the members who accepted.
func (s *Service) Start(id string) (View, error) {
	return s.op(id, func(x *sess) (session.Effects, error) { return x.h.Start() })
}

// Remove takes a member out of a hosted session; the key changes, so that
// it reads nothing that follows. The removed member is no longer sent the
// topic's messages: it is handed the roster that no longer names it (the
// members it knew, less itself), and nothing after.
func (s *Service) Remove(id string, p peer.ID) (View, error) {
	v, err := s.op(id, func(x *sess) (session.Effects, error) { return x.h.Remove(p) })
	if err != nil {
		return v, err
	}
	s.mu.Lock()
	x := s.sessions[v.ID]
	m, closed := rosterMessage(x.roster), s.closed
	s.mu.Unlock()
	if !closed {
		s.goDeliver(x, p, m)
	}
	return v, nil
}

// End ends a hosted session.
func (s *Service) End(id string) (View, error) {
	return s.op(id, func(x *sess) (session.Effects, error) { return x.h.End() })
}

// Send sends an application message to the session's members. It needs a
// running session that this node has joined.
func (s *Service) Send(ctx context.Context, id string, payload []byte) (Message, error) {
	if len(payload) > psession.MaxPayload {
		return Message{}, psession.ErrTooLarge
	}
	s.mu.Lock()
	x, err := s.findLocked(id)
	if err != nil {
		s.mu.Unlock()
		return Message{}, err
	}
	switch {
	case x.roster.State == session.Ended:
		err = ErrEnded
	case !x.joined || x.me != session.Member:
		err = ErrNotJoined
	case x.roster.State != session.Running:
		err = ErrNotRunning
	}
	if err != nil {
		s.mu.Unlock()
		return Message{}, err
	}
	key, ok := x.keys[x.roster.Epoch]
	if !ok {
		// The roster moved to a new epoch a moment ago; its key is being
		// fetched. Wait for it a little.
		s.mu.Unlock()
		s.goJoin(x)
		deadline := time.Now().Add(keyWait)
		for !ok && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
			s.mu.Lock()
			key, ok = x.keys[x.roster.Epoch]
			s.mu.Unlock()
		}
		if !ok {
			return Message{}, ErrNoKey
		}
		s.mu.Lock()
	}
	x.mySeq++
	x.saveProgressLocked() // a sequence number is never used twice, even across a crash
	me := s.cfg.Host.ID()
	d, err := psession.Seal(x.id, s.cfg.Sign, me, x.mySeq, key, payload)
	if err != nil {
		s.mu.Unlock()
		return Message{}, err
	}
	_, _ = x.receiveLocked(d) // our own copy: the log, and delivery in order
	relay := !x.hosting && !hostInMesh(x)
	s.mu.Unlock()
	s.goPublish(x, &pb.SessionTopicMessage{Msg: &pb.SessionTopicMessage_Data{Data: d}})
	if relay {
		s.goPost(x, d)
	}
	return Message{Session: x.id, Sender: me, Seq: d.Seq, Data: payload, Time: time.Now().UTC()}, nil
}

// keyWait is how long Send waits for the key of a new epoch.
const keyWait = 3 * time.Second

// hostInMesh reports whether the host is among the topic's peers: if not
// (a limited relayed connection, say), messages go to the host directly.
func hostInMesh(x *sess) bool {
	if x.topic == nil {
		return false
	}
	for _, p := range x.topic.ListPeers() {
		if p == x.host {
			return true
		}
	}
	return false
}

// goPost hands a message to the host in the background.
func (s *Service) goPost(x *sess, d *pb.SessionData) {
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, psession.Timeout)
		defer cancel()
		if err := s.cfg.Connect(ctx, x.host); err != nil {
			log.Debugw("reach the host", "session", x.id, "error", err)
			return
		}
		resp, err := psession.Request(ctx, s.cfg.Host, x.host, &pb.SessionRequest{SessionId: x.id, Msg: &pb.SessionRequest_Post{Post: &pb.SessionPost{Data: d}}})
		if err == nil {
			err = psession.Check(resp)
		}
		if err != nil {
			log.Debugw("post to host", "session", x.id, "error", err)
		}
	})
}

// Leave leaves a joined session: the host is told, and this node stops
// following it.
func (s *Service) Leave(ctx context.Context, id string) (View, error) {
	s.mu.Lock()
	x, err := s.findLocked(id)
	if err != nil {
		s.mu.Unlock()
		return View{}, err
	}
	if x.hosting {
		s.mu.Unlock()
		return View{}, ErrIsHost
	}
	host, sid := x.host, x.id
	x.me = session.Left
	x.changedLocked()
	v := x.viewLocked()
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, psession.Timeout)
	defer cancel()
	resp, err := psession.Request(ctx, s.cfg.Host, host, &pb.SessionRequest{SessionId: sid, Msg: &pb.SessionRequest_Leave{Leave: &pb.SessionLeave{}}})
	if err == nil {
		err = psession.Check(resp)
	}
	if err != nil {
		log.Debugw("tell the host we leave", "session", sid, "error", err)
	}
	x.leaveTopic()
	return v, nil
}
