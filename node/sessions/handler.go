package sessions

import (
	"github.com/libp2p/go-libp2p/core/peer"

	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// handler answers the session protocol for the service; each method runs
// on the goroutine of its stream.
type handler struct{ s *Service }

// hosted returns the session sid when this node hosts it.
func (h handler) hosted(sid string) (*sess, bool) {
	x, ok := h.s.lookup(sid)
	return x, ok && x.hosting
}

// Join hands a member the roster, keys and topic tag. An invited peer that
// names its invitation is taken as having accepted it (its answer may still
// be on its way). A peer that was never invited is told UNKNOWN, as if there
// were no such session; one that was invited but is no member (declined,
// removed, left) NOT_MEMBER; neither hears anything else of the session.
func (h handler) Join(from peer.ID, sid, invitationID string) (psession.Joined, error) {
	x, ok := h.hosted(sid)
	if !ok {
		return psession.Joined{}, psession.ErrUnknown
	}
	after := func() {}
	defer func() { after() }() // once the lock is released
	x.mu.Lock()
	defer x.mu.Unlock()
	standing, party := x.h.Standing()[from]
	switch {
	case !party || from == x.host:
		return psession.Joined{}, psession.ErrUnknown
	case x.roster.State == session.Ended:
		return psession.Joined{}, psession.ErrEnded
	}
	if standing == session.Invited && invitationID != "" && x.h.Snapshot().Invites[from.String()] == invitationID {
		if fx, err := x.h.Answer(from, session.Member); err == nil {
			after = x.hostEffectsLocked(fx)
		}
	}
	if !x.roster.IsMember(from) {
		return psession.Joined{}, psession.ErrNotMember
	}
	return psession.Joined{Roster: toWire(x.roster), Keys: x.currentKeysLocked(), TopicTag: x.tag}, nil
}

// currentKeysLocked are the keys handed to a member: the current epoch's
// and the one before, for messages still in flight.
func (x *sess) currentKeysLocked() []psession.Key {
	var out []psession.Key
	for _, e := range []uint32{x.roster.Epoch, x.roster.Epoch - 1} {
		if k, ok := x.keys[e]; ok {
			out = append(out, k)
		}
	}
	return out
}

// Fetch returns messages of the log to a current member; anyone else is
// told UNKNOWN, whether this node has the session or not.
func (h handler) Fetch(from peer.ID, sid string, sender peer.ID, first, last uint64) ([]psession.Data, error) {
	x, ok := h.s.lookup(sid)
	if !ok {
		return nil, psession.ErrUnknown
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.roster.IsMember(from) {
		return nil, psession.ErrUnknown
	}
	var out []psession.Data
	for seq := first; seq <= last; seq++ {
		if d, ok := x.log[sender][seq]; ok {
			out = append(out, *d)
		}
	}
	return out, nil
}

// Post takes a member's own message for the host to publish.
func (h handler) Post(from peer.ID, d psession.Data) error {
	x, ok := h.hosted(d.Session)
	if !ok || !x.IsMember(from) {
		return psession.ErrUnknown
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.takeLocked(&d, from)
	return nil
}

// Leave takes a member that leaves out of the roster.
func (h handler) Leave(from peer.ID, sid string) error {
	x, ok := h.hosted(sid)
	if !ok {
		return psession.ErrUnknown
	}
	x.mu.Lock()
	if _, party := x.h.Standing()[from]; !party {
		x.mu.Unlock()
		return psession.ErrUnknown
	}
	fx, err := x.h.Leave(from)
	if err != nil {
		x.mu.Unlock()
		return psession.ErrNotMember
	}
	after := x.hostEffectsLocked(fx)
	x.mu.Unlock()
	after()
	return nil
}

// Deliver takes a topic message the host handed over directly (this node
// is not on the topic's mesh).
func (h handler) Deliver(from peer.ID, sid string, tm psession.TopicMessage) error {
	x, ok := h.s.lookup(sid)
	if !ok || x.hosting || from != x.host {
		return psession.ErrUnknown
	}
	if d := tm.Data; d != nil && !x.IsMember(d.Sender) {
		return psession.ErrNotMember
	}
	x.handleTopic(tm, from)
	return nil
}
