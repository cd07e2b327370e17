// Package announce is the People Near Me announcement: how a peercollab node
// tells the nodes on its subnet who it is, without a connection to any of
// them.
//
// A node signed in to People Near Me multicasts its public profile (display
// name, e-mail, endpoint name, presence, the fingerprint of its certificate
// and its addresses) as a Record in a libp2p signed envelope, so the signing
// key is the node's peer ID and nobody can announce under another's name. The
// envelope travels as standard Multicast DNS (RFC 6762) in DNS-SD form: a PTR
// record of the service ServiceName pointing at the node's instance, and a
// TXT record of that instance holding the envelope in base64 (split into
// strings of at most 255 bytes). Tools such as avahi-browse see peercollab
// nodes; other mDNS traffic on the port is ignored.
//
// Every announcement is signed anew with a greater sequence number. A
// receiver takes a record only when its number is greater than the last one
// it holds from that peer, so a replayed announcement neither brings back a
// node that left nor keeps a vanished one listed. A node announces itself at
// once when it signs in and whenever its profile changes, and again at least
// every Refresh (which it states in the record); a receiver drops a node not
// heard of for LostAfter(Refresh). Leaving, it announces a record with Bye
// set, which removes it at once.
//
// A node that signs in asks the subnet with a query (a DNS question for the
// service's PTR) sent from a port other than 5353; every node answers with
// its current announcement by unicast to that port (RFC 6762's one-shot
// queries), so that joining costs one packet per node on the subnet and
// nobody else hears the answers.
//
// A change of a profile thus costs one multicast packet, received by each
// of the N nodes of the subnet: O(N) work across the subnet, and no
// connection is held. The announcement is public: anyone on the subnet reads
// it, as Windows' People Near Me published the name to the subnet.
package announce

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/miekg/dns"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

// ServiceName is the DNS-SD service peercollab nodes announce, so that only
// they answer each other.
const ServiceName = "_peercollab._udp"

// Limits and timings.
const (
	// Port is the Multicast DNS port.
	Port = 5353
	// MaxPacketSize is the largest packet read or sent (RFC 6762, §17).
	MaxPacketSize = 9000
	// MaxEnvelopeSize caps a signed record: four texts of at most 255
	// characters, the addresses, and the signature.
	MaxEnvelopeSize = 6 << 10
	// MaxAddrs is how many addresses a record may carry.
	MaxAddrs = 16
	// MinRefresh and MaxRefresh bound the refresh interval a record may
	// state; others are clamped.
	MinRefresh = time.Second
	MaxRefresh = 5 * time.Minute
)

// Group is the Multicast DNS group of IPv4.
var Group = netip.AddrPortFrom(netip.AddrFrom4([4]byte{224, 0, 0, 251}), Port)

// envelopeDomain separates these signatures from every other use of a
// node's key.
const envelopeDomain = "peercollab-near-record"

// payloadType names the record inside the envelope.
var payloadType = []byte("/peercollab/near-record/1")

// Errors of the package.
var (
	ErrTooLarge  = errors.New("announce: record too large")
	ErrMalformed = errors.New("announce: malformed announcement")
	ErrBadRecord = errors.New("announce: record fields out of bounds")
)

// Record is a node's announcement to its subnet.
type Record struct {
	// Peer is the node, taken from the envelope's key when opened.
	Peer         peer.ID
	Seq          uint64
	Addrs        []ma.Multiaddr
	DisplayName  string
	Email        string
	EndpointName string
	Presence     endpoint.Presence
	Fingerprint  contacts.Fingerprint
	// Refresh is how often the node announces itself at least.
	Refresh time.Duration
	// Bye says the node leaves People Near Me.
	Bye bool
}

// LostAfter is how long a receiver keeps a node that states refresh without
// hearing from it: three announcements missed, and a second more.
func LostAfter(refresh time.Duration) time.Duration {
	return 3*min(max(refresh, MinRefresh), MaxRefresh) + time.Second
}

// Check reports whether r's fields are within bounds.
func (r Record) Check() error {
	for _, s := range []string{r.DisplayName, r.Email} {
		if utf8.RuneCountInString(s) > contacts.MaxTextLen || !utf8.ValidString(s) {
			return fmt.Errorf("%w: a name longer than %d characters", ErrBadRecord, contacts.MaxTextLen)
		}
	}
	if err := endpoint.CheckName(r.EndpointName); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if err := r.Presence.Check(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if len(r.Addrs) > MaxAddrs {
		return fmt.Errorf("%w: more than %d addresses", ErrBadRecord, MaxAddrs)
	}
	return nil
}

// envelopeRecord adapts Record to libp2p's signed envelopes.
type envelopeRecord struct{ pb.NearRecord }

func (*envelopeRecord) Domain() string { return envelopeDomain }
func (*envelopeRecord) Codec() []byte  { return payloadType }
func (e *envelopeRecord) MarshalRecord() ([]byte, error) {
	return proto.Marshal(&e.NearRecord)
}
func (e *envelopeRecord) UnmarshalRecord(b []byte) error {
	return proto.Unmarshal(b, &e.NearRecord)
}

// Seal signs r with key (whose peer ID r is about) and returns the
// envelope's bytes.
func Seal(r Record, key crypto.PrivKey) ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	m := &envelopeRecord{}
	m.Seq, m.DisplayName, m.Email, m.EndpointName, m.Bye = r.Seq, r.DisplayName, r.Email, r.EndpointName, r.Bye
	m.Presence = r.Presence.ToPB()
	m.Fingerprint = r.Fingerprint[:]
	m.RefreshSeconds = uint32(max(r.Refresh, MinRefresh) / time.Second)
	for _, a := range r.Addrs {
		m.Addrs = append(m.Addrs, a.Bytes())
	}
	env, err := record.Seal(m, key)
	if err != nil {
		return nil, fmt.Errorf("announce: seal: %w", err)
	}
	b, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("announce: seal: %w", err)
	}
	if len(b) > MaxEnvelopeSize {
		return nil, ErrTooLarge
	}
	return b, nil
}

// Open verifies an envelope and returns its record, Peer set to the signer.
// Addresses that do not parse are dropped.
func Open(b []byte) (Record, error) {
	if len(b) > MaxEnvelopeSize {
		return Record{}, ErrTooLarge
	}
	var m envelopeRecord
	env, err := record.ConsumeTypedEnvelope(b, &m)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	id, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	pres, err := endpoint.PresenceFromPB(m.Presence)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	r := Record{Peer: id, Seq: m.Seq, DisplayName: m.DisplayName, Email: m.Email, EndpointName: m.EndpointName,
		Presence: pres, Bye: m.Bye,
		Refresh: min(max(time.Duration(m.RefreshSeconds)*time.Second, MinRefresh), MaxRefresh)}
	if len(m.Fingerprint) != len(r.Fingerprint) {
		if !r.Bye {
			return Record{}, fmt.Errorf("%w: fingerprint of %d bytes", ErrBadRecord, len(m.Fingerprint))
		}
	} else {
		copy(r.Fingerprint[:], m.Fingerprint)
	}
	if len(m.Addrs) > MaxAddrs {
		return Record{}, fmt.Errorf("%w: more than %d addresses", ErrBadRecord, MaxAddrs)
	}
	for _, raw := range m.Addrs {
		if a, err := ma.NewMultiaddrBytes(raw); err == nil {
			r.Addrs = append(r.Addrs, a)
		}
	}
	if err := r.Check(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// DNS names.
var (
	serviceFQDN = ServiceName + ".local."
	// txtChunk is the longest base64 text put in one TXT string.
	txtChunk = 252
)

// txtPrefix marks the TXT strings of the format this package writes.
const txtPrefix = "pc1="

// Announcement builds the Multicast DNS response that carries an envelope,
// for the instance name instance (a DNS label), with ttl as the records'
// time to live.
func Announcement(instance string, envelope []byte, ttl time.Duration) ([]byte, error) {
	name := instance + "." + serviceFQDN
	secs := uint32(ttl / time.Second)
	m := new(dns.Msg)
	m.Response, m.Authoritative = true, true
	m.Answer = []dns.RR{
		&dns.PTR{Hdr: dns.RR_Header{Name: serviceFQDN, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: secs}, Ptr: name},
		&dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET | cacheFlush, Ttl: secs},
			Txt: chunk(txtPrefix + base64.RawStdEncoding.EncodeToString(envelope))},
	}
	b, err := m.Pack()
	if err != nil {
		return nil, fmt.Errorf("announce: pack: %w", err)
	}
	if len(b) > MaxPacketSize {
		return nil, ErrTooLarge
	}
	return b, nil
}

// cacheFlush is the cache-flush bit of an mDNS record's class (RFC 6762,
// §10.2).
const cacheFlush = 1 << 15

func chunk(s string) []string {
	var out []string
	for len(s) > txtChunk {
		out = append(out, s[:txtChunk])
		s = s[txtChunk:]
	}
	return append(out, s)
}

// Query builds the question that asks every node of the subnet for its
// announcement.
func Query() []byte {
	m := new(dns.Msg)
	m.SetQuestion(serviceFQDN, dns.TypePTR)
	m.RecursionDesired = false
	m.Id = 0
	b, _ := m.Pack() // a fixed, valid message
	return b
}

// Message is what Parse found in a packet: a query for the service, and
// the envelopes of announcements of the service.
type Message struct {
	Query     bool
	Envelopes [][]byte
}

// Parse reads a Multicast DNS packet. Packets about other services yield an
// empty Message and no error; only a malformed packet is an error.
func Parse(pkt []byte) (Message, error) {
	var out Message
	if len(pkt) > MaxPacketSize {
		return out, ErrTooLarge
	}
	var m dns.Msg
	if err := m.Unpack(pkt); err != nil {
		return out, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !m.Response {
		for _, q := range m.Question {
			if q.Qtype == dns.TypePTR && strings.EqualFold(q.Name, serviceFQDN) {
				out.Query = true
			}
		}
		return out, nil
	}
	for _, rr := range append(m.Answer, m.Extra...) {
		txt, ok := rr.(*dns.TXT)
		if !ok || !strings.HasSuffix(strings.ToLower(txt.Hdr.Name), "."+serviceFQDN) || len(txt.Txt) == 0 {
			continue
		}
		joined := strings.Join(txt.Txt, "")
		enc, ok := strings.CutPrefix(joined, txtPrefix)
		if !ok {
			continue
		}
		if base64.RawStdEncoding.DecodedLen(len(enc)) > MaxEnvelopeSize {
			return out, ErrTooLarge
		}
		env, err := base64.RawStdEncoding.DecodeString(enc)
		if err != nil {
			return out, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		out.Envelopes = append(out.Envelopes, env)
	}
	return out, nil
}

// Instance is the DNS-SD instance name of a peer: a label made of the
// peer ID's last characters, which are its most varied.
func Instance(p peer.ID) string {
	s := strings.ToLower(p.String())
	if len(s) > 40 {
		s = s[len(s)-40:]
	}
	return "pc-" + s
}
