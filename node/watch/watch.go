// Package watch follows other nodes' endpoint data: for each watched peer a
// goroutine connects, joins the peer's endpoint topic, fetches a snapshot and
// applies the sealed updates in order, fetching a new snapshot whenever an
// update cannot be applied in order (see protocols/endpoint). Every change
// becomes an event ("endpoint.presence.changed", ...). A peer that falls
// silent for three heartbeats is shown Offline until it is heard again.
//
// A watcher relays the host's topic rather than subscribing, and takes the
// host's updates from the topic's validator, which tells gossipsub to
// ignore them: watchers pass no update on to each other (a watcher the host
// blocked gets them from no one; see protocols/endpoint).
//
// A host that lets a watcher see more than before (the watcher has just
// become its trusted contact) pushes it a snapshot (endpoint.PushID), which
// the watcher takes as if it had fetched it: the keys and the full data
// arrive at once, without a new watch. Resync asks a watcher to fetch one
// when this node's own view of the host changed.
//
// Refresh is the one-shot variant (Windows' PeerCollabRefreshEndpointData):
// it fetches a snapshot without subscribing.
package watch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/internal/retry"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

var log = logging.Logger("peercollab/watch")

var errEmptyChange = errors.New("watch: update carries no change")

// refusedRetry is how long a watcher waits after the host refused it before
// asking again (the host may allow it later).
const refusedRetry = 15 * time.Second

// Config is what the service needs from its node.
type Config struct {
	Host   host.Host
	PubSub *pubsub.PubSub
	Hub    *events.Hub
	// Connect makes sure there is a connection to p, dialling the addresses
	// the node knows for it. It is called on the watcher's goroutine.
	Connect func(ctx context.Context, p peer.ID) error
	// Heartbeat is the hosts' heartbeat period; silence for three of them
	// marks a host Offline. 0 means 10 s.
	Heartbeat time.Duration
}

// State says how a watch stands.
type State string

// Watch states.
const (
	Connecting State = "connecting"
	Following  State = "following"
	Failing    State = "failing"
	Refreshed  State = "refreshed" // fetched once, not followed
)

// Entry is what the node knows of a peer's endpoint data.
type Entry struct {
	Peer     peer.ID           `json:"peer"`
	Watching bool              `json:"watching"`
	State    State             `json:"state"`
	Error    string            `json:"error,omitempty"`
	Updated  time.Time         `json:"updated,omitzero"`
	Data     endpoint.Snapshot `json:"data"`
}

// Service runs the watches of one node. Its methods are safe for concurrent
// use.
type Service struct {
	cfg Config

	mu       sync.Mutex
	watchers map[peer.ID]*watcher
	entries  map[peer.ID]*Entry
	closed   bool
	wg       sync.WaitGroup
	unpush   func()
}

// New returns a service with no watches.
func New(cfg Config) *Service {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	s := &Service{cfg: cfg, watchers: map[peer.ID]*watcher{}, entries: map[peer.ID]*Entry{}}
	s.unpush = endpoint.HandlePush(cfg.Host, s.watching, s.pushed)
	return s
}

// watching reports whether p is watched (a snapshot it pushes is wanted).
func (s *Service) watching(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.watchers[p]
	return ok
}

// pushed hands a snapshot that host p pushed to its watcher.
func (s *Service) pushed(p peer.ID, snap *endpoint.Snapshot) {
	s.mu.Lock()
	w := s.watchers[p]
	s.mu.Unlock()
	if w != nil {
		log.Debugw("snapshot pushed", "peer", p, "version", snap.Version, "full", snap.Full)
		w.poke(snap)
	}
}

// Resync makes p's watcher, if there is one, fetch a new snapshot at once:
// this node's view of p changed (p became a contact, or stopped being one),
// and so may what p shows it. A watcher waiting after a refusal asks again
// at once.
func (s *Service) Resync(p peer.ID) {
	s.mu.Lock()
	w := s.watchers[p]
	s.mu.Unlock()
	if w != nil {
		w.poke(nil)
	}
}

// Close ends every watch and waits for them. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	ws := s.watchers
	s.watchers = map[peer.ID]*watcher{}
	s.mu.Unlock()
	s.unpush()
	for _, w := range ws {
		w.cancel()
	}
	s.wg.Wait()
	return nil
}

// Watch starts following p, unless it is followed already.
func (s *Service) Watch(p peer.ID) error {
	if p == s.cfg.Host.ID() {
		return errors.New("watch: a node cannot watch itself")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("watch: closed")
	}
	if _, ok := s.watchers[p]; ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{s: s, p: p, cancel: cancel, ended: make(chan struct{}), updates: make(chan *pb.Update, updatesCap),
		kick: make(chan struct{}, 1), pending: true}
	s.watchers[p] = w
	e := s.entryLocked(p)
	e.Watching, e.State, e.Error = true, Connecting, ""
	s.wg.Go(func() { w.run(ctx) })
	s.cfg.Hub.Publish(EvtWatchList, WatchListEvent{p, contacts.Added})
	return nil
}

// Unwatch stops following p and waits until its watcher has ended. The
// last known data stays available to Get.
func (s *Service) Unwatch(p peer.ID) {
	s.mu.Lock()
	w := s.watchers[p]
	delete(s.watchers, p)
	if e, ok := s.entries[p]; ok {
		e.Watching, e.State = false, Refreshed
	}
	s.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.ended
		s.cfg.Hub.Publish(EvtWatchList, WatchListEvent{p, contacts.Deleted})
	}
}

// Get returns what is known of p's endpoint data.
func (s *Service) Get(p peer.ID) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[p]
	if !ok {
		return Entry{}, false
	}
	return e.copy(), true
}

// List returns every entry, watched or refreshed, by peer ID.
func (s *Service) List() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e.copy())
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Peer, b.Peer) })
	return out
}

// Refresh fetches p's snapshot once and keeps it (a watched peer's data
// comes from its watch and is returned as it is).
func (s *Service) Refresh(ctx context.Context, p peer.ID) (Entry, error) {
	s.mu.Lock()
	if _, watching := s.watchers[p]; watching {
		e := s.entries[p].copy()
		s.mu.Unlock()
		return e, nil
	}
	s.mu.Unlock()
	snap, err := s.fetchOnce(ctx, p)
	if err != nil {
		s.cfg.Hub.Publish(EvtRequestDone, RequestDoneEvent{Peer: p, Request: RequestRefresh, Error: err.Error()})
		return Entry{}, err
	}
	s.cfg.Hub.Publish(EvtRequestDone, RequestDoneEvent{Peer: p, Request: RequestRefresh, OK: true, Full: snap.Full})
	normalize(snap)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(p)
	old := e.Data
	e.Data, e.State, e.Error, e.Updated = *snap, Refreshed, "", time.Now()
	e.Data.Keys = nil
	s.publish(diff(p, &old, &e.Data))
	return e.copy(), nil
}

// Refusals of Forget.
var (
	ErrWatched = errors.New("watch: the peer is watched; unwatch it first")
	ErrNoData  = errors.New("watch: this node keeps no endpoint data of the peer")
)

// Forget drops what the node keeps of p's endpoint data, fetched by Refresh
// or left by a watch that ended (Windows' DeleteEndpointData). A watched
// peer's data is its watch's: ErrWatched.
func (s *Service) Forget(p peer.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.watchers[p]; ok {
		return ErrWatched
	}
	if _, ok := s.entries[p]; !ok {
		return ErrNoData
	}
	delete(s.entries, p)
	return nil
}

func (s *Service) fetchOnce(ctx context.Context, p peer.ID) (*endpoint.Snapshot, error) {
	if err := s.cfg.Connect(ctx, p); err != nil {
		return nil, err
	}
	return endpoint.Fetch(ctx, s.cfg.Host, p)
}

func (s *Service) entryLocked(p peer.ID) *Entry {
	e, ok := s.entries[p]
	if !ok {
		e = &Entry{Peer: p}
		s.entries[p] = e
	}
	return e
}

func (s *Service) publish(evs []Event) {
	for _, ev := range evs {
		s.cfg.Hub.Publish(ev.Type, ev.Data)
	}
}

func (e *Entry) copy() Entry {
	c := *e
	c.Data.Applications = slices.Clone(e.Data.Applications)
	c.Data.Objects = slices.Clone(e.Data.Objects)
	c.Data.Keys = nil
	return c
}

func normalize(s *endpoint.Snapshot) {
	slices.SortFunc(s.Applications, func(a, b endpoint.Application) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Objects, func(a, b endpoint.Object) int { return cmp.Compare(a.ID, b.ID) })
}

// watcher follows one peer.
type watcher struct {
	s       *Service
	p       peer.ID
	cancel  context.CancelFunc
	ended   chan struct{}   // closed when run returns
	updates chan *pb.Update // from the validator
	// kick wakes the watcher: a snapshot was pushed (in push), or one is
	// to be fetched (push nil).
	kick   chan struct{}
	pushMu sync.Mutex
	push   *endpoint.Snapshot

	// Owned by the watcher's goroutine.
	// pending: the watch's first snapshot, or its failure, is yet to be
	// reported (EvtRequestDone).
	pending        bool
	epoch, version uint64
	keys           map[endpoint.Tier]endpoint.Key
}

// errSilent means the host sent nothing for three heartbeats.
var errSilent = errors.New("watch: host fell silent")

func (w *watcher) run(ctx context.Context) {
	defer close(w.ended)
	topic, unrelay, err := w.join()
	if err != nil {
		w.setState(Failing, err)
		log.Errorw("join endpoint topic", "peer", w.p, "error", err)
		return
	}
	defer func() {
		unrelay()
		topic.Close()
		w.s.cfg.PubSub.UnregisterTopicValidator(endpoint.Topic(w.p))
	}()
	backoff := retry.New(time.Second, time.Minute)
	for {
		started := time.Now()
		err := w.follow(ctx, topic)
		if ctx.Err() != nil {
			return
		}
		if err == nil { // polling ended: the host is on the mesh now
			continue
		}
		if time.Since(started) > time.Minute {
			backoff.Reset() // it had worked a good while
		}
		w.setState(Failing, err)
		log.Debugw("watch interrupted", "peer", w.p, "error", err)
		var wait time.Duration
		switch {
		case errors.Is(err, errSilent):
		case errors.Is(err, endpoint.ErrBlocked), errors.Is(err, endpoint.ErrNotAllowed), errors.Is(err, endpoint.ErrNotSignedIn):
			wait = refusedRetry
		default:
			wait = backoff.Next()
		}
		if !w.sleep(ctx, wait) {
			return
		}
	}
}

// poke wakes the watcher with a pushed snapshot, or with nil to make it
// fetch one.
func (w *watcher) poke(snap *endpoint.Snapshot) {
	w.pushMu.Lock()
	if snap != nil {
		w.push = snap
	}
	w.pushMu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// takePush returns the snapshot pushed last, if any, and forgets it.
func (w *watcher) takePush() *endpoint.Snapshot {
	w.pushMu.Lock()
	defer w.pushMu.Unlock()
	snap := w.push
	w.push = nil
	return snap
}

// sleep waits d before the watcher tries again, or less when it is woken
// (then follow fetches a snapshot at once, and a pushed one is not needed).
func (w *watcher) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-w.kick:
		w.takePush()
	}
	return true
}

// kicked handles a wake-up: it adopts the snapshot pushed, unless the
// watcher has moved past its version (then, and when none was pushed, it
// fetches one).
func (w *watcher) kicked(ctx context.Context) error {
	snap := w.takePush()
	if snap == nil || (snap.Epoch == w.epoch && snap.Version < w.version) {
		return w.resync(ctx)
	}
	w.adopt(snap)
	return nil
}

// updatesCap bounds the updates waiting for a watcher; beyond it they are
// dropped (the watcher notices the gap and fetches a snapshot).
const updatesCap = 64

// validator is the host's topic validator: endpoint's, except that what it
// accepts is handed to the watcher and gossipsub told to ignore it, so that
// a watcher passes the host's updates on to no one (a blocked watcher gets
// them from no other watcher, whatever pubsub protocol it speaks).
func (w *watcher) validator() pubsub.ValidatorEx {
	v := endpoint.Validator(w.p)
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		r := v(ctx, from, msg)
		if r != pubsub.ValidationAccept || from == w.s.cfg.Host.ID() {
			return r
		}
		select {
		case w.updates <- msg.ValidatorData.(*pb.Update):
		default:
			log.Debugw("watcher is behind; an update is dropped", "peer", w.p)
		}
		return pubsub.ValidationIgnore
	}
}

// join relays the host's topic (announces it, without a subscription: the
// updates come through the validator).
func (w *watcher) join() (*pubsub.Topic, pubsub.RelayCancelFunc, error) {
	ps, name := w.s.cfg.PubSub, endpoint.Topic(w.p)
	if err := ps.RegisterTopicValidator(name, w.validator()); err != nil {
		return nil, nil, err
	}
	topic, err := ps.Join(name)
	if err != nil {
		ps.UnregisterTopicValidator(name)
		return nil, nil, err
	}
	unrelay, err := topic.Relay()
	if err != nil {
		topic.Close()
		ps.UnregisterTopicValidator(name)
		return nil, nil, err
	}
	return topic, unrelay, nil
}

// follow connects, takes a snapshot and applies updates until something
// goes wrong.
func (w *watcher) follow(ctx context.Context, topic *pubsub.Topic) error {
	w.setState(Connecting, nil)
	cctx, cancel := context.WithTimeout(ctx, endpoint.Timeout)
	err := w.s.cfg.Connect(cctx, w.p)
	cancel()
	if err != nil {
		return err
	}
	inMesh := w.awaitMesh(ctx, topic)
	if err := w.resync(ctx); err != nil {
		return err
	}
	if !inMesh {
		// Reached only over a limited relay, say, where gossipsub opens no
		// stream: fetch snapshots instead, until the host joins our mesh.
		return w.poll(ctx, topic)
	}
	silence := 3*w.s.cfg.Heartbeat + time.Second
	quiet := time.NewTimer(silence)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-quiet.C:
			w.markOffline()
			return errSilent
		case u := <-w.updates:
			quiet.Reset(silence)
			if err := w.handle(ctx, u); err != nil {
				return err
			}
		case <-w.kick:
			if err := w.kicked(ctx); err != nil {
				return err
			}
		}
	}
}

// awaitMesh waits, briefly, until the host is among the topic's peers, so
// that updates published right after the snapshot are not lost while the
// subscription propagates. It reports whether the host got there.
func (w *watcher) awaitMesh(ctx context.Context, topic *pubsub.Topic) bool {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if slices.Contains(topic.ListPeers(), w.p) {
			return true
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// PollInterval is how often a watcher fetches a snapshot of a host it
// cannot hear on the topic.
const PollInterval = 3 * time.Second

// poll fetches snapshots every PollInterval until the host is on the
// topic's mesh (then it returns nil, and follow starts over) or a fetch
// fails.
func (w *watcher) poll(ctx context.Context, topic *pubsub.Topic) error {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-w.kick:
			if err := w.kicked(ctx); err != nil {
				return err
			}
			continue
		}
		if slices.Contains(topic.ListPeers(), w.p) {
			return nil
		}
		if err := w.resync(ctx); err != nil {
			return err
		}
	}
}

// handle applies one update, resyncing when it cannot be applied in order.
func (w *watcher) handle(ctx context.Context, u *pb.Update) error {
	log.Debugw("update", "peer", w.p, "epoch", u.GetEpoch(), "version", u.GetVersion(), "mine", w.version, "verdict", endpoint.Next(w.epoch, w.version, u))
	switch endpoint.Next(w.epoch, w.version, u) {
	case endpoint.Ignore:
		if k, ok := w.keys[u.GetTier()]; ok && len(u.GetSealed()) == 0 && k.ID != u.GetKeyId() {
			return w.resync(ctx) // the host changed its keys
		}
		return nil
	case endpoint.Resync:
		return w.resync(ctx)
	}
	key, ok := w.keys[u.GetTier()]
	if !ok { // a tier we may not read: only the version moves
		w.version = u.GetVersion()
		return nil
	}
	if key.ID != u.GetKeyId() {
		return w.resync(ctx)
	}
	change, err := endpoint.Open(key, w.p, u)
	if err != nil {
		return w.resync(ctx)
	}
	w.s.mu.Lock()
	e := w.s.entryLocked(w.p)
	ev, err := applyChange(w.p, &e.Data, change)
	if err == nil {
		w.version = u.GetVersion()
		e.Updated = time.Now()
	}
	w.s.mu.Unlock()
	if err != nil {
		log.Debugw("bad change", "peer", w.p, "error", err)
		return w.resync(ctx)
	}
	w.s.publish([]Event{ev})
	return nil
}

// resync fetches a snapshot and makes it the state.
func (w *watcher) resync(ctx context.Context) error {
	snap, err := endpoint.Fetch(ctx, w.s.cfg.Host, w.p)
	if err != nil {
		return err
	}
	w.adopt(snap)
	return nil
}

// adopt makes a snapshot, fetched or pushed, the state.
func (w *watcher) adopt(snap *endpoint.Snapshot) {
	normalize(snap)
	w.epoch, w.version = snap.Epoch, snap.Version
	w.keys = map[endpoint.Tier]endpoint.Key{}
	for _, k := range snap.Keys {
		w.keys[k.Tier] = k
	}
	snap.Keys = nil
	w.s.mu.Lock()
	e := w.s.entryLocked(w.p)
	old := e.Data
	e.Data, e.State, e.Error, e.Updated = *snap, Following, "", time.Now()
	evs := diff(w.p, &old, &e.Data)
	w.s.mu.Unlock()
	w.s.publish(evs)
	if w.pending {
		w.pending = false
		w.s.cfg.Hub.Publish(EvtRequestDone, RequestDoneEvent{Peer: w.p, Request: RequestSubscribe, OK: true, Full: snap.Full})
	}
}

// markOffline shows a host that fell silent as Offline.
func (w *watcher) markOffline() {
	w.s.mu.Lock()
	e := w.s.entryLocked(w.p)
	changed := e.Data.Presence.Status != endpoint.Offline
	e.Data.Presence = endpoint.Presence{Status: endpoint.Offline}
	w.s.mu.Unlock()
	if changed {
		w.s.publish([]Event{{EvtPresence, PresenceEvent{w.p, endpoint.Presence{Status: endpoint.Offline}}}})
	}
}

func (w *watcher) setState(st State, err error) {
	w.s.mu.Lock()
	e := w.s.entryLocked(w.p)
	if !e.Watching {
		w.s.mu.Unlock()
		return
	}
	e.State, e.Error = st, ""
	if err != nil {
		e.Error = fmt.Sprint(err)
	}
	msg := e.Error
	w.s.mu.Unlock()
	if st == Failing && w.pending {
		w.pending = false
		w.s.cfg.Hub.Publish(EvtRequestDone, RequestDoneEvent{Peer: w.p, Request: RequestSubscribe, Error: msg})
	}
}
