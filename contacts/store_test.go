package contacts_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"

	"github.com/peercollab/peercollab/contacts"
)

func openStore(t *testing.T, path string) *contacts.Store {
	t.Helper()
	s, err := contacts.OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func contactOf(t testing.TB, p testPeer) *contacts.Contact {
	t.Helper()
	card, err := contacts.NewCard(p.id, []*x509.Certificate{p.cert}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	return contacts.ContactFromCard(card, now)
}

func TestStoreCRUD(t *testing.T) {
	bus := eventbus.NewBus()
	sub, err := bus.Subscribe(new(contacts.EvtContactChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	s, err := contacts.OpenStore(filepath.Join(t.TempDir(), contacts.StoreFile), bus)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	me := newPeer(t, "Me")
	if _, created, err := contacts.EnsureMe(s, me.id, contacts.Profile{DisplayName: "Me"}, now); err != nil || !created {
		t.Fatalf("EnsureMe = %v, %v", created, err)
	}
	if _, created, err := contacts.EnsureMe(s, me.id, contacts.Profile{DisplayName: "Other"}, now); err != nil || created {
		t.Fatalf("second EnsureMe = %v, %v; must keep the existing me", created, err)
	}
	alice, bob := newPeer(t, "Alice"), newPeer(t, "Bob")
	if err := s.Add(contactOf(t, alice)); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(contactOf(t, alice)); !errors.Is(err, contacts.ErrContactExists) {
		t.Fatalf("duplicate Add = %v", err)
	}
	if err := s.Add(contactOf(t, me)); !errors.Is(err, contacts.ErrIsMe) {
		t.Fatalf("Add(me) = %v", err)
	}
	if err := s.Add(contactOf(t, bob)); err != nil {
		t.Fatal(err)
	}
	c, err := s.Update(bob.id.ID(), func(c *contacts.Contact) error {
		c.Nickname, c.Watch, c.WatcherPermission = "bobby", true, contacts.Blocked
		return nil
	})
	if err != nil || c.Nickname != "bobby" {
		t.Fatalf("Update = %+v, %v", c, err)
	}
	got, err := s.Get(bob.id.ID())
	if err != nil || !got.Watch || got.WatcherPermission != contacts.Blocked {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Nickname != "Alice" || list[1].Nickname != "bobby" {
		t.Fatalf("List = %v, %v", list, err)
	}
	if !s.IsContact(alice.id.ID()) || s.IsContact(me.id.ID()) {
		t.Fatalf("IsContact wrong")
	}
	if err := s.Remove(alice.id.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(alice.id.ID()); !errors.Is(err, contacts.ErrContactNotFound) {
		t.Fatalf("Get after Remove = %v", err)
	}
	if err := s.Remove(alice.id.ID()); !errors.Is(err, contacts.ErrContactNotFound) {
		t.Fatalf("second Remove = %v", err)
	}

	want := []string{"added me", "added Alice", "added Bob", "updated bobby", "deleted Alice"}
	for _, w := range want {
		select {
		case e := <-sub.Out():
			ev := e.(contacts.EvtContactChanged)
			name := ev.Contact.Nickname
			if ev.Me {
				name = "me"
			}
			if got := ev.Change.String() + " " + name; got != w {
				t.Fatalf("event %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %q", w)
		}
	}
}

func TestResolve(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "c.db"))
	alice, alina, bob := newPeer(t, "Alice"), newPeer(t, "Alina"), newPeer(t, "Bob")
	for _, p := range []testPeer{alice, alina, bob} {
		if err := s.Add(contactOf(t, p)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q    string
		want peer.ID
		err  error
	}{
		{"alice", alice.id.ID(), nil},
		{"ALINA", alina.id.ID(), nil},
		{"b", bob.id.ID(), nil},
		{bob.id.ID().String(), bob.id.ID(), nil},
		{bob.id.ID().String()[:20], bob.id.ID(), nil},
		{"al", "", contacts.ErrAmbiguous},
		{"zed", "", contacts.ErrContactNotFound},
		{"", "", contacts.ErrContactNotFound},
	} {
		c, err := s.Resolve(tc.q)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Resolve(%q) err = %v, want %v", tc.q, err, tc.err)
			}
			continue
		}
		if err != nil || c.PeerID != tc.want {
			t.Errorf("Resolve(%q) = %v, %v", tc.q, c, err)
		}
	}
}

func TestStoreLockedByOtherProcess(t *testing.T) {
	if os.Getenv("PEERCOLLAB_HOLD_STORE") != "" {
		return
	}
	path := filepath.Join(t.TempDir(), "c.db")
	s := openStore(t, path)
	_ = s
	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreHolderProcess$")
	cmd.Env = append(os.Environ(), "PEERCOLLAB_OPEN_STORE="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), contacts.ErrStoreLocked.Error()) {
		t.Fatalf("child did not see the lock: %s", out)
	}
}

// TestStoreHolderProcess runs in a child process of TestStoreLockedByOtherProcess.
func TestStoreHolderProcess(t *testing.T) {
	path := os.Getenv("PEERCOLLAB_OPEN_STORE")
	if path == "" {
		t.Skip("helper process only")
	}
	_, err := contacts.OpenStore(path, nil)
	fmt.Println(err)
}

// TestCrashDurability kills a writer process with SIGKILL in the middle of
// many contact writes, three times over one database, and checks that every
// write the writer had acknowledged is intact.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	path := filepath.Join(t.TempDir(), contacts.StoreFile)
	acked := map[peer.ID]string{} // peer -> last acknowledged nickname
	for round := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestStoreWriterProcess$")
		cmd.Env = append(os.Environ(), "PEERCOLLAB_STORE_WRITER="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n, killAt := 0, 150+round*100
		for sc.Scan() {
			var id, nick string
			if _, err := fmt.Sscan(sc.Text(), &id, &nick); err != nil {
				continue
			}
			pid, err := peer.Decode(id)
			if err != nil {
				t.Fatalf("writer printed %q", sc.Text())
			}
			acked[pid] = nick
			if n++; n == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		cancel()
		if n < killAt {
			t.Fatalf("round %d: writer stopped after %d acknowledged writes: %v", round, n, err)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer was not killed by SIGKILL: %v", round, err)
		}

		s, err := contacts.OpenStore(path, nil)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		for id, nick := range acked {
			c, err := s.Get(id)
			if err != nil {
				t.Fatalf("round %d: acknowledged contact %s lost: %v", round, id, err)
			}
			if c.Nickname != nick {
				t.Fatalf("round %d: contact %s nickname %q, acknowledged %q", round, id, c.Nickname, nick)
			}
		}
		s.Close()
		t.Logf("round %d: %d acknowledged writes in this round, %d contacts intact", round, n, len(acked))
	}
}

// TestStoreWriterProcess runs in a child process of TestCrashDurability: it
// adds and renames contacts as fast as it can, printing "peerID nickname"
// after each write is acknowledged, until it is killed.
func TestStoreWriterProcess(t *testing.T) {
	path := os.Getenv("PEERCOLLAB_STORE_WRITER")
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := contacts.OpenStore(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var prev peer.ID
	for i := 0; ; i++ {
		p := newPeer(t, fmt.Sprintf("p%d", i))
		c := contactOf(t, p)
		if err := s.Add(c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%s %s\n", c.PeerID, c.Nickname)
		if prev != "" { // also rewrite an existing record
			nick := fmt.Sprintf("renamed%d", i)
			if _, err := s.Update(prev, func(c *contacts.Contact) error { c.Nickname = nick; return nil }); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Printf("%s %s\n", prev, nick)
		}
		prev = c.PeerID
	}
}

func TestStoreKeepsCard(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "c.db"))
	alice := newPeer(t, "Alice")
	c := contactOf(t, alice)
	if err := s.Add(c); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(alice.id.ID())
	if err != nil {
		t.Fatal(err)
	}
	card, err := contacts.ParseCard(got.Card, now)
	if err != nil || card.PeerID() != alice.id.ID() {
		t.Fatalf("stored card: %v, %v", card, err)
	}
}
