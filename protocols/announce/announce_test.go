package announce_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/miekg/dns"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/protocols/announce"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

func key(t testing.TB) (crypto.PrivKey, peer.ID) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func sample() announce.Record {
	return announce.Record{Seq: 42, DisplayName: "Alice", Email: "alice@example.org", EndpointName: "laptop",
		Presence: endpoint.Presence{Status: endpoint.Busy, Text: "in a call"}, Refresh: 3 * time.Second,
		Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.2/tcp/4737"), ma.StringCast("/ip4/10.0.0.2/udp/4737/quic-v1")}}
}

func TestRoundTrip(t *testing.T) {
	k, id := key(t)
	r := sample()
	r.Fingerprint[0] = 7
	env, err := announce.Seal(r, k)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := announce.Announcement(announce.Instance(id), env, announce.LostAfter(r.Refresh))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := announce.Parse(pkt)
	if err != nil || msg.Query || len(msg.Envelopes) != 1 {
		t.Fatalf("parse: %+v, %v", msg, err)
	}
	got, err := announce.Open(msg.Envelopes[0])
	if err != nil {
		t.Fatal(err)
	}
	r.Peer = id
	if got.Peer != id || got.Seq != r.Seq || got.DisplayName != r.DisplayName || got.Email != r.Email ||
		got.EndpointName != r.EndpointName || got.Presence != r.Presence || got.Fingerprint != r.Fingerprint ||
		got.Refresh != r.Refresh || len(got.Addrs) != 2 || !got.Addrs[1].Equal(r.Addrs[1]) {
		t.Fatalf("got %+v, want %+v", got, r)
	}
	// It is valid DNS that other mDNS software can read.
	var m dns.Msg
	if err := m.Unpack(pkt); err != nil || !m.Response || len(m.Answer) != 2 {
		t.Fatalf("not a proper mDNS response: %v %v", err, m.String())
	}
	q, err := announce.Parse(announce.Query())
	if err != nil || !q.Query {
		t.Fatalf("query not recognised: %+v %v", q, err)
	}
}

func TestLargestRecordFits(t *testing.T) {
	k, id := key(t)
	r := sample()
	long := strings.Repeat("\U0001F600", 255) // 4 bytes each
	r.DisplayName, r.Email, r.EndpointName, r.Presence.Text = long, long, long, long
	for len(r.Addrs) < announce.MaxAddrs {
		r.Addrs = append(r.Addrs, ma.StringCast("/ip6/fe80::1234:5678:9abc:def0/udp/65535/quic-v1"))
	}
	env, err := announce.Seal(r, k)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := announce.Announcement(announce.Instance(id), env, time.Minute); err != nil {
		t.Fatalf("the largest record does not fit a packet: %v (%d bytes sealed)", err, len(env))
	}
}

func TestRejects(t *testing.T) {
	k, _ := key(t)
	env, err := announce.Seal(sample(), k)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(env)
	i := bytes.Index(tampered, []byte("Alice"))
	tampered[i] = 'M'
	if _, err := announce.Open(tampered); !errors.Is(err, announce.ErrMalformed) {
		t.Fatalf("tampered record: %v", err)
	}
	r := sample()
	r.DisplayName = strings.Repeat("x", 256)
	if _, err := announce.Seal(r, k); !errors.Is(err, announce.ErrBadRecord) {
		t.Fatalf("long name sealed: %v", err)
	}
	if _, err := announce.Open(make([]byte, announce.MaxEnvelopeSize+1)); !errors.Is(err, announce.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
}

// FuzzPacket feeds arbitrary packets to what a node does with everything
// heard on the mDNS port: parse, then open each envelope.
func FuzzPacket(f *testing.F) {
	k, id := key(f)
	env, _ := announce.Seal(sample(), k)
	pkt, _ := announce.Announcement(announce.Instance(id), env, time.Minute)
	f.Add(pkt)
	f.Add(announce.Query())
	f.Add(pkt[:len(pkt)/2])
	f.Add([]byte{})
	bye, _ := announce.Seal(announce.Record{Seq: 43, Bye: true}, k)
	byePkt, _ := announce.Announcement(announce.Instance(id), bye, 0)
	f.Add(byePkt)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		msg, err := announce.Parse(pkt)
		if err != nil {
			return
		}
		for _, env := range msg.Envelopes {
			if len(env) > announce.MaxEnvelopeSize {
				t.Fatalf("envelope of %d bytes passed", len(env))
			}
			r, err := announce.Open(env)
			if err != nil {
				continue
			}
			if err := r.Check(); err != nil {
				t.Fatalf("opened a record out of bounds: %v", err)
			}
			if r.Refresh < announce.MinRefresh || r.Refresh > announce.MaxRefresh {
				t.Fatalf("refresh %v out of bounds", r.Refresh)
			}
		}
	})
}

// FuzzEnvelope feeds arbitrary envelopes to Open.
func FuzzEnvelope(f *testing.F) {
	k, _ := key(f)
	env, _ := announce.Seal(sample(), k)
	f.Add(env)
	f.Add(env[:10])
	f.Fuzz(func(t *testing.T, env []byte) {
		if r, err := announce.Open(env); err == nil {
			if err := r.Check(); err != nil || len(r.Addrs) > announce.MaxAddrs {
				t.Fatalf("opened a record out of bounds: %+v %v", r, err)
			}
		}
	})
}
