package reach

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

// fixedKey is a deterministic Ed25519 key, so that seed corpora name the
// same peer in every run.
func fixedKey(t testing.TB, seed byte) (crypto.PrivKey, peer.ID) {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, id
}

// signedRecord is the envelope of a peer record of id with seq, signed by
// priv.
func signedRecord(t testing.TB, priv crypto.PrivKey, id peer.ID, seq uint64, addrs ...string) []byte {
	t.Helper()
	rec := peer.NewPeerRecord()
	rec.PeerID = id
	rec.Seq = seq
	for _, a := range addrs {
		rec.Addrs = append(rec.Addrs, ma.StringCast(a))
	}
	env, err := record.Seal(rec, priv)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// rawPayload is a record.Record that is any bytes, passed off as a peer
// record, so that fuzzed payloads arrive signed.
type rawPayload []byte

func (rawPayload) Domain() string                   { return peer.PeerRecordEnvelopeDomain }
func (rawPayload) Codec() []byte                    { return peer.PeerRecordEnvelopePayloadType }
func (p rawPayload) MarshalRecord() ([]byte, error) { return p, nil }
func (p *rawPayload) UnmarshalRecord(b []byte) error {
	*p = append((*p)[:0], b...)
	return nil
}

// manyAddrs is n distinct addresses.
func manyAddrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/ip4/192.0.2.%d/tcp/%d", i%256, 4000+i)
	}
	return out
}

func TestParseRecord(t *testing.T) {
	priv, id := fixedKey(t, 1)
	otherPriv, other := fixedKey(t, 2)
	now := time.Now()
	seq := func(d time.Duration) uint64 { return uint64(now.Add(d).UnixNano()) }
	for _, tc := range []struct {
		name  string
		key   string
		value []byte
		want  error
	}{
		{"fresh", Key(id), signedRecord(t, priv, id, seq(-time.Minute), "/ip4/192.0.2.1/tcp/4737"), nil},
		{"no addresses", Key(id), signedRecord(t, priv, id, seq(0)), nil},
		{"stale", Key(id), signedRecord(t, priv, id, seq(-RecordTTL-time.Minute)), ErrStale},
		{"future", Key(id), signedRecord(t, priv, id, seq(2*time.Minute)), ErrStale},
		{"seq overflows", Key(id), signedRecord(t, priv, id, math.MaxUint64), ErrStale},
		{"seq zero", Key(id), signedRecord(t, priv, id, 0), ErrStale},
		{"another peer's record", Key(id), signedRecord(t, otherPriv, other, seq(0)), ErrBadRecord},
		{"signed by another peer", Key(id), signedRecord(t, otherPriv, id, seq(0)), ErrBadRecord},
		{"names another peer", Key(id), signedRecord(t, priv, other, seq(0)), ErrBadRecord},
		{"most addresses", Key(id), signedRecord(t, priv, id, seq(0), manyAddrs(MaxRecordAddrs)...), nil},
		{"too many addresses", Key(id), signedRecord(t, priv, id, seq(0), manyAddrs(MaxRecordAddrs+1)...), ErrBadRecord},
		{"too large", Key(id), make([]byte, MaxRecordSize+1), ErrBadRecord},
		{"garbage", Key(id), []byte("garbage"), ErrBadRecord},
		{"empty", Key(id), nil, ErrBadRecord},
		{"key without namespace", string(id), signedRecord(t, priv, id, seq(0)), ErrBadKey},
		{"key of no peer", "/" + Namespace + "/xyz", signedRecord(t, priv, id, seq(0)), ErrBadKey},
		{"empty key", "", nil, ErrBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := parseRecord(tc.key, tc.value, now)
			if !errors.Is(err, tc.want) || (err == nil) != (pr != nil) {
				t.Fatalf("parseRecord = %v, %v; want %v", pr, err, tc.want)
			}
		})
	}
}

func TestSelect(t *testing.T) {
	priv, id := fixedKey(t, 1)
	now := time.Now()
	older := signedRecord(t, priv, id, uint64(now.Add(-time.Hour).UnixNano()))
	newer := signedRecord(t, priv, id, uint64(now.UnixNano()))
	stale := signedRecord(t, priv, id, uint64(now.Add(-3*time.Hour).UnixNano()))
	for _, tc := range []struct {
		name   string
		values [][]byte
		want   int
		err    bool
	}{
		{"newest wins", [][]byte{older, newer}, 1, false},
		{"first of equals", [][]byte{newer, newer}, 0, false},
		{"invalid skipped", [][]byte{[]byte("x"), stale, older}, 2, false},
		{"none valid", [][]byte{[]byte("x"), stale}, 0, true},
		{"none at all", nil, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, err := Validator{}.Select(Key(id), tc.values)
			if (err != nil) != tc.err || (err == nil && i != tc.want) {
				t.Fatalf("Select = %d, %v; want %d (error %v)", i, err, tc.want, tc.err)
			}
		})
	}
}

// checkParsed checks what a record that parses must be.
func checkParsed(t *testing.T, key string, pr *peer.PeerRecord, err error, now time.Time) {
	t.Helper()
	if err != nil {
		if pr != nil {
			t.Fatalf("record and error %v", err)
		}
		if !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrBadRecord) && !errors.Is(err, ErrStale) {
			t.Fatalf("error %v is none of the sentinels", err)
		}
		return
	}
	if key != Key(pr.PeerID) {
		t.Fatalf("record of %s accepted under key %q", pr.PeerID, key)
	}
	if len(pr.Addrs) > MaxRecordAddrs {
		t.Fatalf("record of %d addresses accepted", len(pr.Addrs))
	}
	issued := time.Unix(0, int64(pr.Seq))
	if issued.Before(now.Add(-RecordTTL)) || issued.After(now.Add(time.Minute)) {
		t.Fatalf("record issued %v accepted at %v", issued, now)
	}
}

// FuzzValidate feeds the DHT validator any key and value: no panic, and
// what it accepts is a fresh record of the key's own peer.
func FuzzValidate(f *testing.F) {
	priv, id := fixedKey(f, 1)
	otherPriv, other := fixedKey(f, 2)
	now := uint64(time.Now().UnixNano())
	for _, v := range [][]byte{
		signedRecord(f, priv, id, now, "/ip4/192.0.2.1/tcp/4737", "/ip6/2001:db8::1/udp/4737/quic-v1"),
		signedRecord(f, priv, id, now, "/ip4/198.51.100.1/tcp/4001/p2p/"+other.String()+"/p2p-circuit"),
		signedRecord(f, priv, id, now-uint64(3*time.Hour)),
		signedRecord(f, priv, id, math.MaxUint64),
		signedRecord(f, otherPriv, other, now),
		signedRecord(f, otherPriv, id, now),
		{}, []byte("garbage"), {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		f.Add(true, "", v)
	}
	f.Add(false, "/"+Namespace+"/", []byte{})
	f.Add(false, "/"+Namespace+"/"+string(id)+"x", signedRecord(f, priv, id, now))
	f.Add(false, "/other/"+string(id), signedRecord(f, priv, id, now))
	f.Fuzz(func(t *testing.T, ownKey bool, key string, value []byte) {
		if ownKey {
			key = Key(id)
		}
		now := time.Now()
		pr, err := parseRecord(key, value, now)
		checkParsed(t, key, pr, err, now)
		if verr := (Validator{}).Validate(key, value); (verr == nil) != (err == nil) && !errors.Is(verr, ErrStale) && !errors.Is(err, ErrStale) {
			t.Fatalf("Validate = %v, parseRecord = %v", verr, err)
		}
	})
}

// FuzzSignedPayload signs any payload as a peer record of a fixed peer, so
// that the record's own decoding is fuzzed behind a valid signature.
func FuzzSignedPayload(f *testing.F) {
	priv, id := fixedKey(f, 1)
	_, other := fixedKey(f, 2)
	for _, tc := range []struct {
		id    peer.ID
		seq   uint64
		addrs []string
	}{
		{id, uint64(time.Now().UnixNano()), []string{"/ip4/192.0.2.1/tcp/4737"}},
		{id, uint64(time.Now().UnixNano()), nil},
		{id, 1, []string{"/dns4/example.com/tcp/443/wss"}},
		{other, uint64(time.Now().UnixNano()), []string{"/ip4/192.0.2.1/udp/4737/quic-v1"}},
	} {
		rec := &peer.PeerRecord{PeerID: tc.id, Seq: tc.seq}
		for _, a := range tc.addrs {
			rec.Addrs = append(rec.Addrs, ma.StringCast(a))
		}
		payload, err := rec.MarshalRecord()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00, 0x10, 0x01, 0x1a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, payload []byte) {
		p := rawPayload(payload)
		env, err := record.Seal(&p, priv)
		if err != nil {
			t.Skip(err)
		}
		value, err := env.Marshal()
		if err != nil {
			t.Skip(err)
		}
		now := time.Now()
		pr, err := parseRecord(Key(id), value, now)
		checkParsed(t, Key(id), pr, err, now)
	})
}

// FuzzSelect picks among any values: no panic, and the pick is a valid
// record with no valid one newer beside it.
func FuzzSelect(f *testing.F) {
	priv, id := fixedKey(f, 1)
	now := uint64(time.Now().UnixNano())
	a := signedRecord(f, priv, id, now-uint64(time.Hour))
	b := signedRecord(f, priv, id, now)
	f.Add(a, b, []byte("x"))
	f.Add(b, a, b)
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, v0, v1, v2 []byte) {
		key := Key(id)
		values := [][]byte{v0, v1, v2}
		i, err := Validator{}.Select(key, values)
		now := time.Now()
		var best uint64
		valid := false
		for _, v := range values {
			if pr, perr := parseRecord(key, v, now); perr == nil {
				valid = true
				best = max(best, pr.Seq)
			}
		}
		if err != nil {
			if valid {
				t.Fatalf("Select: %v, with a valid value among them", err)
			}
			return
		}
		if i < 0 || i >= len(values) {
			t.Fatalf("Select = %d of %d values", i, len(values))
		}
		pr, perr := parseRecord(key, values[i], now)
		if perr != nil {
			t.Fatalf("Select picked %d, which is invalid: %v", i, perr)
		}
		if pr.Seq != best {
			t.Fatalf("Select picked seq %d, newest is %d", pr.Seq, best)
		}
	})
}
