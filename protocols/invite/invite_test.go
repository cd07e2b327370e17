package invite_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
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
	mu  sync.Mutex
	inv []invite.Invitation
}

func (r *recorder) Invited(_ peer.ID, inv invite.Invitation, _ *contacts.Card) invite.Ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inv = append(r.inv, inv)
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
