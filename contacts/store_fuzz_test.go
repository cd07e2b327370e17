package contacts

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

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
	raw, err := json.Marshal(stored(c))
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
		again, err := json.Marshal(stored(got))
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
	ja, _ := json.Marshal(stored(a))
	jb, _ := json.Marshal(stored(b))
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

// TestOpenStoreDamagedFile: a contact store file cut short (bbolt read past
// its end and the process died of SIGBUS) or that is no database is
// ErrStoreDamaged.
func TestOpenStoreDamagedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, StoreFile)
	s, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := storedOf(t, "Bob")
	if err := s.Add(c); err != nil {
		t.Fatal(err)
	}
	s.Close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range [][]byte{good[:8192], []byte("not a database")} {
		p := filepath.Join(dir, fmt.Sprintf("damaged%d.db", i))
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := OpenStore(p, nil); !errors.Is(err, ErrStoreDamaged) {
			if s != nil {
				s.Close()
			}
			t.Errorf("OpenStore of damaged file %d = %v", i, err)
		}
	}
}

// TestUpdatePanicIsTheCallers: a panic in Update's fn is fn's, raised
// again, not taken for a damaged file.
func TestUpdatePanicIsTheCallers(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), StoreFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := storedOf(t, "Bob")
	if err := s.Add(c); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want boom", r)
		}
		if got, err := s.Get(c.PeerID); err != nil || got.Nickname != "Bob" {
			t.Fatalf("after the panic: %v, %v", got, err)
		}
	}()
	s.Update(c.PeerID, func(*Contact) error { panic("boom") })
}

// withMetaSums returns data with the checksums of its two bbolt meta pages
// (4096-byte pages; the checksum is FNV-64a of the 56 bytes after the
// 16-byte page header) made right.
func withMetaSums(data []byte) []byte {
	const page, header, sum = 4096, 16, 56
	data = bytes.Clone(data)
	for _, off := range []int{0, page} {
		if len(data) < off+header+sum+8 {
			break
		}
		h := fnv.New64a()
		h.Write(data[off+header : off+header+sum])
		binary.NativeEndian.PutUint64(data[off+header+sum:], h.Sum64())
	}
	return data
}

// FuzzOpenStore opens any file as the contact store: no crash, and an
// error is ErrStoreDamaged or another error. With fixMeta the meta pages'
// checksums are made right after the fuzzer's changes, so that the damage
// reaches the pages bbolt does not checksum.
func FuzzOpenStore(f *testing.F) {
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.db")
	s, err := OpenStore(seed, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"Bob", "Carol"} {
		c, _ := storedOf(f, name)
		if err := s.Add(c); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	good, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(false, good)
	f.Add(true, good)
	f.Add(true, good[:8192]) // cut short: SIGBUS in bbolt.Open
	f.Add(false, []byte("not a database"))
	f.Fuzz(func(t *testing.T, fixMeta bool, data []byte) {
		if fixMeta {
			data = withMetaSums(data)
		}
		file, err := os.CreateTemp(dir, "fuzz*.db")
		if err != nil {
			t.Fatal(err)
		}
		path := file.Name()
		defer os.Remove(path)
		_, err = file.Write(data)
		file.Close()
		if err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(path, nil)
		if err != nil {
			return
		}
		defer s.Close()
		list, _ := s.List()
		for _, c := range list {
			if got, err := s.Get(c.PeerID); err != nil || got.PeerID != c.PeerID {
				t.Fatalf("listed contact %s: Get = %v, %v", c.PeerID, got, err)
			}
		}
	})
}
