package node

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/reach"
	"github.com/peercollab/peercollab/protocols/card"
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
	key := fmt.Sprint(me.Fingerprint, addrs, n.DeviceCardKey())
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
	// The person's device revocations spread with the card.
	if c, err = n.WithDeviceRevocations(c); err != nil {
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
	// Dropped lists, when AddCard replaced a contact's card, the
	// endorsements the replaced card carried and this one does not.
	Dropped []Endorser
	// Attached is set when AddCard took the card as another device of a
	// contact's person.
	Attached bool
}

// Endorser is a peer whose certificate vouches for a card: the issuer of
// one certificate of its chain.
type Endorser struct {
	PeerID      peer.ID `json:"peer_id"`
	DisplayName string  `json:"display_name"`
}

func (e Endorser) String() string { return fmt.Sprintf("%s (%s)", e.DisplayName, e.PeerID) }

// endorsers lists who vouches for a card: the issuers of its chain after
// its own certificate, nearest first.
func endorsers(c *contacts.Card) []Endorser {
	var out []Endorser
	for _, cert := range c.Chain()[1:] {
		id, err := contacts.KeyPeerID(cert)
		if err != nil {
			continue
		}
		out = append(out, Endorser{PeerID: id, DisplayName: cert.Subject.CommonName})
	}
	return out
}

// droppedEndorsements lists the endorsers of old that new lacks.
func droppedEndorsements(old, new *contacts.Card) []Endorser {
	kept := map[peer.ID]bool{}
	for _, e := range endorsers(new) {
		kept[e.PeerID] = true
	}
	var out []Endorser
	for _, e := range endorsers(old) {
		if !kept[e.PeerID] {
			out = append(out, e)
		}
	}
	return out
}

// sameChain tells whether two cards carry the same certificates (their
// signed address records may differ).
func sameChain(a, b *contacts.Card) bool {
	return slices.EqualFunc(a.Chain(), b.Chain(), func(x, y *x509.Certificate) bool { return bytes.Equal(x.Raw, y.Raw) })
}

// Refusals to replace a contact's card unasked (Windows'
// PEER_E_ALREADY_EXISTS): AddCard returns a *ReplaceError, which is
// contacts.ErrContactExists, and ErrDropsEndorsement too when the new card
// lacks an endorsement the stored one carries.
var ErrDropsEndorsement = errors.New("node: the new card lacks an endorsement that the stored card carries")

// ReplaceError says why AddCard left a contact's card as it was: the
// contact exists and the caller did not ask to replace its card.
type ReplaceError struct {
	Contact *contacts.Contact
	// Same is set when the card given is the one stored.
	Same bool
	// Dropped lists the endorsements the stored card carries that the
	// card given lacks.
	Dropped []Endorser
}

func (e *ReplaceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node: %s (%s) is a contact already", e.Contact.Nickname, e.Contact.PeerID)
	if e.Same {
		b.WriteString(", with this very card")
	}
	if len(e.Dropped) > 0 {
		names := make([]string, len(e.Dropped))
		for i, d := range e.Dropped {
			names[i] = d.String()
		}
		fmt.Fprintf(&b, "; this card would drop the endorsement by %s that the stored card carries", strings.Join(names, ", then by "))
	}
	b.WriteString("; nothing was changed")
	return b.String()
}

// Unwrap makes errors.Is find contacts.ErrContactExists, and
// ErrDropsEndorsement when the card would drop one.
func (e *ReplaceError) Unwrap() []error {
	if len(e.Dropped) > 0 {
		return []error{ErrDropsEndorsement, contacts.ErrContactExists}
	}
	return []error{contacts.ErrContactExists}
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
	// Replace lets AddCard replace the card of a peer that is a contact
	// already; without it that is refused (see ReplaceError).
	Replace bool
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

// AddCard adds the peer of a card to the contacts. When the peer is a
// contact already it changes nothing and returns a *ReplaceError, unless
// opts.Replace is set: then it replaces the card (keeping the user's
// settings unless opts says otherwise), and the returned CardCheck lists the
// endorsements the replaced card carried that are lost. It returns the
// stored contact, whether it was new, and the trust evaluation made before
// the card was stored.
func (n *Node) AddCard(data []byte, opts AddOptions) (*contacts.Contact, bool, CardCheck, error) {
	chk, err := n.CheckCard(data)
	if err != nil {
		return nil, false, chk, err
	}
	if chk.Card.PeerID() == n.id.ID() {
		return nil, false, chk, contacts.ErrIsMe
	}
	// A card of another device of a contact's person adds the device to
	// that contact: no card is replaced (see AttachDeviceCard).
	if c, attached, err := n.AttachDeviceCard(chk.Card); err != nil || attached {
		chk.Attached = attached
		return c, false, chk, err
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
		chk.Dropped = nil
		same := false
		if old, err := contacts.ParseCard(c.Card, time.Now()); err == nil {
			chk.Dropped = droppedEndorsements(old, chk.Card)
			same = sameChain(old, chk.Card)
		}
		if !opts.Replace {
			return &ReplaceError{Contact: c, Same: same, Dropped: chk.Dropped}
		}
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

// SetProfile changes this node's display name and e-mail address (Windows'
// UpdateContact on Me): it re-issues the node's self-signed certificate with
// the same key (contacts.Rename; the store's change is the "me.changed"
// event), People Near Me announces it at once, and the contacts connected
// now are sent the new card over the card protocol; the others get it when
// they next connect. A contact takes it as the same contact renamed, with
// its trust and the endorsements it holds unchanged: the key is the
// identity.
func (n *Node) SetProfile(p contacts.Profile) (*contacts.Contact, error) {
	me, err := contacts.Rename(n.store, n.id, p, time.Now())
	if err != nil {
		return nil, err
	}
	if err := n.state.Put(bucketSettings, keyRenamed, true); err != nil {
		log.Warnw("remember the rename", "error", err)
	}
	n.near.Announce()
	list, err := n.store.List()
	if err != nil {
		return me, nil
	}
	for _, c := range list {
		if c.WatcherPermission != contacts.Blocked && n.connected(c.PeerID) {
			n.sendCard(c.PeerID)
		}
	}
	return me, nil
}

// bucketCardSent holds, per contact, the fingerprint of the certificate
// this node last sent it over the card protocol; keyRenamed (in the
// settings) is set once the node has been renamed, so that contacts that
// were away hear of it when they connect.
const (
	bucketCardSent = "card_sent"
	keyRenamed     = "renamed"
	// keyRevocationsSent (after a peer ID in bucketCardSent): the
	// DeviceCardKey of the card last sent to it.
	keyRevocationsSent = "/revocations"
)

func (n *Node) connected(p peer.ID) bool {
	c := n.host.Network().Connectedness(p)
	return c == network.Connected || c == network.Limited
}

// sendCard sends contact p this node's hello, carrying its card, in the
// background, and takes p's answer as p's own hello.
func (n *Node) sendCard(p peer.ID) {
	if n.ctx.Err() != nil { // closing
		return
	}
	n.wg.Go(func() {
		stamp := n.DeviceCardKey() // before the card that carries them
		mine, err := n.hello(p)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, card.Timeout)
		defer cancel()
		theirs, err := card.Exchange(ctx, n.host, p, mine)
		if err != nil {
			log.Debugw("send card to a contact", "peer", p, "error", err)
			return
		}
		n.state.Put(bucketCardSent, p.String(), mine.Card.Fingerprint().String())
		n.state.Put(bucketCardSent, p.String()+keyRevocationsSent, stamp)
		n.cardReceived(p, theirs)
	})
}

// errUnchanged leaves a contact as it is in a store update.
var errUnchanged = errors.New("node: contact unchanged")

// cardReceived takes the card of a contact's hello as the contact's new
// name when it is a newer self-signed certificate of the contact's key
// (contacts.Renamed); any other hello changes nothing here.
func (n *Node) cardReceived(from peer.ID, h card.Hello) {
	if h.Card == nil {
		return
	}
	// Another device of a contact's person, and the revocations any card
	// carries (see AttachDeviceCard).
	if _, _, err := n.AttachDeviceCard(h.Card); err != nil {
		log.Debugw("device card of a hello", "peer", from, "error", err)
	}
	if !n.store.IsContact(from) {
		return
	}
	_, err := n.store.Update(from, func(c *contacts.Contact) error {
		changed, err := contacts.Renamed(c, h.Card, time.Now())
		if err != nil || !changed {
			return errUnchanged
		}
		return nil
	})
	if err == nil {
		log.Infow("a contact changed its name", "peer", from, "name", h.Card.Profile().DisplayName)
	}
}

// followConnections sends a contact that connects the node's new card when
// the node was renamed since it last sent it one. It runs until the
// subscription closes.
func (n *Node) followConnections(sub event.Subscription) {
	for e := range sub.Out() {
		ev := e.(event.EvtPeerConnectednessChanged)
		if ev.Connectedness != network.Connected && ev.Connectedness != network.Limited {
			continue
		}
		var renamed bool
		if found, err := n.state.Get(bucketSettings, keyRenamed, &renamed); err != nil || !found {
			renamed = false
		}
		// The person's device revocations, too, reach a contact that was
		// away when they were made.
		stamp := n.DeviceCardKey()
		revoked := !strings.HasPrefix(stamp, "0:")
		if !renamed && !revoked {
			continue
		}
		c, err := n.store.PersonOf(ev.Peer) // a contact's other devices too
		if err != nil || c.WatcherPermission == contacts.Blocked {
			continue
		}
		me, err := n.store.Me()
		if err != nil {
			continue
		}
		var sent, sentStamp string
		n.state.Get(bucketCardSent, ev.Peer.String(), &sent)
		n.state.Get(bucketCardSent, ev.Peer.String()+keyRevocationsSent, &sentStamp)
		if (renamed && sent != me.Fingerprint.String()) || (revoked && sentStamp != stamp) {
			n.sendCard(ev.Peer)
		}
	}
}
