package sessions

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/protocols/invite"
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
	x := newSess(s, id, app, s.cfg.Host.ID(), true)
	x.mu.Lock()
	x.h = session.NewHost(id, app, x.me)
	x.tag = psession.NewTopicTag()
	x.setRosterLocked(x.h.Roster())
	x.addKeyLocked(psession.NewKey(x.roster.Epoch))
	if err := x.joinTopicLocked(); err != nil {
		x.mu.Unlock()
		return View{}, err
	}
	x.changedLocked()
	v := x.viewLocked()
	x.mu.Unlock()
	s.mu.Lock()
	s.sessions[id] = x
	s.mu.Unlock()
	log.Infow("hosting session", "session", id, "application", app)
	return v, nil
}

// hosted returns a session this node hosts, by ID or prefix.
func (s *Service) hosted(id string) (*sess, error) {
	x, err := s.find(id)
	if err != nil {
		return nil, err
	}
	if !x.hosting {
		return nil, ErrNotHost
	}
	return x, nil
}

// hostEffectsLocked carries out the effects of a host operation: a new
// key, a roster to publish, the session stored and its change told. It
// returns what must be done once the lock is released: cancelling
// invitations.
func (x *sess) hostEffectsLocked(fx session.Effects) (after func()) {
	if fx.Rekey && fx.Roster != nil {
		x.addKeyLocked(psession.NewKey(fx.Roster.Epoch))
	}
	if fx.Roster != nil {
		x.setRosterLocked(*fx.Roster)
		x.publishLocked(rosterMessage(*fx.Roster))
	}
	x.changedLocked()
	if fx.Roster != nil && fx.Roster.State == session.Ended {
		x.leaveLaterLocked()
	}
	cancel := fx.Cancel
	if len(cancel) == 0 {
		return func() {}
	}
	return func() {
		for _, id := range cancel {
			if _, err := x.s.cfg.Invitations.Cancel(id); err != nil {
				log.Debugw("cancel invitation", "session", x.id, "invitation", id, "error", err)
			}
		}
	}
}

// op runs a host operation on session id.
func (s *Service) op(id string, fn func(x *sess) (session.Effects, error)) (View, error) {
	x, err := s.hosted(id)
	if err != nil {
		return View{}, err
	}
	x.mu.Lock()
	fx, err := fn(x)
	if err != nil {
		x.mu.Unlock()
		return View{}, err
	}
	after := x.hostEffectsLocked(fx)
	x.mu.Unlock()
	after()
	return s.viewOf(x), nil
}

// Invite invites peers to a hosted session (while it forms or runs).
func (s *Service) Invite(id string, peers []peer.ID, message string, expiry time.Duration) (View, []invitations.Record, error) {
	targets := make([]invitations.Target, len(peers))
	for i, p := range peers {
		targets[i] = invitations.Target{Peer: p}
	}
	return s.InviteTo(id, targets, message, expiry)
}

// InviteTo is Invite with targets: the devices of one person (Target.Person)
// are invited as one, the first acceptance answering for the person and the
// others' invitations withdrawn (see invitations.Service.SendTo), which
// their standing in the session then shows (cancelled).
func (s *Service) InviteTo(id string, targets []invitations.Target, message string, expiry time.Duration) (View, []invitations.Record, error) {
	x, err := s.hosted(id)
	if err != nil {
		return View{}, nil, err
	}
	peers := make([]peer.ID, len(targets))
	for i, t := range targets {
		peers[i] = t.Peer
	}
	x.mu.Lock()
	fx, err := x.h.Invite(peers)
	x.mu.Unlock()
	if err != nil {
		return View{}, nil, err
	}
	if len(fx.Invite) == 0 {
		return s.viewOf(x), nil, nil
	}
	targets = slices.DeleteFunc(targets, func(t invitations.Target) bool { return !slices.Contains(fx.Invite, t.Peer) })
	recs, err := s.cfg.Invitations.SendTo(targets, invitations.Request{AppID: x.app, Message: message, Expiry: expiry, SessionID: x.id})
	if err != nil {
		return View{}, nil, err
	}
	x.mu.Lock()
	for _, r := range recs {
		x.h.Invited(r.Peer, r.ID)
	}
	x.changedLocked()
	x.mu.Unlock()
	return s.viewOf(x), recs, nil
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
	return s.op(id, func(x *sess) (session.Effects, error) {
		fx, err := x.h.Remove(p)
		if err == nil && fx.Roster != nil {
			x.directLocked(p, direct{m: rosterMessage(*fx.Roster)})
		}
		return fx, err
	})
}

// End ends a hosted session.
func (s *Service) End(id string) (View, error) {
	return s.op(id, func(x *sess) (session.Effects, error) { return x.h.End() })
}

// keyWait is how long Send waits for the key of a new epoch.
const keyWait = 3 * time.Second

// Send sends an application message to the session's members. It needs a
// running session that this node has joined. When the roster moved to an
// epoch whose key has not arrived yet, it waits for the key a little.
func (s *Service) Send(ctx context.Context, id string, payload []byte) (Message, error) {
	if len(payload) > psession.MaxPayload {
		return Message{}, psession.ErrTooLarge
	}
	x, err := s.find(id)
	if err != nil {
		return Message{}, err
	}
	deadline := time.NewTimer(keyWait)
	defer deadline.Stop()
	x.mu.Lock()
	for {
		if err := x.sendableLocked(); err != nil {
			x.mu.Unlock()
			return Message{}, err
		}
		if _, ok := x.keys[x.roster.Epoch]; ok {
			break
		}
		// The roster moved to a new epoch a moment ago; its key is being
		// fetched.
		if !x.hosting {
			x.applyLocked(x.p.KeyMissing(x.roster.Epoch))
		}
		added := x.keyAdded
		x.mu.Unlock()
		select {
		case <-added:
		case <-deadline.C:
			return Message{}, ErrNoKey
		case <-ctx.Done():
			return Message{}, ErrNoKey
		}
		x.mu.Lock()
	}
	defer x.mu.Unlock()
	key := x.keys[x.roster.Epoch]
	seq := x.mySeq + 1
	d, err := psession.Seal(x.id, s.cfg.Sign, x.me, seq, key, payload)
	if err != nil {
		return Message{}, err
	}
	x.mySeq = seq
	// This node's own copy: the log (for repairs), and delivery in order,
	// stored with the new sequence number before anyone hears of it.
	x.keepLocked(&d)
	x.order.Start(x.me, seq)
	out := x.deliverLocked(x.order.Add(x.me, seq, &d), &d, payload)
	x.publishLocked(dataMessage(&d))
	if !x.hosting && !x.hostInMeshLocked() {
		x.directLocked(x.host, direct{m: dataMessage(&d), post: true})
	}
	if i := slices.IndexFunc(out, func(m Message) bool { return m.Sender == x.me && m.Seq == seq }); i >= 0 {
		return out[i], nil
	}
	return Message{Session: x.id, Sender: x.me, Seq: seq, Data: payload, Time: time.Now().UTC()}, nil
}

// sendableLocked says whether this node may send in the session now.
func (x *sess) sendableLocked() error {
	if x.hosting {
		switch x.roster.State {
		case session.Ended:
			return ErrEnded
		case session.Running:
			return nil
		}
		return ErrNotRunning
	}
	switch err := x.p.Sendable(); {
	case errors.Is(err, session.ErrEnded):
		return ErrEnded
	case errors.Is(err, session.ErrNotJoined):
		return ErrNotJoined
	case errors.Is(err, session.ErrNotRunning):
		return ErrNotRunning
	default:
		return err
	}
}

// hostInMeshLocked reports whether the host is among the topic's peers: if
// not (a limited relayed connection, say), messages go to the host
// directly.
func (x *sess) hostInMeshLocked() bool {
	return x.topic != nil && slices.Contains(x.topic.ListPeers(), x.host)
}

// Leave leaves a joined session: the host is told, and this node stops
// following it.
func (s *Service) Leave(ctx context.Context, id string) (View, error) {
	x, err := s.find(id)
	if err != nil {
		return View{}, err
	}
	if x.hosting {
		return View{}, ErrIsHost
	}
	x.mu.Lock()
	fx := x.p.Leave()
	x.applyLocked(session.ParticipantEffects{Changed: fx.Changed})
	v := x.viewLocked()
	x.mu.Unlock()
	if fx.TellHost {
		ctx, cancel := context.WithTimeout(ctx, psession.Timeout)
		err := psession.Leave(ctx, s.cfg.Host, x.host, x.id)
		cancel()
		if err != nil {
			log.Debugw("tell the host we leave", "session", x.id, "error", err)
		}
	}
	if fx.Unfollow {
		x.leaveTopic()
	}
	return v, nil
}
