package sessions

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/internal/retry"
	psession "github.com/peercollab/peercollab/protocols/session"
)

// Bounds of a session's outbound traffic. What does not fit is dropped and
// logged: a member repairs a data message it misses from the host or the
// sender, and asks the host again for a roster it missed (heartbeats name
// the roster's version).
const (
	// outboxCap bounds the envelopes waiting to go onto the topic.
	outboxCap = 1024
	// laneCap bounds the messages waiting for one peer that is reached
	// directly; beyond it the oldest goes.
	laneCap = 256
	// publishTimeout bounds the handing of one envelope to gossipsub.
	publishTimeout = 5 * time.Second
)

// outbox is a session's outbound traffic while it is on its topic: one
// bounded queue of envelopes, published in order by one goroutine (run),
// and a bounded lane per peer that must be reached directly, each drained
// by a goroutine while it holds anything. Its methods never block.
type outbox struct {
	ctx context.Context // the topic's: ends when the session leaves it
	x   *sess
	t   *pubsub.Topic
	q   chan outItem

	mu    sync.Mutex
	lanes map[peer.ID]*lane
}

// outItem is a topic message to publish: sealed (nil when this node lacks
// the key of its epoch; it then goes to the off-mesh members only, by a
// host) and as it is, for those reached directly.
type outItem struct {
	envelope []byte
	m        psession.TopicMessage
	// passOn: the host hands it to the members off the topic's mesh.
	passOn bool
}

// lane is what waits for one peer reached directly.
type lane struct {
	items   []direct
	running bool
}

// direct is a message for one peer: a topic message to Deliver, or (post)
// this node's data for its host to publish.
type direct struct {
	m    psession.TopicMessage
	post bool
}

func newOutbox(ctx context.Context, x *sess, t *pubsub.Topic) *outbox {
	return &outbox{ctx: ctx, x: x, t: t, q: make(chan outItem, outboxCap), lanes: map[peer.ID]*lane{}}
}

// publishLocked queues topic message m for the topic, sealed with the key
// of its epoch (a data message's own, else the roster's); a host also
// hands it to the members off the topic's mesh. Without the topic it goes
// nowhere.
func (x *sess) publishLocked(m psession.TopicMessage) {
	if x.out == nil {
		return
	}
	epoch := x.roster.Epoch
	if m.Data != nil {
		epoch = m.Data.Epoch // a data message travels in an envelope of its own epoch
	}
	it := outItem{m: m, passOn: x.hosting}
	if key, ok := x.keys[epoch]; ok {
		env, err := psession.SealTopic(x.id, key, m)
		if err != nil {
			log.Errorw("seal a session topic message", "session", x.id, "error", err)
			return
		}
		it.envelope = env
	}
	select {
	case x.out.q <- it:
	default:
		log.Warnw("session outbound queue full; a topic message is dropped", "session", x.id)
	}
}

// directLocked queues a message for peer p, reached over the stream
// protocol.
func (x *sess) directLocked(p peer.ID, d direct) {
	if x.out != nil {
		x.out.direct(p, d)
	}
}

// run publishes the queued envelopes, in order, until the topic's context
// ends.
func (o *outbox) run() {
	for {
		select {
		case <-o.ctx.Done():
			return
		case it := <-o.q:
			o.send(it)
		}
	}
}

func (o *outbox) send(it outItem) {
	x := o.x
	if it.envelope != nil {
		ctx, cancel := context.WithTimeout(o.ctx, publishTimeout)
		err := psession.Publish(ctx, x.s.cfg.PubSub, o.t, it.envelope, x.allowed)
		cancel()
		if err != nil && !errors.Is(err, pubsub.ErrTopicClosed) {
			log.Debugw("publish on session topic", "session", x.id, "error", err)
		}
	}
	if !it.passOn {
		return
	}
	mesh := o.t.ListPeers()
	for _, p := range x.view.Load().roster.Members {
		if p != x.host && !slices.Contains(mesh, p) {
			o.direct(p, direct{m: it.m})
		}
	}
}

// direct queues d for p, and starts p's lane if it is idle.
func (o *outbox) direct(p peer.ID, d direct) {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lanes[p]
	if l == nil {
		l = &lane{}
		o.lanes[p] = l
	}
	if len(l.items) >= laneCap {
		log.Debugw("direct lane full; the oldest message for the peer is dropped", "session", o.x.id, "peer", p)
		l.items = slices.Delete(l.items, 0, 1)
	}
	l.items = append(l.items, d)
	if !l.running {
		l.running = o.x.s.spawn(func() { o.drain(p, l) })
	}
}

// drain hands p its lane's messages, one at a time and in order, until
// the lane is empty or the topic's context ends. A message whose stream
// failed (the connection under it closed: a relay died or a circuit was
// replaced) stays at the head of the lane and is handed again at once,
// over the connection that replaces it (hand dials; a dial under way is
// joined), with a short backoff while none does: the receiver keeps a
// message once however often it comes, so a message that did arrive
// before its answer was lost costs nothing, while one that did not would
// otherwise wait for the receiver's repair (the host's next heartbeat
// shows a member its gap). A peer that stays unreachable for retryFor
// loses what waits for it (it repairs, or asks the host, when it is
// back); a refusal drops only the message refused.
func (o *outbox) drain(p peer.ID, l *lane) {
	var failing time.Time // since when p's messages fail, or zero
	backoff := retry.New(retryFirst, retryMax)
	for {
		o.mu.Lock()
		if len(l.items) == 0 || o.ctx.Err() != nil {
			l.running = false
			delete(o.lanes, p)
			o.mu.Unlock()
			return
		}
		d := l.items[0]
		o.mu.Unlock()
		err := o.hand(p, d)
		o.mu.Lock()
		switch {
		case err == nil || errors.Is(err, errRefused):
			if err != nil {
				log.Debugw("reach a peer directly", "session", o.x.id, "peer", p, "post", d.post, "error", err)
			} else if !failing.IsZero() {
				log.Debugw("a peer reached again directly; its messages resent", "session", o.x.id, "peer", p, "post", d.post,
					"after_ms", time.Since(failing).Milliseconds())
			}
			failing = time.Time{}
			backoff.Reset()
			// The lane may have dropped its oldest meanwhile.
			if len(l.items) > 0 && sameDirect(l.items[0], d) {
				l.items = slices.Delete(l.items, 0, 1)
			}
		case failing.IsZero() || time.Since(failing) < retryFor:
			if failing.IsZero() {
				failing = time.Now()
			}
			log.Debugw("reach a peer directly; the message is handed again", "session", o.x.id, "peer", p, "post", d.post, "error", err)
		default:
			log.Debugw("reach a peer directly; what waits for it is dropped", "session", o.x.id, "peer", p, "post", d.post,
				"messages", len(l.items), "error", err)
			l.items = nil
			failing = time.Time{}
			backoff.Reset()
		}
		o.mu.Unlock()
		if !failing.IsZero() && !backoff.Wait(o.ctx) {
			continue
		}
	}
}

// Retries of a direct message whose stream failed.
const (
	// retryFirst and retryMax pace the retries while the peer cannot be
	// reached (each hand dials the peer, or joins the dial under way).
	retryFirst = 20 * time.Millisecond
	retryMax   = 500 * time.Millisecond
	// retryFor is how long a peer may stay unreachable before what waits
	// for it is dropped.
	retryFor = psession.Timeout
)

// sameDirect reports whether a and b are the same direct message.
func sameDirect(a, b direct) bool {
	return a.post == b.post && a.m.Data == b.m.Data && a.m.Roster == b.m.Roster && a.m.Heartbeat == b.m.Heartbeat
}

// errRefused marks a peer's refusal (it was reached).
var errRefused = errors.New("sessions: refused")

// hand sends one direct message.
func (o *outbox) hand(p peer.ID, d direct) error {
	x := o.x
	ctx, cancel := context.WithTimeout(o.ctx, psession.Timeout)
	defer cancel()
	if err := x.s.cfg.Connect(ctx, p); err != nil {
		return err
	}
	var err error
	if d.post {
		err = psession.Post(ctx, x.s.cfg.Host, p, *d.m.Data)
	} else {
		err = psession.Deliver(ctx, x.s.cfg.Host, p, x.id, d.m)
	}
	var se *psession.StatusError
	if errors.As(err, &se) {
		return errors.Join(errRefused, err)
	}
	return err
}
