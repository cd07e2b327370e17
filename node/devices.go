package node

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/contacts"
)

// A node is one device of a person (see contacts/device.go). A node that
// has never joined another is the first device of a person of its own,
// whose ID is its peer ID. Its devices are kept in the contact store.

// Device errors of the node.
var (
	// ErrJoined means this device belongs to a person already and cannot
	// join another.
	ErrJoined = errors.New("node: this device is already a device of another person")
	// ErrHasDevices means this device is the first device of a person that
	// has other devices: it cannot join another person.
	ErrHasDevices = errors.New("node: this device is the first of a person with other devices; it cannot join another person")
)

// devicesMu orders the device operations of all nodes of the process
// (there is one in practice): each reads the own chain, then writes.
var devicesMu sync.Mutex

// Device is a device of this node's person.
type Device struct {
	// Device is the device's peer ID.
	Device peer.ID `json:"device"`
	// Name is what the device goes by; the first device goes by the
	// person's name.
	Name string `json:"name"`
	// First is set for the person's first device, whose peer ID is the
	// person ID. It cannot be revoked.
	First bool `json:"first"`
	// Self is set for this node.
	Self bool `json:"self"`
	// ApprovedBy is the device that approved it, Approved when.
	ApprovedBy peer.ID   `json:"approved_by,omitempty"`
	Approved   time.Time `json:"approved,omitzero"`
	// Revoked is when it was revoked, if it was.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Devices is this node's person and its devices as this node knows them.
type Devices struct {
	// Person is the person ID: the first device's peer ID.
	Person peer.ID `json:"person"`
	// Self is this node's peer ID.
	Self peer.ID `json:"self"`
	// Devices are the person's devices that this node knows: itself, the
	// devices of its grant chain, those it approved and those it learned
	// of. The first device comes first.
	Devices []Device `json:"devices"`
	// PendingLink is set while this device waits for the grant that
	// answers its link request.
	PendingLink bool `json:"pending_link"`
}

// ownChain returns this node's card as stored and its device chain (its
// own self-signed certificate for a first device).
func (n *Node) ownChain(now time.Time) (*contacts.Card, *contacts.DeviceChain, error) {
	me, err := n.store.Me()
	if err != nil {
		return nil, nil, err
	}
	card, err := contacts.ParseCard(me.Card, now)
	if err != nil {
		return nil, nil, fmt.Errorf("own card: %w", err)
	}
	if dc := card.Device(); dc != nil {
		return card, dc, nil
	}
	// A first device: its chain is its self-signed certificate.
	dc, err := contacts.VerifyDeviceChain(card.Chain()[len(card.Chain())-1:], now)
	if err != nil {
		return nil, nil, fmt.Errorf("own certificate: %w", err)
	}
	if dc.Person != n.id.ID() {
		return nil, nil, fmt.Errorf("own card: %w", contacts.ErrPeerIDMismatch)
	}
	return card, dc, nil
}

// Devices lists this node's person's devices.
func (n *Node) Devices() (Devices, error) {
	now := time.Now()
	_, dc, err := n.ownChain(now)
	if err != nil {
		return Devices{}, err
	}
	out := Devices{Person: dc.Person, Self: n.id.ID()}
	_, err = n.store.LinkRequest()
	out.PendingLink = err == nil
	stored, err := n.store.Devices()
	if err != nil {
		return Devices{}, err
	}
	seen := map[peer.ID]bool{}
	add := func(d contacts.PersonDevice) {
		if seen[d.Device] {
			return
		}
		seen[d.Device] = true
		out.Devices = append(out.Devices, Device{
			Device: d.Device, Name: d.Name, First: d.First, Self: d.Device == n.id.ID(),
			ApprovedBy: d.ApprovedBy, Approved: d.Issued, Revoked: d.Revoked,
		})
	}
	// The stored devices are of this person only once it has any (a
	// device that joined another person keeps none of its own).
	for _, d := range stored {
		add(d)
	}
	// The own chain's devices, stored or not.
	for i := range dc.Links {
		add(contacts.DeviceFromLink(dc, i))
	}
	me, _ := n.store.Me()
	for i, d := range out.Devices {
		if d.First && d.Name == "" {
			out.Devices[i].Name = personName(dc, me)
		}
	}
	// The first device first, then as stored (by name).
	for i, d := range out.Devices {
		if d.First && i > 0 {
			copy(out.Devices[1:i+1], out.Devices[:i])
			out.Devices[0] = d
			break
		}
	}
	return out, nil
}

// personName is the first device's display name, as its certificate gives
// it.
func personName(dc *contacts.DeviceChain, me *contacts.Contact) string {
	certs := dc.Certificates()
	if name := certs[len(certs)-1].Subject.CommonName; name != "" {
		return name
	}
	if me != nil {
		return me.DisplayName
	}
	return ""
}

// LinkDevice makes this device's link request, asking to go by name (the
// host name when empty), and keeps it until a grant answers it; a second
// request replaces the first. A device that joined a person already may
// ask again, to be approved again by that same person (after a revocation,
// or before its grant expires). It returns the request file.
func (n *Node) LinkDevice(name string) ([]byte, error) {
	devicesMu.Lock()
	defer devicesMu.Unlock()
	now := time.Now()
	card, dc, err := n.ownChain(now)
	if err != nil {
		return nil, err
	}
	stored, err := n.store.Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range stored {
		if dc.IsFirst() && d.Device != n.id.ID() && d.ApprovedBy != "" {
			return nil, ErrHasDevices
		}
	}
	if strings.TrimSpace(name) == "" && !dc.IsFirst() {
		name = dc.Device().Name
	}
	if strings.TrimSpace(name) == "" {
		name, _ = os.Hostname()
	}
	// The request carries the device's own certificate: the self-signed
	// one of a first device, the current grant of a joined one (whose
	// subject key is the same).
	req, err := contacts.NewLinkRequest(n.id, card.Certificate(), name, now)
	if err != nil {
		return nil, err
	}
	if err := n.store.SetLinkRequest(req); err != nil {
		return nil, err
	}
	return req.Marshal(), nil
}

// ApproveDevice approves a link request: this device issues the new device
// a grant as a device of its person. It returns the grant file, which
// carries the person's revocations, and the new device.
func (n *Node) ApproveDevice(request []byte) ([]byte, Device, error) {
	devicesMu.Lock()
	defer devicesMu.Unlock()
	now := time.Now()
	req, err := contacts.ParseLinkRequest(request, now)
	if err != nil {
		return nil, Device{}, err
	}
	_, dc, err := n.ownChain(now)
	if err != nil {
		return nil, Device{}, err
	}
	revs, err := n.store.Revocations(dc.Person)
	if err != nil {
		return nil, Device{}, err
	}
	// A revoked device approves nothing that its contacts would take.
	if err := revs.Check(dc); err != nil {
		return nil, Device{}, fmt.Errorf("this device: %w", err)
	}
	chain, err := contacts.Approve(n.id, dc.Certificates(), req, now)
	if err != nil {
		return nil, Device{}, err
	}
	grant, err := contacts.GrantCard(chain, revs.All(), now)
	if err != nil {
		return nil, Device{}, err
	}
	if err := n.storeChain(dc); err != nil {
		return nil, Device{}, err
	}
	nd := contacts.DeviceFromLink(grant.Device(), 0)
	if err := n.store.PutDevice(nd); err != nil {
		return nil, Device{}, err
	}
	log.Infow("approved a device", "device", nd.Device, "name", nd.Name, "person", dc.Person)
	return grant.Marshal(), Device{Device: nd.Device, Name: nd.Name, ApprovedBy: nd.ApprovedBy, Approved: nd.Issued}, nil
}

// storeChain stores the devices of a verified chain of this node's person.
func (n *Node) storeChain(dc *contacts.DeviceChain) error {
	for i := range dc.Links {
		if err := n.store.PutDevice(contacts.DeviceFromLink(dc, i)); err != nil {
			return err
		}
	}
	return nil
}

// JoinDevice takes the grant that answers this device's link request: its
// certificate chain becomes the grant chain, so that its card names the
// person, and it learns the person's devices and revocations the grant
// carries.
func (n *Node) JoinDevice(grantFile []byte) (Devices, error) {
	if err := n.joinDevice(grantFile); err != nil {
		return Devices{}, err
	}
	// People near see the new certificate at once (a contact of the
	// person near then takes the device as the contact's, see
	// followNearDevices).
	n.near.Announce()
	return n.Devices()
}

func (n *Node) joinDevice(grantFile []byte) error {
	devicesMu.Lock()
	defer devicesMu.Unlock()
	now := time.Now()
	grant, err := contacts.ParseCard(grantFile, now)
	if err != nil {
		return err
	}
	// Whose grant it is comes before whether one was asked for: a grant
	// for another key is the mistake to name.
	var req *contacts.LinkRequest
	if grant.PeerID() == n.id.ID() {
		if req, err = n.store.LinkRequest(); err != nil {
			return err
		}
	}
	dc, err := contacts.Join(n.id, req, grant)
	if err != nil {
		return err
	}
	if _, own, err := n.ownChain(now); err != nil {
		return err
	} else if !own.IsFirst() && own.Person != dc.Person {
		return fmt.Errorf("%w (of %s)", ErrJoined, own.Person)
	}
	for _, r := range grant.Revocations() {
		if _, err := n.store.AddRevocation(r, dc); err != nil {
			log.Warnw("a revocation of the grant is refused", "device", r.Device, "error", err)
		}
	}
	revs, err := n.store.Revocations(dc.Person)
	if err != nil {
		return err
	}
	if err := revs.Check(dc); err != nil {
		return err
	}
	card, err := contacts.NewCard(n.id, dc.Certificates(), nil, now)
	if err != nil {
		return err
	}
	me, err := n.store.Me()
	if err != nil {
		return err
	}
	me.SetCard(card)
	if err := n.store.SetMe(me); err != nil {
		return err
	}
	if err := n.storeChain(dc); err != nil {
		return err
	}
	if err := n.store.SetLinkRequest(nil); err != nil {
		return err
	}
	log.Infow("joined a person as one of its devices", "person", dc.Person, "name", dc.Device().Name)
	return nil
}

// RevokeDevice revokes a device of this node's person (by peer ID, name or
// a unique prefix), signed by this device. It returns the device and the
// revocation file.
func (n *Node) RevokeDevice(query string) (Device, []byte, error) {
	devicesMu.Lock()
	defer devicesMu.Unlock()
	now := time.Now()
	_, dc, err := n.ownChain(now)
	if err != nil {
		return Device{}, nil, err
	}
	if err := n.storeChain(dc); err != nil {
		return Device{}, nil, err
	}
	ds, err := n.Devices()
	if err != nil {
		return Device{}, nil, err
	}
	d, err := resolveDevice(ds.Devices, query)
	if errors.Is(err, contacts.ErrDeviceNotFound) {
		// A device this node never heard of may still be revoked by ID.
		if id, perr := peer.Decode(query); perr == nil {
			d, err = Device{Device: id}, nil
		}
	}
	if err != nil {
		return Device{}, nil, err
	}
	if d.First || d.Device == dc.Person {
		return Device{}, nil, contacts.ErrRevokePerson
	}
	r, err := contacts.Revoke(n.id, dc.Certificates(), d.Device, now)
	if err != nil {
		return Device{}, nil, err
	}
	var grants []*contacts.DeviceChain
	stored, err := n.store.Devices()
	if err != nil {
		return Device{}, nil, err
	}
	for _, sd := range stored {
		if sd.Device != d.Device || len(sd.Chain) == 0 {
			continue
		}
		if certs, err := sd.Certificates(); err == nil {
			if g, err := contacts.VerifyDeviceChain(certs, now); err == nil {
				grants = append(grants, g)
			}
		}
	}
	if _, err := n.store.AddRevocation(r, grants...); err != nil {
		return Device{}, nil, err
	}
	log.Infow("revoked a device", "device", d.Device, "name", d.Name, "person", dc.Person)
	n.spreadRevocations()
	d.Revoked, d.Self = r.Time, d.Device == n.id.ID()
	return d, r.MarshalPEM(), nil
}

// resolveDevice finds the device a user means: a device ID, a name
// (case-insensitive), or a prefix of either that only one device has.
func resolveDevice(all []Device, query string) (Device, error) {
	d, ok, err := contacts.Pick(all, query, func(d Device) (peer.ID, string) { return d.Device, d.Name })
	if err == nil && !ok {
		err = fmt.Errorf("%w: %q", contacts.ErrDeviceNotFound, query)
	}
	return d, err
}

// maxCardRevocations bounds the revocations a card carries (a card is at
// most 64 KiB; a revocation is 1 to 2 KiB with its signer's chain): the
// newest are kept.
const maxCardRevocations = 16

// WithDeviceRevocations returns c carrying the newest revocations this node
// knows of its own person, so that they spread with its card: MyCard should
// hand its card out through it. A card of a person with no revocations is
// returned as it is.
func (n *Node) WithDeviceRevocations(c *contacts.Card) (*contacts.Card, error) {
	revs, err := n.store.Revocations(c.PersonID())
	if err != nil {
		return nil, err
	}
	all := revs.All()
	if len(all) == 0 {
		return c, nil
	}
	if len(all) > maxCardRevocations {
		all = all[len(all)-maxCardRevocations:]
	}
	return c.WithRevocations(all, time.Now())
}

// DeviceCardKey changes whenever what WithDeviceRevocations adds to this
// node's card does: MyCard's cache key should include it.
func (n *Node) DeviceCardKey() string {
	return n.store.RevocationsStamp(n.store.OwnPerson())
}

// AttachDeviceCard takes a verified card of another device of a person.
// When the person is a contact (and the card is not the contact's own), the
// device becomes an endpoint of that contact: it returns the contact and
// true, or an error such as contacts.ErrDeviceRevoked. A device of this
// node's own person is contacts.ErrIsMe (its revocations and devices are
// taken). Any other card is left to the caller (nil, false, nil); the
// revocations it carries are taken in every case. AddCard should call it
// first, and so should the places that receive cards.
func (n *Node) AttachDeviceCard(card *contacts.Card) (*contacts.Contact, bool, error) {
	if _, err := n.store.TakeRevocations(card); err != nil {
		return nil, false, err
	}
	dc := card.Device()
	if dc == nil {
		return nil, false, nil
	}
	now := time.Now()
	if _, own, err := n.ownChain(now); err == nil && own.Person == dc.Person {
		revs, err := n.store.Revocations(dc.Person)
		if err == nil && revs.Check(dc) == nil {
			if err := n.storeChain(dc); err != nil {
				return nil, false, err
			}
		}
		return nil, false, contacts.ErrIsMe
	}
	if dc.Person == card.PeerID() {
		return nil, false, nil
	}
	if _, err := n.store.Get(dc.Person); err != nil {
		return nil, false, nil
	}
	c, err := n.store.AttachDevice(card, now)
	if err != nil {
		return nil, false, err
	}
	return c, true, nil
}

// spreadRevocations sends this node's card, which carries the person's
// device revocations, to each contact connected now, in the background;
// the others get it when they next connect (followConnections).
func (n *Node) spreadRevocations() {
	list, err := n.store.List()
	if err != nil {
		return
	}
	for _, c := range list {
		if c.WatcherPermission == contacts.Blocked {
			continue
		}
		if n.connected(c.PeerID) {
			n.sendCard(c.PeerID)
		}
		for _, d := range c.Devices {
			if d.Revoked.IsZero() && n.connected(d.Device) {
				n.sendCard(d.Device)
			}
		}
	}
}
