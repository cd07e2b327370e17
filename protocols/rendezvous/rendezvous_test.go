package rendezvous_test

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/protocols/rendezvous"
)

type id struct {
	priv crypto.PrivKey
	peer peer.ID
}

func newID(t *testing.T) id {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := peer.IDFromPrivateKey(k)
	return id{k, p}
}

func TestBothSidesDeriveTheSameKeys(t *testing.T) {
	a, b, c := newID(t), newID(t), newID(t)
	ab, err := rendezvous.Secret(a.priv, b.priv.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	ba, err := rendezvous.Secret(b.priv, a.priv.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	if ab != ba {
		t.Fatal("the two sides of a pair derive different secrets")
	}
	ac, _ := rendezvous.Secret(a.priv, c.priv.GetPublic())
	if ac == ab {
		t.Fatal("two pairs share a secret")
	}
	now := rendezvous.PeriodOf(time.Now())
	// Alice announces under the key Bob looks up.
	if !rendezvous.Key(ab, a.peer, b.peer, now).Equals(rendezvous.Key(ba, a.peer, b.peer, now)) {
		t.Fatal("announcer and looker compute different keys")
	}
}

// What an onlooker crawling the DHT sees: every key is provided by one
// node only (the two directions differ), and a pair's keys of two periods
// have nothing in common it could match.
func TestOnlookerCannotLink(t *testing.T) {
	a, b := newID(t), newID(t)
	s, _ := rendezvous.Secret(a.priv, b.priv.GetPublic())
	p := rendezvous.PeriodOf(time.Now())
	keys := map[string]string{
		"a->b now":  rendezvous.Key(s, a.peer, b.peer, p).String(),
		"b->a now":  rendezvous.Key(s, b.peer, a.peer, p).String(),
		"a->b next": rendezvous.Key(s, a.peer, b.peer, p+1).String(),
		"b->a next": rendezvous.Key(s, b.peer, a.peer, p+1).String(),
	}
	seen := map[string]string{}
	for name, k := range keys {
		if other, dup := seen[k]; dup {
			t.Fatalf("%s and %s share a key", name, other)
		}
		seen[k] = name
	}
	// Nothing of either peer ID is in a key.
	for name, k := range keys {
		for _, pid := range []peer.ID{a.peer, b.peer} {
			if len(k) > 0 && containsBytes(k, pid.String()) {
				t.Fatalf("%s shows a peer ID", name)
			}
		}
	}
}

func containsBytes(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestRefusesOtherKeyTypes(t *testing.T) {
	a := newID(t)
	sk, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rendezvous.Secret(a.priv, sk.GetPublic()); !errors.Is(err, rendezvous.ErrKeyType) {
		t.Fatalf("err = %v", err)
	}
}

func TestPeriods(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	if rendezvous.PeriodOf(t0) != rendezvous.PeriodOf(t0.Add(time.Second)) && rendezvous.PeriodOf(t0.Add(rendezvous.Period)) == rendezvous.PeriodOf(t0) {
		t.Fatal("periods do not step by Period")
	}
	if rendezvous.PeriodOf(t0.Add(rendezvous.Period)) != rendezvous.PeriodOf(t0)+1 {
		t.Fatal("the next period is not one more")
	}
}
