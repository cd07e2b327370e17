package node_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/state"
)

func TestMain(m *testing.M) {
	if home := os.Getenv(envRemoteInvitee); home != "" {
		runRemoteInvitee(home) // a child process of BenchmarkInviteRTT
		return
	}
	goleak.VerifyTestMain(m,
		// go-libp2p and its dependencies start these once per process.
		goleak.IgnoreTopFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
	)
}

// testConfig is a node on loopback with a random port.
func testConfig(t testing.TB, name string) node.Config {
	cfg := node.DefaultConfig(filepath.Join(t.TempDir(), name))
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	cfg.Profile = contacts.Profile{DisplayName: name}
	cfg.Scope = "internet" // no mDNS: its multicast would leave this machine
	return cfg
}

func newNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestNewCreatesIdentityAndCloses(t *testing.T) {
	cfg := testConfig(t, "Alice")
	n := newNode(t, cfg)
	info, err := n.Info()
	if err != nil || info.DisplayName != "Alice" || info.PeerID != n.Host().ID() || len(info.Addrs) != 2 {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// A restart keeps the identity, whatever the profile says now.
	cfg.Profile.DisplayName = "Other"
	n2 := newNode(t, cfg)
	info2, _ := n2.Info()
	if info2.PeerID != info.PeerID || info2.DisplayName != "Alice" {
		t.Fatalf("after restart: %+v", info2)
	}
}

func TestNewWithoutIdentity(t *testing.T) {
	cfg := testConfig(t, "x")
	cfg.Profile = contacts.Profile{}
	if _, err := node.New(context.Background(), cfg); !errors.Is(err, contacts.ErrNoIdentity) {
		t.Fatalf("err = %v", err)
	}
}

func TestSecondNodeOnOneHomeRefused(t *testing.T) {
	cfg := testConfig(t, "Alice")
	newNode(t, cfg)
	if _, err := node.New(context.Background(), cfg); !errors.Is(err, contacts.ErrStoreLocked) {
		t.Fatalf("err = %v", err)
	}
}

func TestExplicitPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t, "Alice")
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/" + portOf(l.Addr())}
	if _, err := node.New(context.Background(), cfg); !errors.Is(err, node.ErrAddrInUse) {
		t.Fatalf("err = %v", err)
	}
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

func TestCardsAndEndorsement(t *testing.T) {
	alice, bob, carol := newNode(t, testConfig(t, "Alice")), newNode(t, testConfig(t, "Bob")), newNode(t, testConfig(t, "Carol"))
	aliceCard, err := alice.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	if got := aliceCard.Addrs(); len(got) != 2 {
		t.Fatalf("card addrs = %v", got)
	}
	bobCard, _ := bob.MyCard()
	endorsed, err := alice.Endorse(bobCard.Marshal(), 0)
	if err != nil {
		t.Fatal(err)
	}
	chk, err := carol.CheckCard(endorsed.Marshal())
	if err != nil || chk.Trust.Trusted || !errors.Is(chk.TrustErr, contacts.ErrUntrusted) {
		t.Fatalf("before Alice is a contact: %+v, %v", chk, err)
	}
	if _, created, _, err := carol.AddCard(aliceCard.Marshal(), node.AddOptions{}); err != nil || !created {
		t.Fatalf("AddCard: %v %v", created, err)
	}
	chk, err = carol.CheckCard(endorsed.Marshal())
	if err != nil || !chk.Trust.Trusted || chk.Trust.Via != alice.Identity().ID() {
		t.Fatalf("after Alice is a contact: %+v, %v", chk, err)
	}
	nick := "al"
	c, created, _, err := carol.AddCard(aliceCard.Marshal(), node.AddOptions{Nickname: &nick, Replace: true})
	if err != nil || created || c.Nickname != "al" {
		t.Fatalf("re-adding with Replace refreshes: %+v %v %v", c, created, err)
	}
	if _, _, _, err := carol.AddCard(mustCard(t, carol).Marshal(), node.AddOptions{}); !errors.Is(err, contacts.ErrIsMe) {
		t.Fatalf("adding myself: %v", err)
	}
	if _, err := alice.Endorse(aliceCard.Marshal(), 0); !errors.Is(err, contacts.ErrSelfEndorsement) {
		t.Fatalf("self-endorsement: %v", err)
	}
}

func mustCard(t *testing.T, n *node.Node) *contacts.Card {
	c, err := n.MyCard()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A damaged or unknown stored setting counts as unset: the node starts
// with the default rather than not at all.
func TestDamagedSettingsIgnored(t *testing.T) {
	cfg := testConfig(t, "Alice")
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(filepath.Join(cfg.Home, state.File), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for key, v := range map[string]any{"scope": "not a number", "invitation_policy": "everyone", "endpoint_name": 42} {
		if err := db.Put("settings", key, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Put("apps", "broken", "not an application"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	n := newNode(t, cfg)
	if p := n.InvitationPolicy(); p != invitations.Anyone {
		t.Errorf("policy %q, want anyone", p)
	}
	if apps := n.Publish().Apps(); len(apps) != 0 {
		t.Errorf("apps %v from a damaged record", apps)
	}
}
