package contacts

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// StoreFile is the name of the contact database in a data directory.
const StoreFile = "contacts.db"

// ErrDamagedRecord means a stored contact record cannot be read: damaged on
// disk, or written by an incompatible version. OpenStore leaves such a
// record out (and logs it); Add replaces it and Remove deletes it.
var ErrDamagedRecord = errors.New("contacts: stored contact record is damaged")

// ErrStoreDamaged means the contact store's file is damaged: cut short, or
// with pages that make no sense.
var ErrStoreDamaged = errors.New("contacts: contact store file is damaged")

var log = logging.Logger("peercollab/contacts")

// guardBolt turns what bbolt does on a damaged file into an error wrapping
// ErrStoreDamaged: a panic of its own, or a memory fault where a page number
// points past the end of the mapped file (a fatal SIGBUS unless made a
// panic, as it is while guarded). bbolt rolls back the transaction it
// panicked in; a panic in Open leaves the file mapped and locked until the
// process ends. Use as "defer guardBolt(&err)()", around bbolt's code only.
func guardBolt(err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			*err = fmt.Errorf("%w: %v", ErrStoreDamaged, r)
		}
	}
}

var (
	bucketContacts = []byte("contacts")
	bucketMeta     = []byte("meta")
	keyMe          = []byte("me")
)

// Store is the durable contact list: a bbolt database, written with fsync'd
// transactions, so an acknowledged write survives a crash. Its methods are
// safe for concurrent use. Only one process may open a store at a time.
type Store struct {
	db *bolt.DB
	// mu orders commits with their events, so subscribers see changes in
	// commit order.
	mu      sync.Mutex
	emitter event.Emitter

	// The whole list is kept in memory too, so that reads (every
	// invitation and snapshot asks who a peer is) cost no decoding;
	// writes go to the database first and then here.
	cacheMu sync.RWMutex
	cache   map[peer.ID]*Contact
	me      *Contact
	// devices maps the unrevoked devices of contacts (endpoints besides
	// their PeerID) to the contact's PeerID.
	devices map[peer.ID]peer.ID
	// mePerson is the person of our own card (see OwnPerson).
	mePerson peer.ID
}

var _ Anchors = (*Store)(nil)

// OpenStore opens (creating if needed) the contact database at path. When bus
// is not nil the store emits EvtContactChanged on it. A database held by
// another process gives ErrStoreLocked after a second; a damaged file, an
// error wrapping ErrStoreDamaged.
func OpenStore(path string, bus event.Bus) (*Store, error) {
	db, err := openBolt(path)
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, ErrStoreLocked
	}
	if err != nil {
		return nil, fmt.Errorf("open contact store: %w", err)
	}
	err = (&Store{db: db}).update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketContacts, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open contact store: %w", err)
	}
	s := &Store{db: db, cache: map[peer.ID]*Contact{}, devices: map[peer.ID]peer.ID{}}
	// A record that cannot be read is left out, and said so: one damaged
	// record must not keep the node from starting. A damaged "me" is made
	// afresh by EnsureMe.
	err = s.view(func(tx *bolt.Tx) error {
		switch me, err := decode(nil, tx.Bucket(bucketMeta).Get(keyMe)); {
		case err == nil:
			s.me = me
			s.mePerson = personOfMe(me)
		case !errors.Is(err, ErrContactNotFound):
			log.Errorw("our own stored contact cannot be read; it is made afresh", "error", err)
		}
		return tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			c, err := decode(k, v)
			if err != nil {
				log.Errorw("a stored contact cannot be read; it is left out", "contact", peerKey(k), "error", err)
				return nil
			}
			s.cache[c.PeerID] = c
			s.indexDevices(nil, c)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open contact store: %w", err)
	}
	if bus != nil {
		s.emitter, err = bus.Emitter(new(EvtContactChanged))
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// openBolt opens the bbolt database at path, guarded.
func openBolt(path string) (db *bolt.DB, err error) {
	defer guardBolt(&err)()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	switch {
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %v", ErrStoreDamaged, err)
	}
	return db, err
}

// view runs fn in a read transaction, guarded.
func (s *Store) view(fn func(*bolt.Tx) error) (err error) {
	defer guardBolt(&err)()
	return s.db.View(fn)
}

// Close closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.emitter != nil {
		s.emitter.Close()
		s.emitter = nil
	}
	return s.db.Close()
}

// Me returns our own contact, or ErrContactNotFound before SetMe.
func (s *Store) Me() (*Contact, error) {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	if s.me == nil {
		return nil, ErrContactNotFound
	}
	return s.me.clone(), nil
}

// SetMe stores our own contact, replacing any earlier one.
func (s *Store) SetMe(c *Contact) error {
	return s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		change := Updated
		if tx.Bucket(bucketMeta).Get(keyMe) == nil {
			change = Added
		}
		if err := put(tx.Bucket(bucketMeta), keyMe, c); err != nil {
			return nil, err
		}
		return &EvtContactChanged{Change: change, Contact: *c.clone(), Me: true}, nil
	})
}

// Add stores a new contact. It fails with ErrContactExists if the peer is a
// contact already, and with ErrIsMe for our own peer ID.
func (s *Store) Add(c *Contact) error {
	return s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		if me, _ := decode(nil, tx.Bucket(bucketMeta).Get(keyMe)); me != nil && me.PeerID == c.PeerID {
			return nil, ErrIsMe
		}
		b := tx.Bucket(bucketContacts)
		if _, err := decode([]byte(c.PeerID), b.Get([]byte(c.PeerID))); !errors.Is(err, ErrContactNotFound) && !errors.Is(err, ErrDamagedRecord) {
			return nil, ErrContactExists // a damaged record is replaced
		}
		if err := put(b, []byte(c.PeerID), c); err != nil {
			return nil, err
		}
		return &EvtContactChanged{Change: Added, Contact: *c.clone()}, nil
	})
}

// Update applies fn to the stored contact id and stores the result, in one
// transaction. fn must not change PeerID. It returns the updated contact.
func (s *Store) Update(id peer.ID, fn func(*Contact) error) (*Contact, error) {
	var out *Contact
	// fn runs inside the guarded transaction; a panic of fn's own is
	// carried out of it and raised again, not taken for a damaged file.
	var fnPanic any
	err := s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		b := tx.Bucket(bucketContacts)
		c, err := decode([]byte(id), b.Get([]byte(id)))
		if err != nil {
			return nil, err
		}
		if err := callCaught(fn, c, &fnPanic); err != nil || fnPanic != nil {
			return nil, err
		}
		if c.PeerID != id {
			return nil, errors.New("contacts: update may not change the peer ID")
		}
		if err := put(b, []byte(id), c); err != nil {
			return nil, err
		}
		out = c
		return &EvtContactChanged{Change: Updated, Contact: *c.clone()}, nil
	})
	if fnPanic != nil {
		panic(fnPanic)
	}
	return out, err
}

// callCaught calls fn(c), catching a panic of fn into *caught.
func callCaught(fn func(*Contact) error, c *Contact, caught *any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			*caught = r
		}
	}()
	return fn(c)
}

// Remove deletes the contact id, a damaged record of it too.
func (s *Store) Remove(id peer.ID) error {
	return s.write(func(tx *bolt.Tx) (*EvtContactChanged, error) {
		b := tx.Bucket(bucketContacts)
		c, err := decode([]byte(id), b.Get([]byte(id)))
		if errors.Is(err, ErrDamagedRecord) {
			c, err = &Contact{PeerID: id}, nil
		}
		if err != nil {
			return nil, err
		}
		if err := b.Delete([]byte(id)); err != nil {
			return nil, err
		}
		return &EvtContactChanged{Change: Deleted, Contact: *c}, nil
	})
}

// Get returns the contact id, or ErrContactNotFound.
func (s *Store) Get(id peer.ID) (*Contact, error) {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	c, ok := s.cache[id]
	if !ok {
		return nil, ErrContactNotFound
	}
	return c.clone(), nil
}

// IsContact reports whether id is in the contact list, or is an unrevoked
// device that was accepted as a contact's (see AttachDevice).
func (s *Store) IsContact(id peer.ID) bool {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	if _, ok := s.cache[id]; ok {
		return true
	}
	_, ok := s.devices[id]
	return ok
}

// List returns every contact but "me", ordered by nickname.
func (s *Store) List() ([]*Contact, error) {
	s.cacheMu.RLock()
	out := make([]*Contact, 0, len(s.cache))
	for _, c := range s.cache {
		out = append(out, c.clone())
	}
	s.cacheMu.RUnlock()
	slices.SortFunc(out, func(a, b *Contact) int {
		if c := strings.Compare(strings.ToLower(a.Nickname), strings.ToLower(b.Nickname)); c != 0 {
			return c
		}
		return strings.Compare(string(a.PeerID), string(b.PeerID))
	})
	return out, nil
}

// Resolve finds the contact a user means by query: a peer ID, a nickname
// (case-insensitive), or a prefix of either that only one contact has. It
// returns ErrContactNotFound or ErrAmbiguous (naming the candidates).
func (s *Store) Resolve(query string) (*Contact, error) {
	if query == "" {
		return nil, ErrContactNotFound
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	c, ok, err := Pick(all, query, func(c *Contact) (peer.ID, string) { return c.PeerID, c.Nickname })
	if err == nil && !ok {
		err = fmt.Errorf("%w: %q", ErrContactNotFound, query)
	}
	return c, err
}

// write runs fn in a read-write transaction and, once it has committed,
// emits the event fn returned.
func (s *Store) write(fn func(tx *bolt.Tx) (*EvtContactChanged, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ev *EvtContactChanged
	err := s.update(func(tx *bolt.Tx) error {
		var err error
		ev, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	if ev == nil {
		return nil
	}
	s.cacheMu.Lock()
	switch {
	case ev.Me:
		s.me = ev.Contact.clone()
		s.mePerson = personOfMe(s.me)
	case ev.Change == Deleted:
		s.indexDevices(s.cache[ev.Contact.PeerID], nil)
		delete(s.cache, ev.Contact.PeerID)
	default:
		s.indexDevices(s.cache[ev.Contact.PeerID], &ev.Contact)
		s.cache[ev.Contact.PeerID] = ev.Contact.clone()
	}
	s.cacheMu.Unlock()
	if s.emitter != nil {
		s.emitter.Emit(*ev)
	}
	return nil
}

// update runs fn in a write transaction, guarded (fn is the store's own
// code, never a caller's: Update's fn only edits a decoded contact).
func (s *Store) update(fn func(*bolt.Tx) error) (err error) {
	defer guardBolt(&err)()
	return s.db.Update(fn)
}

// storedContact is a contact as stored: its JSON view plus the card.
type storedContact struct {
	Contact
	Card []byte `json:"card"`
	// Devices are Contact.Devices, and DeviceCards their cards, in order.
	Devices     []ContactDevice `json:"devices,omitempty"`
	DeviceCards [][]byte        `json:"device_cards,omitempty"`
}

// stored is c as stored.
func stored(c *Contact) storedContact {
	var cards [][]byte
	for _, d := range c.Devices {
		cards = append(cards, d.Card)
	}
	return storedContact{*c, c.Card, c.Devices, cards}
}

func put(b *bolt.Bucket, key []byte, c *Contact) error {
	v, err := json.Marshal(stored(c))
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

// decode reads a stored contact: the record of key in the contacts bucket,
// or "me" when key is nil. It returns ErrContactNotFound when there is none,
// and an error wrapping ErrDamagedRecord when it is not a contact record,
// or the record of a peer other than its key's.
func decode(key, v []byte) (*Contact, error) {
	if v == nil {
		return nil, ErrContactNotFound
	}
	var r storedContact
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamagedRecord, err)
	}
	if err := r.PeerID.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamagedRecord, err)
	}
	if key != nil && string(key) != string(r.PeerID) {
		return nil, fmt.Errorf("%w: the record of %s is stored under %s", ErrDamagedRecord, r.PeerID, peerKey(key))
	}
	r.Contact.Card = r.Card
	r.Contact.Devices = r.Devices
	for i := range r.Contact.Devices {
		if i < len(r.DeviceCards) {
			r.Contact.Devices[i].Card = r.DeviceCards[i]
		}
	}
	return &r.Contact, nil
}

// peerKey names the peer of a contacts bucket key, for messages.
func peerKey(k []byte) string {
	if id, err := peer.IDFromBytes(k); err == nil {
		return id.String()
	}
	return fmt.Sprintf("%x", k)
}
