package reach

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
)

// Namespace is the DHT namespace of address records: a node's record is
// the value of key "/peercollab-addrs/" followed by its peer ID's bytes.
const Namespace = "peercollab-addrs"

// RecordTTL is how long an address record is taken as true: a node
// republishes its record well within it, and one that signed out of the
// Internet scope (or vanished) drops out of the DHT's answers after it.
const RecordTTL = 2 * time.Hour

// Caps of an address record: its size, and how many addresses it may carry,
// so that a peer cannot have those who look it up dial thousands of
// addresses (perhaps someone else's). Far above what a node publishes: every
// listen address on every interface, plus its relayed ones.
const (
	MaxRecordSize  = 64 << 10
	MaxRecordAddrs = 256
)

// Errors of address records.
var (
	ErrBadKey    = errors.New("reach: not an address record key")
	ErrBadRecord = errors.New("reach: address record is malformed or not signed by its peer")
	ErrStale     = errors.New("reach: address record is too old")
)

// Key is the DHT key of p's address record.
func Key(p peer.ID) string { return "/" + Namespace + "/" + string(p) }

func keyPeer(key string) (peer.ID, error) {
	raw, ok := strings.CutPrefix(key, "/"+Namespace+"/")
	if !ok {
		return "", ErrBadKey
	}
	p, err := peer.IDFromBytes([]byte(raw))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return p, nil
}

// parseRecord checks that value is a peer record signed by the peer its key
// names, issued (its sequence number is a time stamp) within RecordTTL.
func parseRecord(key string, value []byte, now time.Time) (*peer.PeerRecord, error) {
	p, err := keyPeer(key)
	if err != nil {
		return nil, err
	}
	if len(value) > MaxRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadRecord, len(value), MaxRecordSize)
	}
	env, rec, err := record.ConsumeEnvelope(value, peer.PeerRecordEnvelopeDomain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	pr, ok := rec.(*peer.PeerRecord)
	if !ok {
		return nil, ErrBadRecord
	}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil || signer != p || pr.PeerID != p {
		return nil, ErrBadRecord
	}
	if len(pr.Addrs) > MaxRecordAddrs {
		return nil, fmt.Errorf("%w: %d addresses, more than %d", ErrBadRecord, len(pr.Addrs), MaxRecordAddrs)
	}
	issued := time.Unix(0, int64(pr.Seq))
	if now.Sub(issued) > RecordTTL || issued.Sub(now) > time.Minute {
		return nil, ErrStale
	}
	return pr, nil
}

// Validator checks address records in the DHT (a record.Validator for the
// Namespace).
type Validator struct{}

// Validate accepts a fresh peer record signed by the peer its key names.
func (Validator) Validate(key string, value []byte) error {
	_, err := parseRecord(key, value, time.Now())
	return err
}

// Select picks the newest valid record (the first of equals), judging every
// value at the same moment.
func (Validator) Select(key string, values [][]byte) (int, error) {
	now := time.Now()
	best, bestSeq := -1, uint64(0)
	for i, v := range values {
		pr, err := parseRecord(key, v, now)
		if err != nil {
			continue
		}
		if best < 0 || pr.Seq > bestSeq {
			best, bestSeq = i, pr.Seq
		}
	}
	if best < 0 {
		return 0, ErrBadRecord
	}
	return best, nil
}
