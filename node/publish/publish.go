// Package publish is a node's own endpoint data and its publication: the
// endpoint name, presence, registered applications and published objects,
// the snapshots the endpoint protocol hands to subscribers, and the sealed
// updates on the node's endpoint topic (see protocols/endpoint).
//
// The endpoint name and the registered applications are durable (the state
// database); presence and objects live as long as the node is signed in, as
// in Windows: signing in sets presence to Online, signing out of every scope
// sets it to Offline and unpublishes the objects.
//
// Updates go only to the subscribers that Config.Access allows, at the
// moment each is sent: a peer blocked or removed gets nothing more (see
// protocols/endpoint for what it can still observe).
package publish

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

var log = logging.Logger("peercollab/publish")

// State database buckets and keys.
const (
	bucketApps     = "applications"
	bucketSettings = "settings"
	keyName        = "endpoint_name"
)

// DefaultHeartbeat is how often a signed-in node tells its topic its
// current version, so that subscribers notice a lost update.
const DefaultHeartbeat = 10 * time.Second

// Errors of the service.
var (
	ErrNotSignedIn  = errors.New("publish: not signed in; sign in first with `peercollab signin`")
	ErrAppExists    = errors.New("publish: an application with this ID is registered already; remove it first")
	ErrAppNotFound  = errors.New("publish: no application with this ID is registered")
	ErrObjNotFound  = errors.New("publish: no object with this ID is published")
	ErrSameName     = errors.New("publish: the endpoint name is that already")
	ErrLaunchTooBig = errors.New("publish: launch command longer than 4096 bytes")
)

// RegisteredApp is an application registered on this node: what others see
// of it, and the command that runs it here, which is never sent.
type RegisteredApp struct {
	endpoint.Application
	Launch string `json:"launch,omitempty"`
	// AutoAccept accepts invitations to the application from trusted
	// contacts without asking the user.
	AutoAccept bool `json:"auto_accept,omitempty"`
	// AutoHost accepts requests to host a session for the application
	// without asking the user.
	AutoHost bool `json:"auto_host,omitempty"`
}

// Config is what the service needs from its node.
type Config struct {
	Host   host.Host
	PubSub *pubsub.PubSub
	State  *state.DB
	Hub    *events.Hub
	// Access says what a peer may see of a snapshot: endpoint.Full or
	// endpoint.Public, or one of endpoint's refusal errors; the node's
	// updates go only to the peers it allows. It is called on the goroutine
	// of a snapshot request, and on pubsub's goroutine while an update is
	// sent: it must answer at once, and never wait for pubsub.
	Access func(from peer.ID) (endpoint.Tier, error)
	// DefaultName is the endpoint name until one is set (the host name).
	DefaultName string
	// Heartbeat is the heartbeat period; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
}

// Service owns the node's endpoint data. Its methods are safe for
// concurrent use.
type Service struct {
	cfg     Config
	topic   *pubsub.Topic
	unrelay pubsub.RelayCancelFunc
	srv     *endpoint.Service
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// outbox holds sealed updates, in version order, for the goroutine
	// that publishes them (outside the lock, cut short by Close).
	outbox chan outgoing

	mu       sync.Mutex
	epoch    uint64
	version  uint64
	name     string
	presence endpoint.Presence
	signedIn bool
	apps     map[string]RegisteredApp
	objects  map[string]endpoint.Object
	keys     [2]endpoint.Key // indexed by tier
	closed   bool
}

// New starts the service: it loads the durable data, joins the node's
// topic and serves snapshots. The node starts signed out.
func New(cfg Config) (_ *Service, err error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	s := &Service{cfg: cfg, apps: map[string]RegisteredApp{}, objects: map[string]endpoint.Object{}, name: cfg.DefaultName}
	var b [8]byte
	rand.Read(b[:])
	s.epoch = binary.BigEndian.Uint64(b[:]) | 1
	s.keys = [2]endpoint.Key{endpoint.NewKey(1, endpoint.Public), endpoint.NewKey(1, endpoint.Full)}
	// A damaged value counts as absent (and is logged): one bad record
	// never keeps the node from starting.
	if _, err := cfg.State.Get(bucketSettings, keyName, &s.name); err != nil {
		if !errors.Is(err, state.ErrCorrupt) {
			return nil, err
		}
		log.Errorw("damaged endpoint name ignored; using the default", "error", err)
	}
	err = cfg.State.ForEach(bucketApps, func(key string, raw []byte) error {
		var a RegisteredApp
		if err := json.Unmarshal(raw, &a); err != nil || a.Check() != nil {
			log.Errorw("damaged application record left out", "key", key, "error", err)
			return nil
		}
		s.apps[a.ID] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load applications: %w", err)
	}
	me := cfg.Host.ID()
	if err := cfg.PubSub.RegisterTopicValidator(endpoint.Topic(me), endpoint.Validator(me)); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cfg.PubSub.UnregisterTopicValidator(endpoint.Topic(me))
		}
	}()
	if s.topic, err = cfg.PubSub.Join(endpoint.Topic(me)); err != nil {
		return nil, err
	}
	// Relay: be in the topic's mesh without receiving our own updates, so
	// that subscribers see us among the topic's peers, which is how they
	// know their subscription has reached us (see watch).
	if s.unrelay, err = s.topic.Relay(); err != nil {
		s.topic.Close()
		return nil, err
	}
	s.srv = endpoint.New(cfg.Host, endpoint.SnapshotFunc(s.snapshot))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.outbox = make(chan outgoing, outboxCap)
	s.wg.Go(func() { s.heartbeats(ctx) })
	s.wg.Go(func() { s.publisher(ctx) })
	return s, nil
}

// outgoing is a sealed update waiting to be published.
type outgoing struct {
	version uint64
	data    []byte
}

// outboxCap bounds the updates waiting to be published; beyond it they are
// dropped, and subscribers notice the gap at the next one and resync.
const outboxCap = 64

// publishTimeout bounds publishing one update.
const publishTimeout = 5 * time.Second

// publisher publishes the queued updates in order until ctx ends.
func (s *Service) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case u := <-s.outbox:
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			err := endpoint.Publish(pctx, s.cfg.PubSub, s.topic, u.data, s.mayWatch)
			cancel()
			if err != nil && ctx.Err() == nil {
				// Subscribers notice the gap at the next heartbeat and resync.
				log.Warnw("publish endpoint update", "version", u.version, "error", err)
			}
		}
	}
}

// Close stops publishing and serving. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.srv.Close()
	s.unrelay()
	err := s.topic.Close()
	s.cfg.PubSub.UnregisterTopicValidator(endpoint.Topic(s.cfg.Host.ID()))
	return err
}

func (s *Service) heartbeats(ctx context.Context) {
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			if s.signedIn && !s.closed {
				s.publishLocked(endpoint.Public, nil)
			}
			s.mu.Unlock()
		}
	}
}

// publishLocked seals change for tier as the next version (a nil change is
// a heartbeat at the current version) and queues it for the publisher, so
// that updates go out in version order without gossipsub under the lock.
func (s *Service) publishLocked(tier endpoint.Tier, change *pb.Change) {
	if change != nil {
		s.version++
	}
	u, err := endpoint.Seal(s.keys[tier], s.cfg.Host.ID(), s.epoch, s.version, change)
	var data []byte
	if err == nil {
		data, err = proto.Marshal(u)
	}
	if err != nil {
		log.Errorw("seal endpoint update", "version", s.version, "error", err)
		return
	}
	select {
	case s.outbox <- outgoing{s.version, data}:
	default:
		// Subscribers notice the gap at the next update and resync.
		log.Warnw("endpoint updates queue full; update dropped", "version", s.version)
	}
}

// mayWatch reports whether p may receive the node's updates: what Access
// says of it. pubsub calls it on its own goroutine, for each subscriber of
// each update.
func (s *Service) mayWatch(p peer.ID) bool {
	_, err := s.cfg.Access(p)
	return err == nil
}

// snapshot answers a snapshot request from peer from.
func (s *Service) snapshot(from peer.ID) (*endpoint.Snapshot, error) {
	tier, err := s.cfg.Access(from)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.signedIn {
		return nil, endpoint.ErrNotSignedIn
	}
	snap := &endpoint.Snapshot{Epoch: s.epoch, Version: s.version, Name: s.name, Presence: s.presence,
		Keys: []endpoint.Key{s.keys[endpoint.Public]}}
	if tier == endpoint.Full {
		snap.Full = true
		snap.Keys = append(snap.Keys, s.keys[endpoint.Full])
		for _, a := range s.sortedAppsLocked() {
			snap.Applications = append(snap.Applications, a.Application)
		}
		snap.Objects = s.sortedObjectsLocked()
	}
	return snap, nil
}

// Snapshot is the node's own endpoint data, as a trusted contact sees it.
func (s *Service) Snapshot() endpoint.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := endpoint.Snapshot{Epoch: s.epoch, Version: s.version, Name: s.name, Presence: s.presence, Full: true, Objects: s.sortedObjectsLocked()}
	for _, a := range s.sortedAppsLocked() {
		snap.Applications = append(snap.Applications, a.Application)
	}
	return snap
}

// Profile returns the endpoint name and presence, for the card protocol.
func (s *Service) Profile() (string, endpoint.Presence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.name, s.presence
}

// SetSignedIn tells the service whether the node is signed in to any scope.
// Signing in sets presence to Online; signing out sets it to Offline and
// unpublishes every object.
func (s *Service) SetSignedIn(in bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signedIn == in {
		return
	}
	if in {
		s.signedIn = true
		s.setPresenceLocked(endpoint.Presence{Status: endpoint.Online})
		return
	}
	for _, id := range slices.Sorted(maps.Keys(s.objects)) {
		s.removeObjectLocked(id)
	}
	s.setPresenceLocked(endpoint.Presence{Status: endpoint.Offline})
	s.signedIn = false
}

// Rekey replaces the topic keys, so that whoever held them (a peer just
// blocked) reads nothing more; subscribers still allowed fetch the new keys
// on the heartbeat published at once.
func (s *Service) Rekey() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tier := range s.keys {
		s.keys[tier] = endpoint.NewKey(s.keys[tier].ID+1, endpoint.Tier(tier))
	}
	if s.signedIn {
		s.publishLocked(endpoint.Public, nil)
	}
}

// Grant hands p the snapshot it may see now, keys included, when p is
// connected: a watcher that has just become a trusted contact then reads
// the applications and objects at once (it would otherwise go on with the
// public tier's keys, since nothing tells it to fetch a snapshot). A peer
// that is not connected is left alone: it fetches a snapshot when it
// connects to watch.
func (s *Service) Grant(ctx context.Context, p peer.ID) error {
	snap, err := s.snapshot(p)
	if err != nil {
		return err
	}
	return endpoint.Push(ctx, s.cfg.Host, p, snap)
}

// PresenceEvent is the payload of "me.presence.changed".
type PresenceEvent struct {
	Presence endpoint.Presence `json:"presence"`
}

// NameEvent is the payload of "me.name.changed".
type NameEvent struct {
	Name string `json:"endpoint_name"`
}

// ApplicationEvent is the payload of "me.application.changed".
type ApplicationEvent struct {
	Change      contacts.ChangeType  `json:"change"`
	Application endpoint.Application `json:"application"`
}

// ObjectEvent is the payload of "me.object.changed".
type ObjectEvent struct {
	Change contacts.ChangeType `json:"change"`
	Object endpoint.Object     `json:"object"`
}

// SetPresence sets the node's presence. Offline cannot be set while signed
// in (sign out instead), and nothing can be set while signed out.
func (s *Service) SetPresence(p endpoint.Presence) error {
	if err := p.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.signedIn {
		return ErrNotSignedIn
	}
	if p.Status == endpoint.Offline {
		return endpoint.ErrOfflineSignedIn
	}
	s.setPresenceLocked(p)
	return nil
}

func (s *Service) setPresenceLocked(p endpoint.Presence) {
	if s.presence == p {
		return
	}
	s.presence = p
	s.publishLocked(endpoint.Public, &pb.Change{Change: &pb.Change_Presence{Presence: p.ToPB()}})
	s.cfg.Hub.Publish("me.presence.changed", PresenceEvent{p})
}

// SetName sets the endpoint name, durably.
func (s *Service) SetName(name string) error {
	if err := endpoint.CheckName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == s.name {
		return ErrSameName
	}
	if err := s.cfg.State.Put(bucketSettings, keyName, name); err != nil {
		return err
	}
	s.name = name
	if s.signedIn {
		s.publishLocked(endpoint.Public, &pb.Change{Change: &pb.Change_EndpointName{EndpointName: name}})
	}
	s.cfg.Hub.Publish("me.name.changed", NameEvent{name})
	return nil
}

// RegisterApp registers an application, durably. Its ID must be new.
func (s *Service) RegisterApp(a RegisteredApp) error {
	if err := a.Check(); err != nil {
		return err
	}
	if len(a.Launch) > 4096 {
		return ErrLaunchTooBig
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[a.ID]; ok {
		return ErrAppExists
	}
	if len(s.apps) >= endpoint.MaxApplications {
		return endpoint.ErrTooManyApps
	}
	if err := s.cfg.State.Put(bucketApps, a.ID, a); err != nil {
		return err
	}
	s.apps[a.ID] = a
	if s.signedIn {
		s.publishLocked(endpoint.Full, &pb.Change{Change: &pb.Change_ApplicationSet{ApplicationSet: a.ToPB()}})
	}
	s.cfg.Hub.Publish("me.application.changed", ApplicationEvent{contacts.Added, a.Application})
	return nil
}

// RemoveApp unregisters an application.
func (s *Service) RemoveApp(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[id]
	if !ok {
		return ErrAppNotFound
	}
	if err := s.cfg.State.Delete(bucketApps, id); err != nil {
		return err
	}
	delete(s.apps, id)
	if s.signedIn {
		s.publishLocked(endpoint.Full, &pb.Change{Change: &pb.Change_ApplicationRemoved{ApplicationRemoved: id}})
	}
	s.cfg.Hub.Publish("me.application.changed", ApplicationEvent{contacts.Deleted, a.Application})
	return nil
}

// App returns a registered application with its launch command.
func (s *Service) App(id string) (RegisteredApp, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[id]
	return a, ok
}

// Apps lists the registered applications by ID, with their launch commands.
func (s *Service) Apps() []RegisteredApp {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedAppsLocked()
}

func (s *Service) sortedAppsLocked() []RegisteredApp {
	out := slices.Collect(maps.Values(s.apps))
	slices.SortFunc(out, func(a, b RegisteredApp) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func (s *Service) sortedObjectsLocked() []endpoint.Object {
	out := slices.Collect(maps.Values(s.objects))
	slices.SortFunc(out, func(a, b endpoint.Object) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// SetObject publishes or replaces an object. Objects need a sign-in.
func (s *Service) SetObject(o endpoint.Object) error {
	if err := o.Check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.signedIn {
		return ErrNotSignedIn
	}
	old, exists := s.objects[o.ID]
	if !exists && len(s.objects) >= endpoint.MaxObjects {
		return endpoint.ErrTooManyObjects
	}
	o.Data = slices.Clone(o.Data)
	s.objects[o.ID] = o
	change := contacts.Added
	if exists {
		change = contacts.Updated
		if string(old.Data) == string(o.Data) {
			return nil
		}
	}
	s.publishLocked(endpoint.Full, &pb.Change{Change: &pb.Change_ObjectSet{ObjectSet: o.ToPB()}})
	s.cfg.Hub.Publish("me.object.changed", ObjectEvent{change, o})
	return nil
}

// RemoveObject unpublishes an object.
func (s *Service) RemoveObject(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[id]; !ok {
		return ErrObjNotFound
	}
	s.removeObjectLocked(id)
	return nil
}

func (s *Service) removeObjectLocked(id string) {
	o := s.objects[id]
	delete(s.objects, id)
	s.publishLocked(endpoint.Full, &pb.Change{Change: &pb.Change_ObjectRemoved{ObjectRemoved: id}})
	s.cfg.Hub.Publish("me.object.changed", ObjectEvent{contacts.Deleted, o})
}

// Objects lists the published objects by ID.
func (s *Service) Objects() []endpoint.Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedObjectsLocked()
}
