package sessions

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/internal/retry"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// read takes the messages of a session's topic from its validator.
func (x *sess) read(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-x.taken:
			x.handleTopic(*m.m, m.from)
		}
	}
}

// handleTopic takes a topic message, from the topic or delivered by the
// host over a stream; from is who published it.
func (x *sess) handleTopic(tm psession.TopicMessage, from peer.ID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch {
	case tm.Data != nil:
		x.takeLocked(tm.Data, from)
	case tm.Roster != nil && !x.hosting:
		if r := fromWire(*tm.Roster); validRoster(r, x.id, x.host) {
			x.applyLocked(x.p.RosterSeen(r))
		}
	case tm.Heartbeat != nil && !x.hosting:
		if x.p.Joined() {
			for p, seq := range tm.Heartbeat.Highest {
				x.order.Saw(p, seq)
			}
			x.catchUpHostLocked(tm.Heartbeat.Highest[x.me])
		}
		x.applyLocked(x.p.HeartbeatSeen(tm.Heartbeat.Version))
	}
}

// maxCatchUp bounds the messages a member hands its host at one heartbeat.
const maxCatchUp = 64

// catchUpHostLocked hands the host, directly, this node's own messages
// after the highest the host's heartbeat says it has: the last messages a
// host missed (it restarted, or had not joined the topic's mesh again yet)
// would otherwise reach it, and the members it passes them on to, only
// when this node sends again.
func (x *sess) catchUpHostLocked(highest uint64) {
	mine := x.log[x.me]
	for seq := highest + 1; seq <= x.mySeq && seq <= highest+maxCatchUp; seq++ {
		if d, ok := mine[seq]; ok {
			x.directLocked(x.host, direct{m: dataMessage(d), post: true})
		}
	}
}

// takeLocked is where every data message of another sender comes in,
// whichever way it came (the topic, the host's Deliver, a member's Post, a
// repair), checked on its way as the protocol checks it: it is kept for
// repairs and delivered when it is in order. A host passes a member's new
// message on to all members at once (gossipsub alone forwards it to only a
// few mesh peers; the rest would wait a heartbeat for gossip), before it
// stores it. A message of an epoch this node has no key for waits in the
// log until the key comes (see replayLocked), and the key is asked for.
func (x *sess) takeLocked(d *psession.Data, from peer.ID) {
	fresh := x.keepLocked(d)
	if fresh && x.hosting && from != x.me {
		x.publishLocked(dataMessage(d))
	}
	if _, ok := x.keys[d.Epoch]; !ok {
		x.order.Saw(d.Sender, d.Seq)
		if !x.hosting {
			x.applyLocked(x.p.KeyMissing(d.Epoch))
		}
		return
	}
	x.deliverLocked(x.order.Add(d.Sender, d.Seq, d), nil, nil)
}

// replayLocked delivers the logged messages that were waiting for a key.
func (x *sess) replayLocked() {
	for sender, msgs := range x.log {
		for {
			d, ok := msgs[x.order.Next(sender)]
			if !ok {
				break
			}
			if _, have := x.keys[d.Epoch]; !have {
				break
			}
			x.deliverLocked(x.order.Add(sender, d.Seq, d), nil, nil)
		}
	}
}

// applyLocked carries out the effects of a member's input (see
// session.Participant).
func (x *sess) applyLocked(fx session.ParticipantEffects) {
	x.roster = x.p.Roster()
	x.syncViewLocked()
	if fx.Follow {
		if err := x.joinTopicLocked(); err != nil {
			x.err = err.Error()
		}
	}
	if fx.Replay {
		x.replayLocked()
	}
	if fx.Changed {
		x.changedLocked()
	}
	if fx.Unfollow {
		x.leaveLaterLocked()
	}
	if fx.Join {
		x.joinLocked()
	}
}

// tick runs a session's periodic work: a host's heartbeat, everyone's
// repairs, and asking for a key that is missing.
func (x *sess) tick(ctx context.Context) {
	hb := time.NewTicker(x.s.cfg.Heartbeat)
	defer hb.Stop()
	rp := time.NewTicker(repairEvery)
	defer rp.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			x.mu.Lock()
			if x.hosting && x.roster.State != session.Ended {
				x.publishLocked(x.heartbeatLocked())
			}
			x.mu.Unlock()
		case <-rp.C:
			x.syncLog()
			x.repair(ctx)
		case e := <-x.keyNeeded:
			x.mu.Lock()
			if !x.hosting {
				x.applyLocked(x.p.KeyMissing(e))
			}
			x.mu.Unlock()
		}
	}
}

func (x *sess) heartbeatLocked() psession.TopicMessage {
	hb := &psession.Heartbeat{Session: x.id, Version: x.roster.Version, Highest: make(map[peer.ID]uint64, len(x.highest))}
	for p, seq := range x.highest {
		hb.Highest[p] = seq
	}
	return psession.TopicMessage{Heartbeat: hb}
}

// repair asks for the messages this node misses: from the host, then from
// the sender, then from any other member. A gap open for giveUpAfter is
// declared lost and skipped.
func (x *sess) repair(ctx context.Context) {
	x.mu.Lock()
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
			x.progressStale = true
			x.deliverLocked(x.order.Skip(g.Sender, g.To+1), nil, nil)
			x.saveProgressLocked()
			x.s.cfg.Hub.Publish(EvtLost, g)
			continue
		}
		ask = append(ask, g)
	}
	for g := range x.gaps {
		if !slices.Contains(gaps, g) {
			delete(x.gaps, g)
		}
	}
	sources := append([]peer.ID{x.host}, x.roster.Members...)
	x.mu.Unlock()
	for _, g := range ask {
		tried := map[peer.ID]bool{x.me: true}
		for _, src := range append([]peer.ID{x.host, g.Sender}, sources...) {
			if tried[src] {
				continue
			}
			tried[src] = true
			if x.fetch(ctx, src, g) {
				break
			}
		}
	}
}

// fetch asks src for a gap; it reports whether src had all of it.
func (x *sess) fetch(ctx context.Context, src peer.ID, g session.Gap) bool {
	ctx, cancel := context.WithTimeout(ctx, psession.Timeout)
	defer cancel()
	ds, err := psession.Fetch(ctx, x.s.cfg.Host, src, x.id, g.Sender, g.From, g.To)
	if err != nil {
		log.Debugw("fetch", "session", x.id, "peer", src, "error", err)
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := range ds {
		x.takeLocked(&ds[i], src)
	}
	return uint64(len(ds)) >= g.To-g.From+1
}

// joinLocked asks the host for the roster and keys in the background,
// until it answers (once at a time per session).
func (x *sess) joinLocked() {
	if x.hosting || x.joining {
		return
	}
	x.joining = x.s.spawn(func() {
		defer func() {
			x.mu.Lock()
			x.joining = false
			x.mu.Unlock()
		}()
		backoff := retry.New(100*time.Millisecond, 30*time.Second)
		for {
			done, err := x.join(x.s.ctx)
			if done {
				return
			}
			x.mu.Lock()
			x.err = err.Error()
			x.mu.Unlock()
			if !backoff.Wait(x.s.ctx) {
				return
			}
		}
	})
}

// errBadAnswer means the host's answer to a join does not hold together.
var errBadAnswer = errors.New("sessions: the host's answer to a join is malformed")

// join makes one attempt; done means nothing more to try.
func (x *sess) join(ctx context.Context) (done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, psession.Timeout)
	defer cancel()
	if err := x.s.cfg.Connect(ctx, x.host); err != nil {
		return false, err
	}
	x.mu.Lock()
	inv := x.invitationID
	x.mu.Unlock()
	j, err := psession.Join(ctx, x.s.cfg.Host, x.host, x.id, inv)
	var moved func()
	defer func() {
		if moved != nil {
			moved()
		}
	}()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.s.closed() {
		return true, nil
	}
	switch {
	case errors.Is(err, psession.ErrEnded):
		x.applyLocked(x.p.Refused(session.RefusedEnded))
		return true, nil
	case errors.Is(err, psession.ErrNotMember), errors.Is(err, psession.ErrUnknown):
		x.err = err.Error()
		x.applyLocked(x.p.Refused(session.RefusedNotMember))
		return true, nil
	case errors.Is(err, psession.ErrBadAnswer):
		return false, errBadAnswer
	case err != nil:
		return false, err
	}
	r := fromWire(j.Roster)
	if !r.IsMember(x.me) {
		return false, errBadAnswer
	}
	if x.tag != j.TopicTag && x.topic != nil {
		// The host's topic is not the one this node follows (the host
		// came back from a record without a tag): move over.
		t, unrelay, stop := x.topic, x.unrelay, x.cancel
		x.s.byTopic.CompareAndDelete(x.tag, x)
		x.topic, x.unrelay, x.cancel, x.out = nil, nil, nil, nil
		moved = func() {
			stop()
			unrelay()
			t.Close()
			x.s.cfg.PubSub.UnregisterTopicValidator(t.String())
		}
	}
	epochs := make([]uint32, 0, len(j.Keys))
	for _, k := range j.Keys {
		epochs = append(epochs, k.Epoch)
	}
	wasJoined := x.p.Joined()
	fx, err := x.p.Admitted(r, epochs)
	if err != nil {
		return false, errBadAnswer
	}
	if fx == (session.ParticipantEffects{}) {
		return true, nil // this node left meanwhile
	}
	x.tag = j.TopicTag
	for _, k := range j.Keys {
		x.addKeyLocked(k)
	}
	x.err = ""
	x.applyLocked(fx)
	if x.err != "" {
		return false, errors.New(x.err)
	}
	if !wasJoined {
		log.Infow("joined session", "session", x.id, "host", x.host)
	}
	return true, nil
}
