package sessions

import (
	"context"
	"errors"
	"slices"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/protocols/pb"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// goPublish publishes m on x's topic in the background, sealed in an
// envelope with the key of its epoch (a data message's own, else the
// roster's; without that key it goes out by Deliver only) and sent only to
// the host and the members this node knows. A host also hands it directly
// to the members that are not on the topic's mesh.
func (s *Service) goPublish(x *sess, m *pb.SessionTopicMessage) {
	s.mu.Lock()
	t, closed := x.topic, s.closed
	epoch := x.roster.Epoch
	if d := m.GetData(); d != nil {
		epoch = d.GetEpoch() // a data message travels in an envelope of its own epoch
	}
	key, haveKey := x.keys[epoch]
	var offMesh []peer.ID
	if x.hosting && t != nil {
		mesh := t.ListPeers()
		for _, p := range x.roster.Members {
			if p != x.host && !slices.Contains(mesh, p) {
				offMesh = append(offMesh, p)
			}
		}
	}
	s.mu.Unlock()
	if t == nil || closed {
		return
	}
	if haveKey {
		data, err := psession.SealTopic(x.id, key, m)
		if err != nil {
			log.Errorw("seal a session topic message", "session", x.id, "error", err)
			return
		}
		s.wg.Go(func() {
			ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
			defer cancel()
			if err := psession.Publish(ctx, s.cfg.PubSub, t, data, x.allowed); err != nil && !errors.Is(err, pubsub.ErrTopicClosed) {
				log.Debugw("publish on session topic", "session", x.id, "error", err)
			}
		})
	}
	for _, p := range offMesh {
		s.goDeliver(x, p, m)
	}
}

// goDeliver hands topic message m to peer p over the stream protocol, in
// the background.
func (s *Service) goDeliver(x *sess, p peer.ID, m *pb.SessionTopicMessage) {
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, psession.Timeout)
		defer cancel()
		if err := s.cfg.Connect(ctx, p); err != nil {
			log.Debugw("reach a member off the mesh", "session", x.id, "peer", p, "error", err)
			return
		}
		resp, err := psession.Request(ctx, s.cfg.Host, p, &pb.SessionRequest{SessionId: x.id,
			Msg: &pb.SessionRequest_Deliver{Deliver: &pb.SessionDeliver{Message: m}}})
		if err == nil {
			err = psession.Check(resp)
		}
		if err != nil {
			log.Debugw("deliver to a member off the mesh", "session", x.id, "peer", p, "error", err)
		}
	})
}

// read takes the messages of a session's topic from its validator.
func (s *Service) read(ctx context.Context, x *sess) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-x.taken:
			s.handleTopic(x, m.m, m.from)
		}
	}
}

// handleTopic takes a topic message, from the topic or delivered by the
// host over a stream; from is who published it.
func (s *Service) handleTopic(x *sess, tm *pb.SessionTopicMessage, from peer.ID) {
	s.mu.Lock()
	refresh, pass := false, false
	switch m := tm.GetMsg().(type) {
	case *pb.SessionTopicMessage_Data:
		var fresh bool
		refresh, fresh = x.receiveLocked(m.Data)
		// The host passes every member's message on to all members at
		// once: gossipsub alone forwards it to only a few mesh peers, and
		// the rest would wait a heartbeat for gossip.
		pass = fresh && x.hosting && from != s.cfg.Host.ID()
	case *pb.SessionTopicMessage_Roster:
		if !x.hosting {
			if r, err := rosterFromPB(m.Roster, x.id, x.host); err == nil && r.Version > x.roster.Version {
				refresh = x.newRosterLocked(r)
			}
		}
	case *pb.SessionTopicMessage_Heartbeat:
		if !x.hosting && x.joined {
			for id, seq := range m.Heartbeat.GetHighest() {
				if p, err := peer.Decode(id); err == nil && seq <= psession.MaxSeq {
					x.order.Saw(p, seq)
				}
			}
			refresh = m.Heartbeat.GetVersion() > x.roster.Version
		}
	}
	s.mu.Unlock()
	if refresh {
		s.goJoin(x)
	}
	if pass {
		s.goPublish(x, tm)
	}
}

// newRosterLocked takes a newer roster from the host; it reports whether
// a key must be fetched.
func (x *sess) newRosterLocked(r session.Roster) (needKey bool) {
	x.setRosterLocked(r)
	me := x.s.cfg.Host.ID()
	switch {
	case r.State == session.Ended:
		x.changedLocked()
		x.s.goLeaveLater(x)
		return false
	case !r.IsMember(me) && x.joined:
		if x.me == session.Member {
			x.me = session.Removed
		}
		x.changedLocked()
		x.s.goLeaveLater(x)
		return false
	}
	_, have := x.keys[r.Epoch]
	x.changedLocked()
	return !have
}

// goLeaveLater leaves a finished session's topic after a moment, so that
// what was just published still goes out.
func (s *Service) goLeaveLater(x *sess) {
	s.wg.Go(func() {
		select {
		case <-time.After(2 * time.Second):
		case <-s.ctx.Done():
		}
		x.leaveTopic()
	})
}

// tick runs a session's periodic work: a host's heartbeat, everyone's
// repairs.
func (s *Service) tick(ctx context.Context, x *sess) {
	hb := time.NewTicker(s.cfg.Heartbeat)
	defer hb.Stop()
	rp := time.NewTicker(repairEvery)
	defer rp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			s.mu.Lock()
			var m *pb.SessionTopicMessage
			if x.hosting && x.roster.State != session.Ended {
				m = x.heartbeatLocked()
			}
			s.mu.Unlock()
			if m != nil {
				s.goPublish(x, m)
			}
		case <-rp.C:
			s.repair(ctx, x)
		case <-x.keyNeeded:
			s.goJoin(x)
		}
	}
}

// repair asks for the messages this node misses: from the host, then from
// the sender, then from any other member. A gap open for giveUpAfter is
// declared lost and skipped.
func (s *Service) repair(ctx context.Context, x *sess) {
	s.mu.Lock()
	gaps := x.order.Gaps()
	now := time.Now()
	var ask []session.Gap
	for _, g := range gaps {
		first, seen := x.gaps[g]
		if !seen {
			x.gaps[g] = now
			continue // give gossip a moment first
		}
		if now.Sub(first) > giveUpAfter {
			log.Warnw("messages lost", "session", x.id, "peer", g.Sender, "from", g.From, "to", g.To)
			x.deliverLocked(x.order.Skip(g.Sender, g.To+1))
			s.cfg.Hub.Publish(EvtLost, g)
			continue
		}
		ask = append(ask, g)
	}
	for g := range x.gaps {
		if !contains(gaps, g) {
			delete(x.gaps, g)
		}
	}
	sources := append([]peer.ID{x.host}, x.roster.Members...)
	me := s.cfg.Host.ID()
	s.mu.Unlock()
	for _, g := range ask {
		tried := map[peer.ID]bool{me: true}
		for _, src := range append([]peer.ID{x.host, g.Sender}, sources...) {
			if tried[src] {
				continue
			}
			tried[src] = true
			if s.fetch(ctx, x, src, g) {
				break
			}
		}
	}
}

func contains(gaps []session.Gap, g session.Gap) bool {
	for _, x := range gaps {
		if x == g {
			return true
		}
	}
	return false
}

// fetch asks src for a gap; it reports whether src had all of it.
func (s *Service) fetch(ctx context.Context, x *sess, src peer.ID, g session.Gap) bool {
	ctx, cancel := context.WithTimeout(ctx, psession.Timeout)
	defer cancel()
	resp, err := psession.Request(ctx, s.cfg.Host, src, &pb.SessionRequest{SessionId: x.id,
		Msg: &pb.SessionRequest_Fetch{Fetch: &pb.SessionFetch{Sender: []byte(g.Sender), From: g.From, To: g.To}}})
	if err == nil {
		err = psession.Check(resp)
	}
	if err != nil {
		log.Debugw("fetch", "session", x.id, "from", src, "error", err)
		return false
	}
	got := 0
	s.mu.Lock()
	for _, d := range resp.GetMessages() {
		if psession.CheckData(x.id, d) != nil || peer.ID(d.GetSender()) != g.Sender || d.GetSeq() < g.From || d.GetSeq() > g.To ||
			psession.Verify(d) != nil {
			continue
		}
		x.receiveLocked(d)
		got++
	}
	s.mu.Unlock()
	return uint64(got) >= g.To-g.From+1
}

// goJoin asks the host for the roster and keys in the background, until it
// answers (once at a time per session).
func (s *Service) goJoin(x *sess) {
	s.mu.Lock()
	if s.closed || x.hosting || x.joining {
		s.mu.Unlock()
		return
	}
	x.joining = true
	s.mu.Unlock()
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			x.joining = false
			s.mu.Unlock()
		}()
		backoff := 100 * time.Millisecond
		for {
			done, err := s.join(x)
			if done {
				return
			}
			s.mu.Lock()
			x.err = err.Error()
			s.mu.Unlock()
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	})
}

// errBadAnswer means the host's answer to a join does not hold together.
var errBadAnswer = errors.New("sessions: the host's answer to a join is malformed")

// join makes one attempt; done means nothing more to try.
func (s *Service) join(x *sess) (done bool, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, psession.Timeout)
	defer cancel()
	if err := s.cfg.Connect(ctx, x.host); err != nil {
		return false, err
	}
	s.mu.Lock()
	inv := x.invitationID
	s.mu.Unlock()
	resp, err := psession.Request(ctx, s.cfg.Host, x.host, &pb.SessionRequest{SessionId: x.id,
		Msg: &pb.SessionRequest_Join{Join: &pb.SessionJoin{InvitationId: inv}}})
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if x.hosting || s.closed {
		return true, nil
	}
	switch resp.GetStatus() {
	case pb.SessionResponse_OK:
	case pb.SessionResponse_ENDED:
		x.roster.State = session.Ended
		x.setRosterLocked(x.roster)
		x.changedLocked()
		s.goLeaveLater(x)
		return true, nil
	case pb.SessionResponse_NOT_MEMBER, pb.SessionResponse_UNKNOWN:
		if x.me == session.Member {
			x.me = session.Removed
		} else if x.me == session.Invited {
			x.me = session.Cancelled
		}
		x.err = psession.Check(resp).Error()
		x.changedLocked()
		s.goLeaveLater(x)
		return true, nil
	default:
		return false, psession.Check(resp)
	}
	r, err := rosterFromPB(resp.GetRoster(), x.id, x.host)
	if err != nil || !r.IsMember(s.cfg.Host.ID()) || !psession.ValidTag(resp.GetTopicTag()) {
		return false, errBadAnswer
	}
	var keys []psession.Key
	for _, k := range resp.GetKeys() {
		key, err := psession.KeyFromPB(k)
		if err != nil || key.Epoch == 0 || key.Epoch > r.Epoch {
			return false, errBadAnswer
		}
		keys = append(keys, key)
	}
	if x.tag != resp.GetTopicTag() {
		if x.topic != nil {
			// The host's topic is not the one this node follows (the host
			// came back from a record without a tag): move over.
			s.mu.Unlock()
			x.leaveTopic()
			s.mu.Lock()
		}
		x.tag = resp.GetTopicTag()
	}
	if r.Version >= x.roster.Version {
		x.setRosterLocked(r)
	}
	for _, k := range keys {
		x.addKeyLocked(k)
	}
	first := !x.joined
	x.joined, x.me, x.err = true, session.Member, ""
	if err := x.joinTopicLocked(); err != nil {
		return false, err
	}
	x.replayLocked()
	x.changedLocked()
	if first {
		log.Infow("joined session", "session", x.id, "host", x.host)
	}
	return true, nil
}
