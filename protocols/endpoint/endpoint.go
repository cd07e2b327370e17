// Package endpoint is how a node tells its subscribers its endpoint data:
// endpoint name, presence, registered applications and published objects.
//
// A subscriber first fetches a Snapshot over the endpoint protocol (one short
// stream): the host's data at one version, as much of it as the subscriber
// may see, and the keys of the host's topic that it may hold. Then it follows
// the host's gossipsub topic, Topic(host), on which only the host publishes
// (Validator rejects anything else). Each Update there carries the host's
// epoch (new at every start) and a version that grows by one with every
// change; its change is sealed with the key of its tier: Public for name and
// presence, which people near the host may read, Full for applications and
// objects, which only trusted contacts the host allows may read. A
// subscriber that sees a version it cannot apply in order (a gap, a new
// epoch, a key it does not hold) fetches a new snapshot; see Next. Hosts
// publish a heartbeat (an update with no change) now and then, so that a
// lost last update is noticed too.
//
// Keys change when the host blocks someone, so a blocked peer that stays on
// the topic reads nothing that follows. A sealed change is padded to one of
// a few sizes (256 B, 1 KiB, 4 KiB, 18 KiB) before it is sealed.
//
// # What a watcher that may not read can observe
//
// A host publishes its updates through Publish, which sends them only to
// the peers its access rules allow; its pubsub peer filter keeps everyone
// else out of its topic's mesh and answers them no request (IWANT) for its
// updates. Watchers relay the host's topic rather than subscribe, and their
// validator hands what it accepts to the watcher and tells gossipsub to
// ignore it, so that no watcher passes an update on. A Blocked contact (or a
// stranger) that subscribes to the topic therefore receives no update, from
// the host or from anyone, from the moment the host applies the block, and
// no snapshot (BLOCKED). What it can still observe:
//
//   - that the host is on its own topic (gossipsub announces the host's
//     topics to every connected pubsub peer), whether the host accepts
//     connections, and the timing and volume of traffic on its own
//     connection to the host; the card protocol shows it the host as
//     Offline;
//   - gossip (IHAVE), which gossipsub sends about a topic to some of the
//     peers that announced it, filter or not, every heartbeat: its message
//     IDs (the host's peer ID and a sequence number) tell how many updates
//     and heartbeats the host published in the last few seconds, never
//     their size, tier or content;
//   - before the block: everything its keys opened.
//
// A watcher allowed the Public tier only (people near that are not
// contacts) receives the Full tier's updates too, to keep its version in
// step: it sees their timing, version, tier, key ID and padded size, never
// their content.
package endpoint

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/crypto/chacha20poly1305"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/protocols/internal/gossip"
	"github.com/peercollab/peercollab/protocols/internal/wire"
	"github.com/peercollab/peercollab/protocols/pb"
)

var log = logging.Logger("peercollab/endpoint")

// ID is the snapshot protocol's ID.
const ID protocol.ID = "/peercollab/endpoint/1.0.0"

const (
	// MaxSnapshotSize caps a snapshot: 64 applications and 128 objects of
	// 16 KiB each, and change.
	MaxSnapshotSize = (MaxApplications+MaxObjects)*(MaxData+1<<10) + 64<<10
	// MaxUpdateSize caps a topic message: one object and its envelope.
	MaxUpdateSize = MaxData + 4<<10
	// Timeout bounds a snapshot fetch (Windows' 30 s).
	Timeout = 30 * time.Second
	// topicPrefix starts every endpoint topic name.
	topicPrefix = "/peercollab/endpoint/1/"
)

// padBuckets are the sizes a change is padded to before it is sealed; the
// largest holds an application or object with 16 KiB of data.
var padBuckets = []int{256, 1 << 10, 4 << 10, MaxData + 2<<10}

// Refusals of a snapshot.
var (
	ErrNotSignedIn = errors.New("endpoint: host is not signed in to a scope that reaches you")
	ErrBlocked     = errors.New("endpoint: host does not allow you to watch it")
	ErrNotAllowed  = errors.New("endpoint: only the host's contacts and the people near it may watch it")
)

// Topic is the name of p's endpoint topic.
func Topic(p peer.ID) string { return topicPrefix + p.String() }

// TopicOwner returns the host whose endpoint topic this is.
func TopicOwner(topic string) (peer.ID, error) {
	s, ok := strings.CutPrefix(topic, topicPrefix)
	if !ok {
		return "", fmt.Errorf("endpoint: %q is not an endpoint topic", topic)
	}
	return peer.Decode(s)
}

// Tier says who may read an update.
type Tier = pb.Tier

// Tiers.
const (
	Public = pb.Tier_PUBLIC
	Full   = pb.Tier_FULL
)

// Key opens the updates of one tier.
type Key struct {
	ID     uint32
	Tier   Tier
	Secret [chacha20poly1305.KeySize]byte
}

// NewKey makes a random key.
func NewKey(id uint32, tier Tier) Key {
	k := Key{ID: id, Tier: tier}
	rand.Read(k.Secret[:])
	return k
}

// Snapshot is a host's endpoint data at one version.
type Snapshot struct {
	Epoch        uint64        `json:"epoch"`
	Version      uint64        `json:"version"`
	Name         string        `json:"endpoint_name"`
	Presence     Presence      `json:"presence"`
	Full         bool          `json:"full"`
	Applications []Application `json:"applications,omitempty"`
	Objects      []Object      `json:"objects,omitempty"`
	Keys         []Key         `json:"-"`
}

func (s *Snapshot) toPB() *pb.Snapshot {
	m := &pb.Snapshot{Epoch: s.Epoch, Version: s.Version, EndpointName: s.Name, Presence: s.Presence.ToPB(), Full: s.Full}
	for _, a := range s.Applications {
		m.Applications = append(m.Applications, a.ToPB())
	}
	for _, o := range s.Objects {
		m.Objects = append(m.Objects, o.ToPB())
	}
	for _, k := range s.Keys {
		m.Keys = append(m.Keys, &pb.TopicKey{Id: k.ID, Tier: k.Tier, Key: k.Secret[:]})
	}
	return m
}

func snapshotFromPB(m *pb.Snapshot) (*Snapshot, error) {
	switch m.GetRefusal() {
	case pb.Snapshot_NONE:
	case pb.Snapshot_NOT_SIGNED_IN:
		return nil, ErrNotSignedIn
	case pb.Snapshot_BLOCKED:
		return nil, ErrBlocked
	default:
		return nil, ErrNotAllowed
	}
	s := &Snapshot{Epoch: m.GetEpoch(), Version: m.GetVersion(), Name: m.GetEndpointName(), Full: m.GetFull()}
	var err error
	if err = CheckName(s.Name); err != nil {
		return nil, err
	}
	if s.Presence, err = PresenceFromPB(m.GetPresence()); err != nil {
		return nil, err
	}
	if len(m.GetApplications()) > MaxApplications || len(m.GetObjects()) > MaxObjects {
		return nil, errors.New("endpoint: snapshot holds more than the limits allow")
	}
	apps, objs := map[string]bool{}, map[string]bool{}
	for _, a := range m.GetApplications() {
		app, err := ApplicationFromPB(a)
		if err != nil {
			return nil, err
		}
		if apps[app.ID] {
			return nil, errors.New("endpoint: snapshot holds an application twice")
		}
		apps[app.ID] = true
		s.Applications = append(s.Applications, app)
	}
	for _, o := range m.GetObjects() {
		obj, err := ObjectFromPB(o)
		if err != nil {
			return nil, err
		}
		if objs[obj.ID] {
			return nil, errors.New("endpoint: snapshot holds an object twice")
		}
		objs[obj.ID] = true
		s.Objects = append(s.Objects, obj)
	}
	if len(m.GetKeys()) > 2 {
		return nil, errors.New("endpoint: snapshot carries more keys than there are tiers")
	}
	for _, k := range m.GetKeys() {
		if len(k.GetKey()) != chacha20poly1305.KeySize || (k.GetTier() != Public && k.GetTier() != Full) {
			return nil, errors.New("endpoint: snapshot carries a malformed key")
		}
		key := Key{ID: k.GetId(), Tier: k.GetTier()}
		copy(key.Secret[:], k.GetKey())
		s.Keys = append(s.Keys, key)
	}
	return s, nil
}

// Handler gives the snapshot peer from may see, or ErrNotSignedIn,
// ErrBlocked or ErrNotAllowed. It runs on the goroutine of the incoming
// stream.
type Handler interface {
	Snapshot(from peer.ID) (*Snapshot, error)
}

// SnapshotFunc is a Handler made of a function.
type SnapshotFunc func(from peer.ID) (*Snapshot, error)

// Snapshot calls f.
func (f SnapshotFunc) Snapshot(from peer.ID) (*Snapshot, error) { return f(from) }

// Service answers snapshot requests. Close removes its handler.
type Service struct {
	h    host.Host
	once sync.Once
}

// New registers the snapshot protocol's handler on h.
func New(h host.Host, handler Handler) *Service {
	h.SetStreamHandler(ID, wire.Handler(64, Timeout, func() *pb.SnapshotRequest { return new(pb.SnapshotRequest) },
		func(_ context.Context, from peer.ID, _ *pb.SnapshotRequest) (*pb.Snapshot, error) {
			s, err := handler.Snapshot(from)
			switch {
			case err == nil:
				return s.toPB(), nil
			case errors.Is(err, ErrNotSignedIn):
				return &pb.Snapshot{Refusal: pb.Snapshot_NOT_SIGNED_IN}, nil
			case errors.Is(err, ErrBlocked):
				return &pb.Snapshot{Refusal: pb.Snapshot_BLOCKED}, nil
			case errors.Is(err, ErrNotAllowed):
				return &pb.Snapshot{Refusal: pb.Snapshot_NOT_ALLOWED}, nil
			}
			log.Debugw("snapshot failed", "peer", from, "error", err)
			return nil, err
		}))
	return &Service{h: h}
}

// Close removes the handler. It is idempotent.
func (s *Service) Close() error {
	s.once.Do(func() { s.h.RemoveStreamHandler(ID) })
	return nil
}

// Fetch asks p for its snapshot.
func Fetch(ctx context.Context, h host.Host, p peer.ID) (*Snapshot, error) {
	var m pb.Snapshot
	if err := wire.Exchange(ctx, h, p, ID, &pb.SnapshotRequest{}, &m, MaxSnapshotSize, Timeout); err != nil {
		return nil, fmt.Errorf("fetch endpoint snapshot: %w", err)
	}
	return snapshotFromPB(&m)
}

// PushID is the protocol on which a host hands a watcher its snapshot
// unasked: when the watcher may see more than before (it has just become a
// trusted contact), so that it holds the keys and the full data at once
// rather than at its next fetch, which it has no reason to make (the updates
// it cannot open move its version all the same). The answer is an empty
// acknowledgement.
const PushID protocol.ID = "/peercollab/endpoint/push/1.0.0"

// pushTimeout bounds handing over one snapshot.
const pushTimeout = 10 * time.Second

// ErrNotConnected means a snapshot was not pushed to a peer the host has no
// connection to.
var ErrNotConnected = errors.New("endpoint: no connection to the watcher to push to")

// Push hands snap to p over a connection that exists already: it never
// dials (a host pushes to its watchers, which are connected to it).
func Push(ctx context.Context, h host.Host, p peer.ID, snap *Snapshot) error {
	if c := h.Network().Connectedness(p); c != network.Connected && c != network.Limited {
		return ErrNotConnected
	}
	ctx = network.WithNoDial(ctx, "endpoint push goes to connected watchers only")
	var ack pb.SnapshotRequest
	if err := wire.Exchange(ctx, h, p, PushID, snap.toPB(), &ack, 16, pushTimeout); err != nil {
		return fmt.Errorf("push endpoint snapshot: %w", err)
	}
	return nil
}

// HandlePush registers on h the handler of pushed snapshots. wanted says,
// before anything is read, whether a snapshot from that peer is wanted (it
// is watched); accept is given each snapshot that parses, from such a peer.
// A snapshot comes from the peer that sent it (the stream is authenticated),
// so it is worth what a fetched one is. The returned function removes the
// handler.
func HandlePush(h host.Host, wanted func(from peer.ID) bool, accept func(from peer.ID, s *Snapshot)) func() {
	inner := wire.Handler(MaxSnapshotSize, Timeout, func() *pb.Snapshot { return new(pb.Snapshot) },
		func(_ context.Context, from peer.ID, m *pb.Snapshot) (*pb.SnapshotRequest, error) {
			s, err := snapshotFromPB(m)
			if err != nil {
				log.Debugw("bad pushed snapshot", "peer", from, "error", err)
				return nil, err
			}
			accept(from, s)
			return &pb.SnapshotRequest{}, nil
		})
	h.SetStreamHandler(PushID, func(s network.Stream) {
		if !wanted(s.Conn().RemotePeer()) {
			s.Reset()
			return
		}
		inner(s)
	})
	var once sync.Once
	return func() { once.Do(func() { h.RemoveStreamHandler(PushID) }) }
}

// Seal makes the update that carries change at version, sealed with key;
// a nil change makes a heartbeat.
func Seal(key Key, owner peer.ID, epoch, version uint64, change *pb.Change) (*pb.Update, error) {
	u := &pb.Update{Epoch: epoch, Version: version, Tier: key.Tier, KeyId: key.ID}
	if change == nil {
		return u, nil
	}
	plain, err := proto.Marshal(change)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return nil, err
	}
	plain = gossip.Pad(plain, padBuckets)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	u.Sealed = aead.Seal(nonce, nonce, plain, additionalData(owner, u))
	return u, nil
}

// Publish publishes an update (marshalled) on the host's topic t and sends
// it only to the peers allow accepts (those the host lets watch it), so that
// a blocked peer that stays subscribed receives nothing. allow runs on
// pubsub's goroutine and must answer at once (see
// protocols/internal/gossip).
func Publish(ctx context.Context, ps *pubsub.PubSub, t *pubsub.Topic, update []byte, allow func(peer.ID) bool) error {
	return gossip.Publish(ctx, ps, t, update, allow)
}

// ErrCannotOpen means an update's change could not be opened with the key.
var ErrCannotOpen = errors.New("endpoint: update cannot be opened with this key")

// Open returns the change an update carries (nil for a heartbeat).
func Open(key Key, owner peer.ID, u *pb.Update) (*pb.Change, error) {
	if len(u.GetSealed()) == 0 {
		return nil, nil
	}
	aead, err := chacha20poly1305.NewX(key.Secret[:])
	if err != nil {
		return nil, err
	}
	if len(u.Sealed) < aead.NonceSize() {
		return nil, ErrCannotOpen
	}
	nonce, box := u.Sealed[:aead.NonceSize()], u.Sealed[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, additionalData(owner, u))
	if err != nil {
		return nil, ErrCannotOpen
	}
	if plain, err = gossip.Unpad(plain); err != nil {
		return nil, fmt.Errorf("endpoint: bad change: %w", err)
	}
	var c pb.Change
	if err := proto.Unmarshal(plain, &c); err != nil {
		return nil, fmt.Errorf("endpoint: bad change: %w", err)
	}
	return &c, nil
}

// additionalData binds a sealed change to its host, epoch, version and key,
// so it cannot be replayed as another update.
func additionalData(owner peer.ID, u *pb.Update) []byte {
	ad := make([]byte, 0, 64)
	ad = append(ad, owner...)
	ad = binary.BigEndian.AppendUint64(ad, u.Epoch)
	ad = binary.BigEndian.AppendUint64(ad, u.Version)
	ad = binary.BigEndian.AppendUint32(ad, uint32(u.Tier))
	return binary.BigEndian.AppendUint32(ad, u.KeyId)
}

// Validator accepts on owner's topic only well-formed updates that owner
// itself published.
func Validator(owner peer.ID) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if msg.GetFrom() != owner || len(msg.GetData()) > MaxUpdateSize {
			return pubsub.ValidationReject
		}
		var u pb.Update
		if err := proto.Unmarshal(msg.GetData(), &u); err != nil {
			return pubsub.ValidationReject
		}
		msg.ValidatorData = &u
		return pubsub.ValidationAccept
	}
}

// Verdict is what a subscriber does with an update.
type Verdict int

// Verdicts.
const (
	// Apply: the update is the next in order.
	Apply Verdict = iota
	// Ignore: the update is one the subscriber has already seen.
	Ignore
	// Resync: something was missed or the host restarted; fetch a snapshot.
	Resync
)

func (v Verdict) String() string {
	return [...]string{"apply", "ignore", "resync"}[v]
}

// Next decides what a subscriber at (epoch, version) does with u. A
// heartbeat at the current version is ignored; any update from another epoch
// or beyond the next version means something was missed.
func Next(epoch, version uint64, u *pb.Update) Verdict {
	switch {
	case u.GetEpoch() != epoch:
		return Resync
	case u.GetVersion() <= version:
		return Ignore
	case u.GetVersion() == version+1 && len(u.GetSealed()) > 0:
		return Apply
	default: // a gap, or a heartbeat ahead of us
		return Resync
	}
}
