package contacts

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	bolt "go.etcd.io/bbolt"
)

// storedOf is a contact of a new identity named name, and its record as
// the store writes it.
func storedOf(t testing.TB, name string) (*Contact, []byte) {
	t.Helper()
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cert, err := NewCertificate(id, Profile{DisplayName: name, Email: strings.ToLower(name) + "@example.com"}, now)
	if err != nil {
		t.Fatal(err)
	}
	card, err := NewCard(id, []*x509.Certificate{cert}, []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/4737")}, now)
	if err != nil {
		t.Fatal(err)
	}
	c := ContactFromCard(card, now)
	c.LastSeen = now
	raw, err := json.Marshal(storedContact{*c, c.Card})
	if err != nil {
		t.Fatal(err)
	}
	return c, raw
}

// FuzzStoredContact feeds the decoder of stored contact records (what
// OpenStore reads at start) any key and value: no panic; an error is
// ErrDamagedRecord; a record that decodes is the record of its key's peer,
// and stores and decodes again to the same contact.
func FuzzStoredContact(f *testing.F) {
	c, raw := storedOf(f, "Bob")
	f.Add([]byte(c.PeerID), raw)
	f.Add([]byte{}, raw) // "me"
	f.Add([]byte("other"), raw)
	f.Add([]byte(c.PeerID), []byte(`{"peer_id":"","nickname":"x"}`))
	f.Add([]byte(c.PeerID), []byte(`{"peer_id":"`+c.PeerID.String()+`","fingerprint":"zz","addrs":["/ip4/1.2.3.4/tcp/x"],"watcher_permission":"maybe","added":"yesterday","card":"!!"}`))
	f.Add([]byte(c.PeerID), []byte(`{"peer_id":"`+c.PeerID.String()+`","addrs":["/ip4"],"card":null}`))
	f.Add([]byte(c.PeerID), []byte(`null`))
	f.Add([]byte(c.PeerID), []byte(`[]`))
	f.Add([]byte(c.PeerID), []byte(`{`))
	f.Add([]byte(c.PeerID), []byte(``))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if len(key) == 0 {
			key = nil // the "me" record
		}
		got, err := decode(key, value)
		if err != nil {
			if got != nil || (!errors.Is(err, ErrDamagedRecord) && !errors.Is(err, ErrContactNotFound)) {
				t.Fatalf("decode = %v, %v", got, err)
			}
			return
		}
		if got.PeerID == "" || (key != nil && string(key) != string(got.PeerID)) {
			t.Fatalf("record of %q accepted under key %q", got.PeerID, key)
		}
		again, err := json.Marshal(storedContact{*got, got.Card})
		if err != nil {
			t.Fatalf("decoded contact does not encode: %v", err)
		}
		back, err := decode(key, again)
		if err != nil {
			t.Fatalf("stored again, the contact does not decode: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(back.clone(), got.clone()) && !sameJSON(t, back, got) {
			t.Fatalf("round trip changed the contact:\n%+v\n%+v", got, back)
		}
	})
}

// sameJSON compares contacts by their stored form (times and addresses
// compare equal there when DeepEqual sees monotonic readings or pointers).
func sameJSON(t *testing.T, a, b *Contact) bool {
	t.Helper()
	ja, _ := json.Marshal(storedContact{*a, a.Card})
	jb, _ := json.Marshal(storedContact{*b, b.Card})
	return bytes.Equal(ja, jb)
}

// TestOpenStoreLeavesDamagedRecordsOut: a store with damaged records
// opens; they are left out, Add replaces one, Remove deletes one, and a
// damaged "me" is made afresh.
func TestOpenStoreLeavesDamagedRecordsOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), StoreFile)
	good, goodRaw := storedOf(t, "Good")
	bad1, _ := storedOf(t, "Bad1")
	bad2, bad2Raw := storedOf(t, "Bad2")
	_, otherRaw := storedOf(t, "Other")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists(bucketContacts)
		m, _ := tx.CreateBucketIfNotExists(bucketMeta)
		b.Put([]byte(good.PeerID), goodRaw)
		b.Put([]byte(bad1.PeerID), []byte(`{"peer_id":`))
		b.Put([]byte(bad2.PeerID), otherRaw) // another peer's record
		return m.Put(keyMe, []byte(`{"peer_id":""}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err := OpenStore(path, nil)
	if err != nil {
		t.Fatalf("OpenStore with damaged records: %v", err)
	}
	defer s.Close()
	list, _ := s.List()
	if len(list) != 1 || list[0].PeerID != good.PeerID {
		t.Fatalf("List = %v, want only %s", list, good.PeerID)
	}
	if _, err := s.Me(); !errors.Is(err, ErrContactNotFound) {
		t.Fatalf("Me of a damaged record: %v", err)
	}
	if _, err := s.Update(bad1.PeerID, func(*Contact) error { return nil }); !errors.Is(err, ErrDamagedRecord) {
		t.Fatalf("Update of a damaged record: %v", err)
	}
	if err := s.Add(bad1); err != nil {
		t.Fatalf("Add over a damaged record: %v", err)
	}
	if got, err := s.Get(bad1.PeerID); err != nil || got.Nickname != "Bad1" {
		t.Fatalf("Get after Add = %v, %v", got, err)
	}
	if err := s.Remove(bad2.PeerID); err != nil {
		t.Fatalf("Remove of a damaged record: %v", err)
	}
	if err := s.Remove(bad2.PeerID); !errors.Is(err, ErrContactNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	_ = bad2Raw
}

// keyPEM is a PEM block of type typ around der.
func keyPEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// badKeys are identity key files that must be refused, each with a word
// that the error must hold.
func badKeys(t testing.TB) []struct {
	name string
	data []byte
	says string
} {
	t.Helper()
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	good, err := id.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1DER, _ := x509.MarshalECPrivateKey(ec)
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xDER, _ := x509.MarshalPKCS8PrivateKey(x)
	block, _ := pem.Decode(good)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: block.Bytes})
	return []struct {
		name string
		data []byte
		says string
	}{
		{"empty", nil, "empty"},
		{"blank", []byte("\n\n  \n"), "empty"},
		{"truncated", good[:len(good)/2], "cut short"},
		{"no end line", bytes.TrimSuffix(good, []byte("-----END PRIVATE KEY-----\n")), "cut short"},
		{"not PEM", []byte("this is not a key"), "not PEM"},
		{"certificate", keyPEM("CERTIFICATE", block.Bytes), `"CERTIFICATE"`},
		{"long type", keyPEM(strings.Repeat("T", 500), block.Bytes), "not \"PRIVATE KEY\""},
		{"encrypted", encrypted, "encrypted"},
		{"corrupt DER", keyPEM(pemPrivateKey, block.Bytes[:len(block.Bytes)-3]), "damaged"},
		{"garbage DER", keyPEM(pemPrivateKey, []byte("garbage")), "damaged"},
		{"ECDSA key", keyPEM(pemPrivateKey, ecDER), "ecdsa"},
		{"X25519 key", keyPEM(pemPrivateKey, xDER), "ecdh"},
		{"SEC 1 key", keyPEM("EC PRIVATE KEY", sec1DER), `"EC PRIVATE KEY"`},
		{"SEC 1 as PKCS#8", keyPEM(pemPrivateKey, sec1DER), "not PKCS#8"},
		{"oversized", append(bytes.Repeat([]byte("#"), MaxKeyFile), good...), "more than"},
	}
}

func TestLoadIdentityRefusesBadKeyFiles(t *testing.T) {
	for _, tc := range badKeys(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, KeyFile), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadIdentity(dir)
			if !errors.Is(err, ErrBadKeyFile) || !strings.Contains(err.Error(), tc.says) || len(err.Error()) > 400 {
				t.Fatalf("LoadIdentity = %v; want ErrBadKeyFile saying %q", err, tc.says)
			}
		})
	}
	// A huge file is refused without being read whole.
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Skip("no sparse files here:", err)
	}
	f.Close()
	if _, err := LoadIdentity(dir); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("LoadIdentity of a 1 TiB file = %v", err)
	}
}

// FuzzParseIdentityPEM feeds the identity key parser anything: no panic;
// every refusal wraps ErrBadKeyFile; a key it takes writes back to a file
// that yields the same peer.
func FuzzParseIdentityPEM(f *testing.F) {
	id, err := GenerateIdentity()
	if err != nil {
		f.Fatal(err)
	}
	good, _ := id.MarshalPEM()
	f.Add(good)
	f.Add(append([]byte("comment before\n"), good...))
	f.Add(append(append([]byte{}, good...), good...))
	for _, tc := range badKeys(f) {
		if len(tc.data) <= 4<<10 {
			f.Add(tc.data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseIdentityPEM(data)
		if err != nil {
			if got != nil || !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("ParseIdentityPEM = %v, %v", got, err)
			}
			return
		}
		if got.ID() == "" || got.ID() != peerOf(t, got) {
			t.Fatalf("identity %s does not match its key", got.ID())
		}
		again, err := got.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseIdentityPEM(again)
		if err != nil || back.ID() != got.ID() {
			t.Fatalf("written back, the key reads as %v, %v", back, err)
		}
	})
}

func peerOf(t *testing.T, id *Identity) peer.ID {
	t.Helper()
	p, err := peer.IDFromPublicKey(id.PrivKey().GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
