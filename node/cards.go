package node

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/reach"
)

// Info describes the node itself.
type Info struct {
	PeerID      peer.ID              `json:"peer_id"`
	DisplayName string               `json:"display_name"`
	Email       string               `json:"email,omitempty"`
	Fingerprint contacts.Fingerprint `json:"fingerprint"`
	// Addrs are all the node's addresses, relayed ones included.
	Addrs []ma.Multiaddr `json:"addrs"`
	// Reachability is what the node believes of itself: public (others
	// can dial it), private (behind NAT or a firewall), or unknown.
	Reachability string `json:"reachability"`
	// PublicAddrs, PrivateAddrs and RelayAddrs sort Addrs: addresses that
	// look public, private ones (reachable on the local networks only),
	// and circuits through relays.
	PublicAddrs  []ma.Multiaddr `json:"public_addrs"`
	PrivateAddrs []ma.Multiaddr `json:"private_addrs"`
	RelayAddrs   []ma.Multiaddr `json:"relay_addrs"`
	// HolePunching is set when the node can upgrade relayed connections
	// to direct ones (DCUtR), which needs an address that looks public.
	HolePunching bool `json:"hole_punching"`
	// Relays is the state of the reservations on the static relays.
	Relays []reach.RelayStatus `json:"relays,omitempty"`
	// Protocols are the protocols the node answers.
	Protocols []protocol.ID `json:"protocols"`
	Version   string        `json:"version"`
	// Connections counts the open connections, and Peers the peers they
	// go to.
	Connections int `json:"connections"`
	Peers       int `json:"peers"`
}

// Info returns the node's identity and addresses.
func (n *Node) Info() (Info, error) {
	me, err := n.store.Me()
	if err != nil {
		return Info{}, err
	}
	info := Info{
		PeerID:       me.PeerID,
		DisplayName:  me.DisplayName,
		Email:        me.Email,
		Fingerprint:  me.Fingerprint,
		Addrs:        n.Addrs(),
		Reachability: "unknown",
		Protocols:    n.host.Mux().Protocols(),
		Version:      Version,
		Connections:  len(n.host.Network().Conns()),
		Peers:        len(n.host.Network().Peers()),
	}
	for _, a := range info.Addrs {
		switch {
		case isCircuit(a):
			info.RelayAddrs = append(info.RelayAddrs, a)
		case manet.IsPublicAddr(a):
			info.PublicAddrs = append(info.PublicAddrs, a)
		default:
			info.PrivateAddrs = append(info.PrivateAddrs, a)
		}
	}
	if r, ok := n.host.(interface{ Reachability() network.Reachability }); ok {
		switch r.Reachability() {
		case network.ReachabilityPublic:
			info.Reachability = "public"
		case network.ReachabilityPrivate:
			info.Reachability = "private"
		}
	}
	info.HolePunching = slices.Contains(info.Protocols, holepunch.Protocol)
	info.Relays = n.reach.Relays()
	return info, nil
}

// Addrs are the addresses others can reach the node on: the host's own and
// those through its static relays (see withCircuits).
func (n *Node) Addrs() []ma.Multiaddr { return n.host.Addrs() }

// withCircuits is the host's address factory: it adds the node's circuit
// addresses through its static relays, which it can always build itself
// (AutoRelay is not used, see package reach). So identify's signed record,
// the card and the DHT record all carry them, and a peer that learned this
// node's addresses by identify can still reach it through a relay after
// the connection it had is gone.
func (n *Node) withCircuits(addrs []ma.Multiaddr) []ma.Multiaddr {
	for _, c := range n.circuitAddrs() {
		if !slices.ContainsFunc(addrs, c.Equal) {
			addrs = append(addrs, c)
		}
	}
	return addrs
}

// MyCard returns the node's card: its certificate chain and a signed record
// of its current addresses. The card is rebuilt when the addresses or the
// certificate change, and every cardMaxAge.
func (n *Node) MyCard() (*contacts.Card, error) {
	me, err := n.store.Me()
	if err != nil {
		return nil, err
	}
	addrs := n.Addrs()
	key := fmt.Sprint(me.Fingerprint, addrs)
	now := time.Now()
	n.cardMu.Lock()
	defer n.cardMu.Unlock()
	if n.card != nil && n.cardKey == key && now.Sub(n.cardMade) < cardMaxAge {
		return n.card, nil
	}
	stored, err := contacts.ParseCard(me.Card, now)
	if err != nil {
		return nil, fmt.Errorf("own card: %w", err)
	}
	c, err := contacts.NewCard(n.id, stored.Chain(), addrs, now)
	if err != nil {
		return nil, err
	}
	n.card, n.cardKey, n.cardMade = c, key, now
	return c, nil
}

// cardMaxAge bounds how long MyCard hands out one signed address record.
const cardMaxAge = 10 * time.Minute

// CardCheck is a card with the verdict of the contact list on it.
type CardCheck struct {
	Card  *contacts.Card
	Trust contacts.Trust
	// TrustErr says why the card is not trusted (contacts.ErrUntrusted,
	// contacts.ErrChainTooDeep); nil when it is.
	TrustErr error
}

// CheckCard parses and verifies a card and evaluates it against the contact
// list. A card that cannot be verified is an error; an untrusted one is not.
func (n *Node) CheckCard(data []byte) (CardCheck, error) {
	card, err := contacts.ParseCard(data, time.Now())
	if err != nil {
		return CardCheck{}, err
	}
	trust, terr := contacts.Evaluate(card, n.store, n.cfg.MaxTrustDepth)
	return CardCheck{Card: card, Trust: trust, TrustErr: terr}, nil
}

// AddOptions are the user's choices when adding a contact; nil fields keep
// the defaults (or, for a contact that exists, its current values).
type AddOptions struct {
	Nickname   *string
	Watch      *bool
	Permission *contacts.WatcherPermission
}

func (o AddOptions) apply(c *contacts.Contact) error {
	if o.Nickname != nil {
		if err := checkNickname(*o.Nickname); err != nil {
			return err
		}
		c.Nickname = *o.Nickname
	}
	if o.Watch != nil {
		c.Watch = *o.Watch
	}
	if o.Permission != nil {
		c.WatcherPermission = *o.Permission
	}
	return nil
}

// ErrBadNickname means a nickname is empty or too long.
var ErrBadNickname = errors.New("node: nickname must be 1 to 255 characters")

func checkNickname(s string) error {
	if s == "" || len([]rune(s)) > contacts.MaxTextLen {
		return ErrBadNickname
	}
	return nil
}

// AddCard adds the peer of a card to the contacts, or, when it is a contact
// already, replaces its card (keeping the user's settings unless opts says
// otherwise). It returns the stored contact, whether it was new, and the
// trust evaluation made before the card was stored.
func (n *Node) AddCard(data []byte, opts AddOptions) (*contacts.Contact, bool, CardCheck, error) {
	chk, err := n.CheckCard(data)
	if err != nil {
		return nil, false, chk, err
	}
	if chk.Card.PeerID() == n.id.ID() {
		return nil, false, chk, contacts.ErrIsMe
	}
	c := contacts.ContactFromCard(chk.Card, time.Now())
	if e, ok := n.watch.Get(c.PeerID); ok && e.Watching && opts.Watch == nil {
		// Watched for this run already: the new contact keeps the watch,
		// durably (its watch flag off would end it).
		c.Watch = true
	}
	if err := opts.apply(c); err != nil {
		return nil, false, chk, err
	}
	err = n.store.Add(c)
	if !errors.Is(err, contacts.ErrContactExists) {
		return c, err == nil, chk, err
	}
	c, err = n.store.Update(c.PeerID, func(c *contacts.Contact) error {
		c.SetCard(chk.Card)
		return opts.apply(c)
	})
	return c, false, chk, err
}

// UpdateContact changes the user's settings of a contact.
func (n *Node) UpdateContact(id peer.ID, opts AddOptions) (*contacts.Contact, error) {
	return n.store.Update(id, opts.apply)
}

// Endorse issues an endorsement of a card's peer, signed by this node, and
// returns the endorsed card: the new certificate, then this node's own
// chain, then the peer's signed record as the card carried it.
func (n *Node) Endorse(data []byte, validity time.Duration) (*contacts.Card, error) {
	now := time.Now()
	card, err := contacts.ParseCard(data, now)
	if err != nil {
		return nil, err
	}
	me, err := n.store.Me()
	if err != nil {
		return nil, err
	}
	mine, err := contacts.ParseCard(me.Card, now)
	if err != nil {
		return nil, fmt.Errorf("own card: %w", err)
	}
	if validity <= 0 {
		validity = contacts.EndorsementValidity
	}
	cert, err := contacts.Endorse(n.id, mine.Certificate(), card.Certificate(), now, validity)
	if err != nil {
		return nil, err
	}
	// Remembered: a relay serving trusted peers only serves those it
	// endorsed too.
	if err := n.state.Put(bucketEndorsed, card.PeerID().String(), cert.NotAfter); err != nil {
		return nil, err
	}
	return card.WithChain(append([]*x509.Certificate{cert}, mine.Chain()...), now)
}

const bucketEndorsed = "endorsed"

// relayTrusts tells whether the relay serves p when it serves trusted
// peers only: a contact, or a peer this node endorsed (and the
// endorsement still runs).
func (n *Node) relayTrusts(p peer.ID) bool {
	if n.store.IsContact(p) {
		return true
	}
	var until time.Time
	found, err := n.state.Get(bucketEndorsed, p.String(), &until)
	return err == nil && found && time.Now().Before(until)
}

// addressRecord is the node's signed peer record of its current addresses,
// as the DHT holds it.
func (n *Node) addressRecord() ([]byte, error) {
	env, err := record.Seal(peer.PeerRecordFromAddrInfo(peer.AddrInfo{ID: n.id.ID(), Addrs: n.Addrs()}), n.id.PrivKey())
	if err != nil {
		return nil, err
	}
	return env.Marshal()
}
