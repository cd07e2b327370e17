// Package rendezvous derives where two contacts meet on a public DHT that
// neither runs (the Amino DHT, in public mode), without telling anyone
// else that they are contacts.
//
// The secret of a pair is derived from both identity keys (X25519 of the
// Ed25519 keys in Montgomery form), so any two contacts can compute it at
// once and offline, with no exchange when they became contacts and nothing
// more to store; the price is that a stolen identity key reveals the
// pair's past and future rendezvous keys (rotating the identity key is then
// the remedy, as it is for everything else the key protects).
//
// From the secret, each direction of the pair gets a key per Period:
// Key(secret, announcer, looker, period), a CID whose multihash is an
// HKDF-SHA256 of the secret, the two peer IDs in order and the period. The
// announcer puts a provider record under its key for each of its contacts;
// the looker, whose contact's card addresses failed, looks the key up and
// finds the announcer among the providers. Because the two directions have
// different keys, no two nodes ever provide the same key: an onlooker who
// crawls every provider record sees that a peer provides N keys, but
// cannot tell whom they are for, nor link them across periods (each is a
// pseudorandom function of a secret it does not have).
package rendezvous

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"filippo.io/edwards25519"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// Period is how long a rendezvous key lasts. Amino keeps provider records
// 48 hours and asks them renewed every 22: a node announces its keys of the
// current period and the next when the period ends within a renewal.
const Period = 12 * time.Hour

// ErrKeyType means a key is not Ed25519, the only kind peercollab
// identities use.
var ErrKeyType = errors.New("rendezvous: not an Ed25519 key")

// PeriodOf returns the period t falls in.
func PeriodOf(t time.Time) uint64 { return uint64(t.Unix()) / uint64(Period/time.Second) }

// Secret returns the secret shared by the owner of mine and the owner of
// theirs: Secret(a, B) equals Secret(b, A).
func Secret(mine crypto.PrivKey, theirs crypto.PubKey) ([32]byte, error) {
	var out [32]byte
	if mine.Type() != crypto.Ed25519 || theirs.Type() != crypto.Ed25519 {
		return out, ErrKeyType
	}
	raw, err := mine.Raw() // seed, then public key
	if err != nil {
		return out, err
	}
	h := sha512.Sum512(raw[:32])
	priv, err := ecdh.X25519().NewPrivateKey(h[:32]) // clamped by X25519
	if err != nil {
		return out, fmt.Errorf("rendezvous: %w", err)
	}
	pubRaw, err := theirs.Raw()
	if err != nil {
		return out, err
	}
	p, err := new(edwards25519.Point).SetBytes(pubRaw)
	if err != nil {
		return out, fmt.Errorf("rendezvous: their key: %w", err)
	}
	pub, err := ecdh.X25519().NewPublicKey(p.BytesMontgomery())
	if err != nil {
		return out, fmt.Errorf("rendezvous: their key: %w", err)
	}
	shared, err := priv.ECDH(pub) // refuses a low-order key (all-zero result)
	if err != nil {
		return out, fmt.Errorf("rendezvous: %w", err)
	}
	copy(out[:], shared)
	return out, nil
}

// Key returns the DHT key under which announcer announces itself to
// looker in period.
func Key(secret [32]byte, announcer, looker peer.ID, period uint64) cid.Cid {
	info := make([]byte, 0, 128)
	info = append(info, "peercollab rendezvous v1\x00"...)
	info = append(info, announcer...)
	info = append(info, 0)
	info = append(info, looker...)
	info = binary.BigEndian.AppendUint64(append(info, 0), period)
	digest, err := hkdf.Key(sha256.New, secret[:], nil, string(info), sha256.Size)
	if err != nil {
		panic(err) // only for lengths beyond HKDF's limit
	}
	m, err := mh.Encode(digest, mh.SHA2_256)
	if err != nil {
		panic(err) // a 32-byte SHA2-256 digest always encodes
	}
	return cid.NewCidV1(cid.Raw, m)
}
