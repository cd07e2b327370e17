package invite_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/internal/wire"
	"github.com/peercollab/peercollab/protocols/invite"
	"github.com/peercollab/peercollab/protocols/pb"
)

type peerNode struct {
	h    host.Host
	card *contacts.Card
}

func newPeers(t testing.TB, n int) []peerNode {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var out []peerNode
	for i := range n {
		id, _ := contacts.GenerateIdentity()
		h, err := mn.AddPeer(id.PrivKey(), ma.StringCast("/ip4/10.0.0."+string(rune('1'+i))+"/tcp/1"))
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := contacts.NewCertificate(id, contacts.Profile{DisplayName: "P"}, time.Now())
		c, _ := contacts.NewCard(id, []*x509.Certificate{cert}, nil, time.Now())
		out = append(out, peerNode{h, c})
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	return out
}

// recorder is a Handler that accepts everything and records it.
type recorder struct {
	mu    sync.Mutex
	inv   []invite.Invitation
	addrs []ma.Multiaddr
}

func (r *recorder) Invited(_ peer.ID, addr ma.Multiaddr, inv invite.Invitation, _ *contacts.Card) invite.Ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inv = append(r.inv, inv)
	r.addrs = append(r.addrs, addr)
	return invite.Ack{Status: invite.AckOK}
}
func (r *recorder) Responded(peer.ID, invite.Response) invite.Ack {
	return invite.Ack{Status: invite.AckUnknown}
}
func (r *recorder) Cancelled(peer.ID, string) invite.Ack {
	return invite.Ack{Status: invite.AckUnknown}
}

func valid(card *contacts.Card) invite.Invitation {
	now := time.Now()
	return invite.Invitation{ID: invite.NewID(), AppID: "chat", Message: "hi", Sent: now, Expires: now.Add(time.Minute), InviterCard: card.Marshal()}
}

func TestInvalidRequestsRefused(t *testing.T) {
	ps := newPeers(t, 3)
	alice, bob, mallory := ps[0], ps[1], ps[2]
	var rec recorder
	svc := invite.New(bob.h, &rec)
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, tc := range map[string]struct {
		from   peerNode
		inv    func() invite.Invitation
		status invite.AckStatus
	}{
		"valid":          {alice, func() invite.Invitation { return valid(alice.card) }, invite.AckOK},
		"long message":   {alice, func() invite.Invitation { i := valid(alice.card); i.Message = strings.Repeat("x", 256); return i }, invite.AckInvalid},
		"big data":       {alice, func() invite.Invitation { i := valid(alice.card); i.Data = make([]byte, invite.MaxData+1); return i }, invite.AckInvalid},
		"bad id":         {alice, func() invite.Invitation { i := valid(alice.card); i.ID = "x"; return i }, invite.AckInvalid},
		"bad app":        {alice, func() invite.Invitation { i := valid(alice.card); i.AppID = ""; return i }, invite.AckInvalid},
		"someone's card": {mallory, func() invite.Invitation { return valid(alice.card) }, invite.AckInvalid},
		"no card":        {alice, func() invite.Invitation { i := valid(alice.card); i.InviterCard = nil; return i }, invite.AckInvalid},
		"expired":        {alice, func() invite.Invitation { i := valid(alice.card); i.Expires = time.Now().Add(-time.Second); return i }, invite.AckAnswered},
		"too far ahead":  {alice, func() invite.Invitation { i := valid(alice.card); i.Expires = time.Now().Add(48 * time.Hour); return i }, invite.AckAnswered},
	} {
		ack, err := invite.Invite(ctx, tc.from.h, bob.h.ID(), tc.inv())
		if err != nil || ack.Status != tc.status {
			t.Errorf("%s: %+v, %v; want %v", name, ack, err, tc.status)
		}
	}
	if len(rec.inv) != 1 {
		t.Fatalf("the handler saw %d invitations, want only the valid one", len(rec.inv))
	}
	// The handler knows the address the invitation came from.
	if want := alice.h.Addrs()[0]; !rec.addrs[0].Equal(want) {
		t.Errorf("the handler saw the invitation come from %v, want %v", rec.addrs[0], want)
	}
	// An oversized request is cut off before it is read.
	big := &pb.InviteRequest{Msg: &pb.InviteRequest_Invitation{Invitation: &pb.Invitation{Data: make([]byte, invite.MaxRequestSize)}}}
	err := wire.Exchange(ctx, alice.h, bob.h.ID(), invite.ID, big, &pb.InviteAck{}, 1024, time.Second)
	if err == nil {
		t.Fatal("an oversized request was answered")
	}
	ack, err := invite.Respond(ctx, alice.h, bob.h.ID(), invite.Response{InvitationID: "short"})
	if err != nil || !errors.Is(ack.Err(), invite.ErrInvalid) {
		t.Fatalf("malformed response: %+v, %v", ack, err)
	}
}

func FuzzRequest(f *testing.F) {
	ps := newPeers(f, 2)
	inv := valid(ps[0].card)
	seed, _ := proto.Marshal(&pb.InviteRequest{Msg: &pb.InviteRequest_Invitation{Invitation: &pb.Invitation{
		Id: inv.ID, ApplicationId: inv.AppID, ExpiresUnixMs: inv.Expires.UnixMilli(), InviterCard: inv.InviterCard}}})
	f.Add(seed)
	f.Add([]byte{0x12, 0x02, 0x08, 0x01})
	var rec recorder
	svc := invite.New(ps[1].h, &rec)
	defer svc.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		var m pb.InviteRequest
		if proto.Unmarshal(data, &m) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var ack pb.InviteAck
		// Whatever arrives gets an answer or a reset, never a hang or a panic.
		wire.Exchange(ctx, ps[0].h, ps[1].h.ID(), invite.ID, &m, &ack, 1024, 5*time.Second)
	})
}

// hostileID is the invitation every request of the hostile-peer tests is
// about, so that a fuzzed answer can name it.
const hostileID = "0123456789abcdef0123456789abcdef"

// hostile serves the invite protocol on a peer that reads each request and
// answers with the bytes last given to answer, framing included.
func hostile(t testing.TB) (client host.Host, server peer.ID, answer func([]byte)) {
	t.Helper()
	ps := newPeers(t, 2)
	var mu sync.Mutex
	var raw []byte
	ps[1].h.SetStreamHandler(invite.ID, func(s network.Stream) {
		defer s.Close()
		s.SetDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, io.LimitReader(s, invite.MaxRequestSize+64))
		mu.Lock()
		b := raw
		mu.Unlock()
		s.Write(b)
	})
	return ps[0].h, ps[1].h.ID(), func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		raw = b
	}
}

// askHostile sends one request of the given kind (0 invitation, 1
// response, 2 cancel) about hostileID.
func askHostile(ctx context.Context, h host.Host, p peer.ID, kind uint8) (invite.Ack, error) {
	switch kind % 3 {
	case 0:
		now := time.Now()
		return invite.Invite(ctx, h, p, invite.Invitation{ID: hostileID, AppID: "chat", Sent: now, Expires: now.Add(time.Minute)})
	case 1:
		return invite.Respond(ctx, h, p, invite.Response{InvitationID: hostileID, Action: invite.Declined})
	}
	return invite.Cancel(ctx, h, p, hostileID)
}

// checkAck fails t unless an acknowledgement read without error is one the
// inviter's code can take as it is.
func checkAck(t *testing.T, kind uint8, ack invite.Ack) {
	t.Helper()
	switch ack.Status {
	case invite.AckOK, invite.AckUnknown, invite.AckNotParty, invite.AckAnswered, invite.AckInvalid:
	default:
		t.Fatalf("unknown status %v let through", ack.Status)
	}
	r := ack.Response
	if r == nil {
		return
	}
	if kind%3 != 0 || (ack.Status != invite.AckOK && ack.Status != invite.AckAnswered) {
		t.Fatalf("a response in the acknowledgement of a request of kind %d with status %v", kind%3, ack.Status)
	}
	if r.InvitationID != hostileID || r.Action < invite.Declined || r.Action > invite.Error || !r.Reason.Wire() {
		t.Fatalf("response %+v let through", *r)
	}
}

func frame(m *pb.InviteAck) []byte {
	b, _ := proto.Marshal(m)
	return append(protowire.AppendVarint(nil, uint64(len(b))), b...)
}

func respAck(status pb.InviteAck_Status, id string, action, reason int32) []byte {
	return frame(&pb.InviteAck{Status: status, Response: &pb.InvitationResponse{InvitationId: id,
		Action: pb.InvitationResponse_Action(action), Reason: pb.InvitationResponse_Reason(reason)}})
}

// hostileAcks are answers of a hostile invitee, and what the inviter must
// make of them (for an invitation): its status and response, or ErrBadAck,
// or errAny for any error.
var errAny = errors.New("any error")

var hostileAcks = []struct {
	name   string
	raw    []byte
	status invite.AckStatus
	resp   *invite.Response
	err    error
}{
	{"ok", frame(&pb.InviteAck{}), invite.AckOK, nil, nil},
	{"accepted", respAck(pb.InviteAck_OK, hostileID, 1, 0), invite.AckOK, &invite.Response{InvitationID: hostileID, Action: invite.Accepted}, nil},
	{"inbox full", respAck(pb.InviteAck_OK, hostileID, 3, 5), invite.AckOK, &invite.Response{InvitationID: hostileID, Action: invite.Error, Reason: invite.InboxFull}, nil},
	{"rate limited", respAck(pb.InviteAck_OK, hostileID, 3, 3), invite.AckOK, &invite.Response{InvitationID: hostileID, Action: invite.Error, Reason: invite.RateLimited}, nil},
	{"answered before", respAck(pb.InviteAck_ANSWERED, hostileID, 0, 2), invite.AckAnswered, &invite.Response{InvitationID: hostileID, Action: invite.Declined, Reason: invite.NotAccepting}, nil},
	{"response with refusal dropped", respAck(pb.InviteAck_INVALID, hostileID, 1, 0), invite.AckInvalid, nil, nil},
	{"local reason on the wire", respAck(pb.InviteAck_OK, hostileID, 3, 6), 0, nil, invite.ErrBadAck},
	{"unknown reason", respAck(pb.InviteAck_OK, hostileID, 3, 1<<30), 0, nil, invite.ErrBadAck},
	{"negative reason", respAck(pb.InviteAck_OK, hostileID, 3, -1), 0, nil, invite.ErrBadAck},
	{"unknown action", respAck(pb.InviteAck_OK, hostileID, 4, 0), 0, nil, invite.ErrBadAck},
	{"another invitation", respAck(pb.InviteAck_OK, "fedcba9876543210fedcba9876543210", 1, 0), 0, nil, invite.ErrBadAck},
	{"malformed invitation ID", respAck(pb.InviteAck_OK, "x", 1, 0), 0, nil, invite.ErrBadAck},
	{"unknown status", frame(&pb.InviteAck{Status: 99}), 0, nil, invite.ErrBadAck},
	{"empty", nil, 0, nil, errAny},
	{"truncated", frame(&pb.InviteAck{Status: pb.InviteAck_ANSWERED})[:2], 0, nil, errAny},
	{"oversized", protowire.AppendVarint(nil, 1<<20), 0, nil, errAny},
	{"not protobuf", append(protowire.AppendVarint(nil, 4), 0xff, 0xff, 0xff, 0xff), 0, nil, errAny},
}

// TestHostileAcks: the inviter's client takes only well-formed
// acknowledgements about its own invitation.
func TestHostileAcks(t *testing.T) {
	h, p, answer := hostile(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range hostileAcks {
		answer(tc.raw)
		ack, err := askHostile(ctx, h, p, 0)
		switch {
		case tc.err == errAny:
			if err == nil {
				t.Errorf("%s: read as %+v", tc.name, ack)
			}
		case tc.err != nil:
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %+v, %v; want %v", tc.name, ack, err, tc.err)
			}
		case err != nil || ack.Status != tc.status || (ack.Response == nil) != (tc.resp == nil) ||
			(tc.resp != nil && *ack.Response != *tc.resp):
			t.Errorf("%s: %+v (%+v), %v; want %v %+v", tc.name, ack, ack.Response, err, tc.status, tc.resp)
		}
	}
	// A response means nothing in the acknowledgement of a response.
	answer(respAck(pb.InviteAck_OK, hostileID, 1, 0))
	if ack, err := askHostile(ctx, h, p, 1); err != nil || ack.Response != nil {
		t.Errorf("acknowledgement of a response: %+v, %v", ack, err)
	}
}

// FuzzAck: whatever a hostile invitee answers, the inviter's client
// returns an error or an acknowledgement it can take as it is.
func FuzzAck(f *testing.F) {
	for i, tc := range hostileAcks {
		f.Add(uint8(i%3), tc.raw)
	}
	h, p, answer := hostile(f)
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		answer(b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ack, err := askHostile(ctx, h, p, kind)
		if err == nil {
			checkAck(t, kind, ack)
		}
	})
}

// TestReasons: the wire's reasons keep their numbers, the inviter's own
// reasons never travel, and every reason reads back from its text.
func TestReasons(t *testing.T) {
	if invite.InboxFull != invite.Reason(pb.InvitationResponse_INBOX_FULL) || invite.RateLimited != invite.Reason(pb.InvitationResponse_RATE_LIMITED) {
		t.Fatal("a reason's number differs from the wire's")
	}
	if invite.Unreachable.Wire() || !invite.InboxFull.Wire() {
		t.Fatal("Wire is wrong")
	}
	for r := invite.NoReason; r <= invite.Unreachable; r++ {
		text, _ := r.MarshalText()
		var back invite.Reason
		if err := back.UnmarshalText(text); err != nil || back != r || (r != invite.NoReason && len(text) == 0) {
			t.Errorf("%d: %q read back as %d, %v", int(r), text, int(back), err)
		}
	}
}
