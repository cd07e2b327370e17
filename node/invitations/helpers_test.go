package invitations

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/invite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inviter is a peer with a card of its own, as an invitation comes from.
type inviter struct {
	id   peer.ID
	card *contacts.Card
}

func newInviter(t testing.TB) inviter {
	t.Helper()
	id, err := contacts.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := contacts.NewCertificate(id, contacts.Profile{DisplayName: "Inviter"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	card, err := contacts.NewCard(id, []*x509.Certificate{cert}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return inviter{id.ID(), card}
}

// bench is a Service on a mocknet host over a database of its own, with
// the registered application "chat" and contacts that the test names.
type bench struct {
	t    testing.TB
	dir  string
	cfg  Config
	s    *Service
	stop func()
	mu   sync.Mutex
	mine map[peer.ID]bool // contacts
	// launch is the launch command of "chat".
	launch string
}

func newBench(t testing.TB, lim Limits) *bench {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	me := newInviter(t)
	b := &bench{t: t, dir: t.TempDir(), mine: map[peer.ID]bool{}}
	b.cfg = Config{Host: h, Hub: events.NewHub(), Home: t.TempDir(), Node: testNode{b: b, me: me}, Limits: lim}
	b.start()
	return b
}

// testNode is the node as the bench's service sees it: its card is me's,
// its contacts the bench's, "chat" its one application.
type testNode struct {
	b  *bench
	me inviter
}

func (n testNode) Card() (*contacts.Card, error) { return n.me.card, nil }
func (n testNode) Trusted(c *contacts.Card) bool { return n.b.isContact(c.PeerID()) }
func (n testNode) IsContact(p peer.ID) bool      { return n.b.isContact(p) }
func (n testNode) Name(p peer.ID) string         { return p.String() }
func (n testNode) App(id string) (App, bool) {
	n.b.mu.Lock()
	defer n.b.mu.Unlock()
	return App{Launch: n.b.launch}, id == "chat"
}
func (n testNode) Connect(context.Context, peer.ID, []ma.Multiaddr) error { return nil }

func (b *bench) isContact(p peer.ID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mine[p]
}

func (b *bench) befriend(p peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mine[p] = true
}

// start opens the database and starts the service.
func (b *bench) start() {
	b.t.Helper()
	db, err := state.Open(filepath.Join(b.dir, state.InvitationsFile), state.Options{Relaxed: true})
	if err != nil {
		b.t.Fatal(err)
	}
	b.cfg.State = db
	if b.s, err = New(b.cfg); err != nil {
		db.Close()
		b.t.Fatal(err)
	}
	s := b.s
	b.stop = sync.OnceFunc(func() { s.Close(); db.Close() })
	b.t.Cleanup(b.stop)
}

// restart closes the service and its database and starts them again.
func (b *bench) restart() {
	b.t.Helper()
	b.stop()
	b.start()
}

// invitation returns a fresh invitation from who.
func invitation(who inviter, data []byte, expiry time.Duration) invite.Invitation {
	now := time.Now()
	return invite.Invitation{ID: invite.NewID(), AppID: "chat", Message: "hi", Data: data, Sent: now,
		Expires: now.Add(expiry), InviterCard: who.card.Marshal()}
}

// invite hands an invitation from who, arriving from addr, to the inbox.
func (b *bench) invite(who inviter, addr string, inv invite.Invitation) invite.Ack {
	b.t.Helper()
	return handler{b.s}.Invited(who.id, ma.StringCast(addr), inv, who.card)
}

// reason is the reason of an acknowledgement's immediate answer, or
// NoReason when the invitation was taken.
func reason(t testing.TB, ack invite.Ack) invite.Reason {
	t.Helper()
	if ack.Status != invite.AckOK {
		t.Fatalf("acknowledgement %v", ack.Status)
	}
	if ack.Response == nil {
		return invite.NoReason
	}
	if ack.Response.Reason == invite.NoReason {
		t.Fatalf("answered %v without a reason", ack.Response.Action)
	}
	return ack.Response.Reason
}
