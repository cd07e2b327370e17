package invitations

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/invite"
)

// Buckets of the invitation database: the index of records (without data
// and card), and each record's data and card under the same key.
const (
	bucket        = "invitations"
	payloadBucket = "invitation-payloads"
)

// recordVersion marks index records written without data and card (and
// with their intake class); older records carry both inline.
const recordVersion = 2

// errDamaged means a stored record cannot be read back.
var errDamaged = errors.New("invitations: damaged record")

// entry is an invitation as the service holds it in memory: the record
// without data and card, and its place in the intake accounting.
type entry struct {
	Record // Data, InviterCard and Card are always nil here
	// stranger: received from a peer that was neither a contact nor
	// trusted, so it counts against the strangers' budget.
	stranger bool
	src      source
	cost     int64
	// charged: counted in its budget now (received and unanswered).
	charged bool
	// payload: data or card are stored in payloadBucket.
	payload bool
	// listed: in Service.history.
	listed bool
}

// diskRecord is an index record as stored.
type diskRecord struct {
	Record
	V        int   `json:"v,omitempty"`
	Stranger bool  `json:"stranger,omitempty"`
	Cost     int64 `json:"cost,omitempty"`
	Payload  bool  `json:"payload,omitempty"`
}

// payload is what a record keeps apart from the index.
type payload struct {
	Data []byte `json:"data,omitempty"`
	Card []byte `json:"card,omitempty"`
}

func (e *entry) disk() diskRecord {
	return diskRecord{Record: e.Record, V: recordVersion, Stranger: e.stranger, Cost: e.cost, Payload: e.payload}
}

// decodeRecord reads the index record stored under key, checking
// everything a damaged or forged database could get wrong. A record of an
// older version may carry its data and card; they come back as p, and v
// says which version it is.
func decodeRecord(key string, raw []byte) (e *entry, p payload, v int, err error) {
	var d diskRecord
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, payload{}, 0, fmt.Errorf("%w: %v", errDamaged, err)
	}
	p = payload{Data: d.Data, Card: d.Card}
	d.Data, d.Card, d.InviterCard = nil, nil, nil
	if err := d.check(key); err != nil {
		return nil, payload{}, 0, err
	}
	if err := p.check(); err != nil {
		return nil, payload{}, 0, err
	}
	e = &entry{Record: d.Record, stranger: d.Stranger, cost: d.Cost, payload: d.Payload || p.Data != nil || p.Card != nil}
	if d.Source != "" {
		if a, err := ma.NewMultiaddr(d.Source); err == nil {
			e.src = sourceOf(a)
		}
	}
	return e, p, d.V, nil
}

func (d *diskRecord) check(key string) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", errDamaged, what) }
	switch {
	case d.Direction != Sent && d.Direction != Received:
		return bad("direction")
	case !d.State.valid():
		return bad("state")
	case d.Unacked != stepNone && d.Unacked != stepInvite && d.Unacked != stepRespond && d.Unacked != stepCancel:
		return bad("unacknowledged step")
	case d.Peer.Validate() != nil:
		return bad("peer")
	case d.Cost < 0 || d.Cost > maxCost:
		return bad("cost")
	case d.V < 0 || d.V > recordVersion:
		return bad("version")
	}
	if err := d.Invitation.Check(); err != nil {
		return fmt.Errorf("%w: %v", errDamaged, err)
	}
	if d.key() != key {
		return bad("key")
	}
	return nil
}

// decodePayload reads a record's data and card as stored.
func decodePayload(raw []byte) (payload, error) {
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return payload{}, fmt.Errorf("%w: %v", errDamaged, err)
	}
	return p, p.check()
}

func (p payload) check() error {
	if len(p.Data) > invite.MaxData || len(p.Card) > contacts.MaxCardSize {
		return fmt.Errorf("%w: data or card too large", errDamaged)
	}
	return nil
}

// load reads the index into memory. Damaged records are dropped; received
// invitations not answered yet are counted in their budgets, oldest first,
// and the ones beyond are dropped (a database filled before the budgets
// existed); strangers' expiries are capped; records of an older version
// that remain are then moved to the current layout, one at a time.
func (s *Service) load() error {
	var damaged []string
	old := map[string]bool{}
	err := s.cfg.State.ForEach(bucket, func(key string, raw []byte) error {
		e, p, v, err := decodeRecord(key, raw)
		if err != nil {
			log.Warnw("dropping a damaged invitation record", "key", key, "error", err)
			damaged = append(damaged, key)
			return nil
		}
		if v < recordVersion {
			// Data and card are still inline: nothing is stored apart yet.
			// The intake class is decided now: the inviter was a stranger
			// unless trusted when it invited, or a contact now.
			old[key] = true
			e.payload = false
			if e.Direction == Received {
				e.stranger = !e.Trusted && !s.cfg.Node.IsContact(e.Peer)
				e.cost = costOf(&invite.Invitation{Data: p.Data, Message: e.Message, AppID: e.AppID}, p.Card)
			}
		}
		s.records[key] = e
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range damaged {
		s.deleteStored(key, true)
	}

	s.mu.Lock()
	entries := make([]*entry, 0, len(s.records))
	for _, e := range s.records {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *entry) int { return cmp.Or(a.Updated.Compare(b.Updated), cmp.Compare(a.ID, b.ID)) })
	var over int
	for _, e := range entries {
		if e.Direction != Received {
			continue
		}
		if e.State.Answered() {
			if e.stranger {
				s.historyLocked(e)
			}
			continue
		}
		if s.in.room(e) != "" {
			over++
			s.deleteLocked(e)
			continue
		}
		s.in.charge(e)
		if cap := e.Updated.Add(s.lim.StrangerExpiry); e.stranger && e.Expires.After(cap) {
			e.Expires = cap
			if !old[e.key()] {
				s.saveLocked(e)
			}
		}
	}
	s.mu.Unlock()
	if over > 0 {
		log.Warnw("dropped stored invitations beyond the budgets", "count", over)
	}
	for key := range old {
		if e, ok := s.records[key]; ok {
			s.migrate(e)
		}
	}
	// Payloads whose index record is gone (a crash between the two
	// writes) are removed.
	var orphans []string
	err = s.cfg.State.ForEach(payloadBucket, func(key string, _ []byte) error {
		if _, ok := s.records[key]; !ok {
			orphans = append(orphans, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, key := range orphans {
		if err := s.cfg.State.Delete(payloadBucket, key); err != nil {
			return err
		}
	}
	return nil
}

// migrate moves a record of an older version to the current layout: its
// data and card apart (unless nothing needs them any more), its index
// entry as e now stands. Called before the service runs.
func (s *Service) migrate(e *entry) {
	key := e.key()
	var raw json.RawMessage
	_, err := s.cfg.State.Get(bucket, key, &raw)
	var p payload
	if err == nil {
		_, p, _, err = decodeRecord(key, raw)
	}
	if err != nil {
		log.Warnw("dropping an invitation record that cannot be read", "key", key, "error", err)
		delete(s.records, key)
		s.deleteStored(key, false)
		return
	}
	done := e.Direction == Received && e.State.Answered() && e.State != Accepted && e.Unacked == stepNone
	if (len(p.Data) > 0 || len(p.Card) > 0) && !done {
		if err := s.cfg.State.Put(payloadBucket, key, p); err != nil {
			log.Errorw("store invitation data", "invitation", e.ID, "error", err)
		} else {
			e.payload = true
		}
	}
	if err := s.cfg.State.Put(bucket, key, e.disk()); err != nil {
		log.Errorw("store invitation", "invitation", e.ID, "error", err)
	}
}

// deleteStored removes a record, and its payload if it has one stored,
// from the database.
func (s *Service) deleteStored(key string, payload bool) {
	if err := s.cfg.State.Delete(bucket, key); err != nil {
		log.Errorw("delete invitation", "key", key, "error", err)
	}
	if !payload {
		return
	}
	if err := s.cfg.State.Delete(payloadBucket, key); err != nil {
		log.Errorw("delete invitation data", "key", key, "error", err)
	}
}

// deleteLocked forgets a record altogether.
func (s *Service) deleteLocked(e *entry) {
	key := e.key()
	if t, ok := s.timers[key]; ok {
		t.Stop()
		delete(s.timers, key)
	}
	s.in.release(e)
	delete(s.records, key)
	s.deleteStored(key, e.payload)
}

// saveLocked stores a record's index entry and publishes the change. A
// received invitation's data and card are deleted once nothing needs them:
// it is answered but not accepted, and its answer delivered.
func (s *Service) saveLocked(e *entry) {
	if e.payload && e.Direction == Received && e.State.Answered() && e.State != Accepted && e.Unacked == stepNone {
		if err := s.cfg.State.Delete(payloadBucket, e.key()); err != nil {
			log.Errorw("delete invitation data", "invitation", e.ID, "error", err)
		} else {
			e.payload = false
		}
	}
	if err := s.cfg.State.Put(bucket, e.key(), e.disk()); err != nil {
		log.Errorw("store invitation", "invitation", e.ID, "error", err)
	}
	s.publishLocked(e)
}

// addLocked takes a new record into the index and stores its data and
// card; the caller stores the index entry (saveLocked, setLocked).
func (s *Service) addLocked(e *entry, p payload) error {
	if len(p.Data) > 0 || len(p.Card) > 0 {
		if err := s.cfg.State.Put(payloadBucket, e.key(), p); err != nil {
			return fmt.Errorf("store invitation data: %w", err)
		}
		e.payload = true
	}
	s.records[e.key()] = e
	return nil
}

// loadPayload reads a record's data and card.
func (s *Service) loadPayload(key string) (payload, error) {
	var raw json.RawMessage
	found, err := s.cfg.State.Get(payloadBucket, key, &raw)
	if err != nil || !found {
		return payload{}, err
	}
	return decodePayload(raw)
}

// historyLocked lists an answered invitation from a stranger, and removes
// the oldest beyond lim.StrangerHistory (one with an answer still to
// deliver waits for its next turn).
func (s *Service) historyLocked(e *entry) {
	if e.listed {
		return
	}
	e.listed = true
	s.history = append(s.history, e.key())
	for tries := len(s.history); len(s.history) > s.lim.StrangerHistory && tries > 0; tries-- {
		key := s.history[0]
		s.history = s.history[1:]
		old, ok := s.records[key]
		switch {
		case !ok:
		case old.Unacked != stepNone:
			s.history = append(s.history, key)
		default:
			s.deleteLocked(old)
		}
	}
}
