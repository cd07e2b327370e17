// Package public is public mode: reaching contacts across the internet
// with no server of one's own. The node joins the public Amino DHT
// (/ipfs/kad/1.0.0) as a client only, never as a server; it finds relays
// among the DHT's peers (for go-libp2p's AutoRelay), and it meets its
// contacts under rendezvous keys (package protocols/rendezvous): it puts a
// provider record under its key for each contact, every period, and looks
// a contact up under the contact's key for it when the contact's card
// addresses fail.
//
// What the public network learns: the node's peer ID and addresses (in its
// provider records and in every DHT query it makes), when it is online,
// and how many contacts it announces itself to (the number of its provider
// records). It does not learn whom: keys are per direction and per period,
// pseudorandom to anyone without the pair's secret. Public mode is off
// unless the user asks for it.
package public

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node/internal/retry"
	"github.com/peercollab/peercollab/protocols/rendezvous"
)

var log = logging.Logger("peercollab/public")

// Timings.
const (
	// AnnounceEvery is how often the node renews its provider records
	// (Amino asks for renewal within 22 hours; a period is 12).
	AnnounceEvery = time.Hour
	// LookupTimeout bounds a rendezvous lookup.
	LookupTimeout = 20 * time.Second
	// announceTimeout bounds putting one provider record.
	announceTimeout = time.Minute
)

// HopProtocol is the circuit relay v2 protocol a relay serves.
const HopProtocol protocol.ID = "/libp2p/circuit/relay/0.2.0/hop"

// ErrNotFound means no provider record of a contact was found.
var ErrNotFound = errors.New("public: the contact announced no address on the public network")

// Config is what the service needs from its node.
type Config struct {
	Host host.Host
	// Key is the node's identity key, for the rendezvous secrets.
	Key crypto.PrivKey
	// Bootstrap are the Amino DHT peers to join through. Default: the
	// Amino DHT's own bootstrap peers.
	Bootstrap []peer.AddrInfo
	// Contacts returns the peers to announce this node to.
	Contacts func() []peer.ID
	// ProtocolPrefix is the DHT's protocol prefix. Default: /ipfs (Amino);
	// tests of stand-in networks may keep it.
	ProtocolPrefix protocol.ID
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Announced, when set, is told after each round of announcements how
	// many provider records were put and the error of the round, if any.
	Announced func(records int, err error)
}

// Service is public mode, running. Close ends it.
type Service struct {
	cfg    Config
	dht    *dht.IpfsDHT
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
	once   sync.Once
}

// New joins the DHT as a client and starts announcing.
func New(cfg Config) (*Service, error) {
	if cfg.Bootstrap == nil {
		cfg.Bootstrap = dht.GetDefaultBootstrapPeerAddrInfos()
	}
	if cfg.ProtocolPrefix == "" {
		cfg.ProtocolPrefix = dht.DefaultPrefix
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d, err := dht.New(cfg.Host, dht.Mode(dht.ModeClient), dht.ProtocolPrefix(cfg.ProtocolPrefix),
		dht.BootstrapPeers(cfg.Bootstrap...))
	if err != nil {
		return nil, fmt.Errorf("public: join the DHT: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, dht: d, cancel: cancel, kick: make(chan struct{}, 1)}
	s.wg.Go(func() { s.announceLoop(ctx) })
	return s, nil
}

// Close stops announcing and leaves the DHT. It is idempotent.
func (s *Service) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		err = s.dht.Close()
	})
	return err
}

// Announce renews the provider records now (the contact list changed, or
// the node's addresses did).
func (s *Service) Announce() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// announceLoop announces at start, on Announce, every AnnounceEvery, and
// at each period's end; a failed round is retried with backoff.
func (s *Service) announceLoop(ctx context.Context) {
	backoff := retry.New(5*time.Second, 5*time.Minute)
	for {
		// Nothing can be put before the routing table holds a server:
		// wait for the first rather than fail and back off.
		if !s.waitForPeers(ctx) {
			return
		}
		wait := AnnounceEvery
		records, err := s.announce(ctx)
		if ctx.Err() == nil && s.cfg.Announced != nil {
			s.cfg.Announced(records, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Debugw("announce", "error", err)
			wait = backoff.Next()
		} else {
			backoff.Reset()
		}
		now := s.cfg.Now()
		next := time.Unix(int64((rendezvous.PeriodOf(now)+1)*uint64(rendezvous.Period/time.Second)), 0)
		wait = min(wait, next.Sub(now)+time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// waitForPeers waits until the DHT's routing table holds a server; false
// when ctx ended first.
func (s *Service) waitForPeers(ctx context.Context) bool {
	t := time.NewTicker(joinPoll)
	defer t.Stop()
	for s.dht.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// joinPoll is how often an empty routing table is looked at again.
const joinPoll = 50 * time.Millisecond

// announce puts this node's provider record under its key for each
// contact, for the current period (and the next when it begins within
// AnnounceEvery, so that a contact whose clock runs ahead finds it).
func (s *Service) announce(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	periods := []uint64{rendezvous.PeriodOf(now)}
	if p := rendezvous.PeriodOf(now.Add(AnnounceEvery)); p != periods[0] {
		periods = append(periods, p)
	}
	me := s.cfg.Host.ID()
	var errs []error
	records := 0
	for _, c := range s.cfg.Contacts() {
		secret, err := s.secret(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range periods {
			actx, cancel := context.WithTimeout(ctx, announceTimeout)
			err := s.dht.Provide(actx, rendezvous.Key(secret, me, c, p), true)
			cancel()
			if err != nil {
				errs = append(errs, fmt.Errorf("announce to %s: %w", c, err))
			} else {
				records++
			}
		}
	}
	return records, errors.Join(errs...)
}

func (s *Service) secret(p peer.ID) ([32]byte, error) {
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return [32]byte{}, fmt.Errorf("public: the key of %s: %w", p, err)
	}
	return rendezvous.Secret(s.cfg.Key, pub)
}

// Locate looks contact p up under p's rendezvous key for this node (this
// period's, then the last one's) and returns the addresses p announced,
// as soon as a provider record arrives.
func (s *Service) Locate(ctx context.Context, p peer.ID) ([]ma.Multiaddr, error) {
	secret, err := s.secret(p)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	if !s.waitForPeers(ctx) {
		return nil, fmt.Errorf("%w: %s (no server of the public DHT reached)", ErrNotFound, p)
	}
	now := rendezvous.PeriodOf(s.cfg.Now())
	for _, period := range []uint64{now, now - 1} {
		for ai := range s.dht.FindProvidersAsync(ctx, rendezvous.Key(secret, p, s.cfg.Host.ID(), period), 1) {
			if ai.ID == p && len(ai.Addrs) > 0 {
				return ai.Addrs, nil
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
}

// RoutingTableSize is how many DHT servers the node's routing table holds.
func (s *Service) RoutingTableSize() int { return s.dht.RoutingTable().Size() }

// Candidates returns up to num peers of the DHT's routing table that serve
// as relays (they speak HopProtocol, as identify told).
func (s *Service) Candidates(num int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, p := range s.dht.RoutingTable().ListPeers() {
		if len(out) >= num {
			break
		}
		if ok, _ := s.cfg.Host.Peerstore().SupportsProtocols(p, HopProtocol); len(ok) == 0 {
			continue
		}
		out = append(out, s.cfg.Host.Peerstore().PeerInfo(p))
	}
	return out
}

// Relays sends AutoRelay up to num peers of the DHT's routing table that
// serve as relays (go-libp2p's peer source for AutoRelay with a peer
// source).
func (s *Service) Relays(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	go func() {
		defer close(out)
		for _, ai := range s.Candidates(num) {
			select {
			case out <- ai:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
