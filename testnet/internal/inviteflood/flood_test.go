//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
	"github.com/peercollab/peercollab/node/state"
	"github.com/peercollab/peercollab/protocols/invite"
	"github.com/peercollab/peercollab/testnet/testnettest"
)

// The flood: keys fresh Ed25519 keys, dealt in turn to the attacker's
// source addresses (networks /24s of perNetwork addresses each), each send
// perKey invitations of 16 KiB. INVITEFLOOD_NETWORKS and
// INVITEFLOOD_PER_NETWORK change the shape for measurements by hand.
var (
	keys       = 1000
	perKey     = 10
	networks   = envInt("INVITEFLOOD_NETWORKS", 10)
	perNetwork = envInt("INVITEFLOOD_PER_NETWORK", 10)
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 && n <= 250 {
		return n
	}
	return def
}

// Bounds the victim must keep (the goals).
const (
	maxDB      = 16 << 20  // invitations.db
	maxRSS     = 100 << 20 // the daemon's peak RSS, during and after
	maxListing = 20 << 20  // what listing every invitation adds to RSS
)

// TestInviteFlood floods a real peercollab daemon with invitations from
// 1,000 fresh keys over 100 source addresses in 10 /24s, from a network
// namespace of its own, while two contacts of the victim, real daemons in
// a third namespace, invite it too: Alice, connected to it before the
// flood, and Bob, who has to connect during it. The victim keeps no more
// than its strangers' budget, within the bounds above, and both contacts'
// invitations arrive.
func TestInviteFlood(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip to build network namespaces")
	}
	testnettest.Binary(t) // built before anything runs
	attacker := buildAttacker(t)
	n := newFloodNet(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	listen := []string{"/ip4/" + n.victimAddr + "/tcp/4737"}
	for _, c := range n.contacts {
		listen = append(listen, "/ip4/"+c.victimAddr+"/tcp/4737")
	}
	victim := startDaemon(t, n.victim, "Victim", listen...)
	alice := startDaemon(t, n.contacts[0].ns, "Alice", "/ip4/"+n.contacts[0].addr+"/tcp/4737")
	bob := startDaemon(t, n.contacts[1].ns, "Bob", "/ip4/"+n.contacts[1].addr+"/tcp/4737")
	vc := victim.client
	vInfo, err := vc.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vID := vInfo.PeerID.String()
	exchangeCards(ctx, t, vc, alice.client)
	exchangeCards(ctx, t, vc, bob.client)
	if err := vc.RegisterApp(ctx, apitype.RegisteredApp{ID: "chat", Description: "Chat"}); err != nil {
		t.Fatal(err)
	}
	// Alice's first invitation connects her; it stays unanswered.
	warm := inviteFrom(ctx, t, alice.client, vID, "before the flood")
	waitArrival(ctx, t, vc, warm, 30*time.Second)
	baseline := victim.memory(t)
	cpu0 := victim.cpu(t)
	sampler := victim.sample(20 * time.Millisecond)

	// The flood.
	cmd := exec.Command("ip", "netns", "exec", n.attacker, attacker,
		"-target", "/ip4/"+n.victimAddr+"/tcp/4737/p2p/"+vID,
		"-addrs", strings.Join(n.sources, ","), "-keys", strconv.Itoa(keys), "-per-key", strconv.Itoa(perKey),
		"-data", strconv.Itoa(invite.MaxData), "-concurrency", "4", "-progress", "500")
	lines := startProcess(t, cmd, filepath.Join(t.TempDir(), "attacker.log"))
	waitLine(t, lines, "progress ", 60*time.Second)

	// The contacts' invitations, sent during the flood.
	fromAlice := inviteFrom(ctx, t, alice.client, vID, "during the flood, connected")
	fromBob := inviteFrom(ctx, t, bob.client, vID, "during the flood, connecting")
	gotAlice := waitArrival(ctx, t, vc, fromAlice, 60*time.Second)
	gotBob := waitArrival(ctx, t, vc, fromBob, 60*time.Second)

	resultLine := waitLine(t, lines, "result ", 150*time.Second)
	var res Result
	if err := json.Unmarshal([]byte(strings.TrimPrefix(resultLine, "result ")), &res); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("attacker: %v", err)
	}
	during := sampler.stop()
	cpu := victim.cpu(t) - cpu0
	after := victim.memory(t)
	db, err := os.Stat(filepath.Join(victim.home, state.InvitationsFile))
	if err != nil {
		t.Fatal(err)
	}

	// Listing every invitation.
	all, err := vc.Invitations(ctx, "", "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	listed := victim.memory(t)

	// What the victim kept, and from where.
	var strangers, fromContacts int
	perAddr, perNet := map[netip.Addr]int{}, map[netip.Prefix]int{}
	for _, r := range all.Invitations {
		if r.Direction != apitype.Received || r.State.Answered() {
			continue
		}
		if r.Trusted {
			fromContacts++
			continue
		}
		strangers++
		addr, _ := netip.ParseAddr(strings.Split(r.Source, "/")[2])
		perAddr[addr]++
		p, _ := addr.Prefix(24)
		perNet[p]++
	}
	var maxAddr, maxNet int
	for _, c := range perAddr {
		maxAddr = max(maxAddr, c)
	}
	for _, c := range perNet {
		maxNet = max(maxNet, c)
	}

	t.Logf("flood: %d keys from %d addresses in %d /24s, %d invitations of %d bytes each, in %.1f s",
		keys, len(n.sources), networks, keys*perKey, invite.MaxData, res.Seconds)
	t.Logf("attacker saw: %d keys connected, %d not (%d invitations not sent); %d taken; refused %v; not OK %v; %d stream errors",
		res.Connected, res.DialFailed, res.NotSent, res.Taken, res.Refused, res.NotOK, res.StreamErrors)
	for _, e := range append(res.DialErrors, res.StreamErrorTexts...) {
		t.Logf("  for example: %s", strings.ReplaceAll(e, "\n", " "))
	}
	t.Logf("victim keeps %d strangers' invitations (at most %d from one address, %d from one /24, from %d addresses) and %d of its contacts",
		strangers, maxAddr, maxNet, len(perAddr), fromContacts)
	for _, c := range []struct {
		who       string
		sent, got apitype.Invitation
	}{{"Alice (connected before)", fromAlice, gotAlice}, {"Bob (connecting)", fromBob, gotBob}} {
		t.Logf("%s: invitation sent during the flood arrived after %v (source %s)", c.who, c.got.Updated.Sub(c.sent.Sent).Round(time.Millisecond), c.got.Source)
	}
	t.Logf("victim memory: before %s; peak during %s (VmHWM %s); after %s; after listing %d invitations %s (+%s); CPU during the flood %.1f s",
		mib(baseline.rss), mib(during), mib(after.hwm), mib(after.rss), len(all.Invitations), mib(listed.rss), mib(listed.rss-after.rss), cpu.Seconds())
	t.Logf("invitations.db: %s", mib(db.Size()))

	if total := res.NotSent + res.Taken + sum(res.Refused) + sum(res.NotOK) + res.StreamErrors; total != keys*perKey {
		t.Errorf("the attacker accounted for %d invitations, want %d", total, keys*perKey)
	}
	if strangers > invitations.DefaultStrangerInvitations || res.Taken > invitations.DefaultStrangerInvitations {
		t.Errorf("the victim took %d strangers' invitations (kept %d), its budget is %d", res.Taken, strangers, invitations.DefaultStrangerInvitations)
	}
	if maxAddr > invitations.DefaultPerAddr || maxNet > invitations.DefaultPerNetwork {
		t.Errorf("shares exceeded: %d from one address, %d from one /24", maxAddr, maxNet)
	}
	if fromContacts != 3 || !gotAlice.Trusted || !gotBob.Trusted {
		t.Errorf("%d invitations of contacts kept, want 3, all trusted", fromContacts)
	}
	if db.Size() > maxDB {
		t.Errorf("invitations.db is %s, bound %s", mib(db.Size()), mib(maxDB))
	}
	if peak := max(during, after.hwm, listed.hwm); peak > maxRSS {
		t.Errorf("the victim's RSS peaked at %s, bound %s", mib(peak), mib(maxRSS))
	}
	if listed.rss-after.rss > maxListing {
		t.Errorf("listing added %s of RSS, bound %s", mib(listed.rss-after.rss), mib(maxListing))
	}
}

// inviteFrom has a daemon invite the peer to "chat".
func inviteFrom(ctx context.Context, t *testing.T, c *client.Client, peer, message string) apitype.Invitation {
	t.Helper()
	list, err := c.Invite(ctx, apitype.InviteRequest{Peers: []string{peer}, AppID: "chat", Message: message})
	if err != nil {
		t.Fatal(err)
	}
	return list.Invitations[0]
}

// waitArrival waits until the victim holds the invitation sent, polling
// its local API; the latency is read from the records' times, not from
// this loop.
func waitArrival(ctx context.Context, t *testing.T, c *client.Client, sent apitype.Invitation, within time.Duration) apitype.Invitation {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := c.Invitation(ctx, sent.ID)
		if err == nil {
			return got.Invitation
		}
		if time.Now().After(deadline) {
			t.Fatalf("invitation %q did not arrive within %v: %v", sent.Message, within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sum(m map[string]int) int {
	var n int
	for _, v := range m {
		n += v
	}
	return n
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// floodNet is the test's network: the victim's namespace with a link to
// the attacker's (which holds every source address) and one to each
// contact's.
type floodNet struct {
	victim, attacker string // namespaces
	victimAddr       string // on the attacker's link
	sources          []string
	contacts         []contactNet
}

// contactNet is a contact's namespace and link to the victim.
type contactNet struct {
	ns, addr, victimAddr string
}

func newFloodNet(t *testing.T, contacts int) *floodNet {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	prefix := "pcif" + hex.EncodeToString(b[:])
	n := &floodNet{victim: prefix + "v", attacker: prefix + "a", victimAddr: "10.200.0.1"}
	for i := range contacts {
		n.contacts = append(n.contacts, contactNet{ns: fmt.Sprintf("%sc%d", prefix, i),
			addr: fmt.Sprintf("10.%d.0.2", 201+i), victimAddr: fmt.Sprintf("10.%d.0.1", 201+i)})
	}
	addNS := func(ns string) {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	addNS(n.victim)
	addNS(n.attacker)
	// Both ends of each link are made in their namespaces; deleting the
	// namespaces deletes them.
	sh(t, "ip", "link", "add", "v0", "netns", n.victim, "type", "veth", "peer", "name", "a0", "netns", n.attacker)
	var batch strings.Builder
	for i := 1; i <= networks; i++ {
		for j := 1; j <= perNetwork; j++ {
			a := fmt.Sprintf("10.200.%d.%d", i, j)
			n.sources = append(n.sources, a)
			fmt.Fprintf(&batch, "addr add %s/16 dev a0\n", a)
		}
	}
	batch.WriteString("link set a0 up\n")
	cmd := exec.Command("ip", "-n", n.attacker, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	sh(t, "ip", "-n", n.victim, "addr", "add", n.victimAddr+"/16", "dev", "v0")
	sh(t, "ip", "-n", n.victim, "link", "set", "v0", "up")
	for i, c := range n.contacts {
		addNS(c.ns)
		vif := fmt.Sprintf("v%d", i+1)
		sh(t, "ip", "link", "add", vif, "netns", n.victim, "type", "veth", "peer", "name", "c0", "netns", c.ns)
		sh(t, "ip", "-n", n.victim, "addr", "add", c.victimAddr+"/24", "dev", vif)
		sh(t, "ip", "-n", c.ns, "addr", "add", c.addr+"/24", "dev", "c0")
		sh(t, "ip", "-n", n.victim, "link", "set", vif, "up")
		sh(t, "ip", "-n", c.ns, "link", "set", "c0", "up")
	}
	return n
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// buildAttacker builds this directory's command.
func buildAttacker(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "inviteflood")
	if b, err := exec.Command(gobin, "build", "-o", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build the attacker: %v: %s", err, b)
	}
	return out
}

// startProcess starts cmd (killed if the test process dies, and stopped at
// the test's end), its standard error to logPath; it returns the lines of
// its standard output.
func startProcess(t *testing.T, cmd *exec.Cmd, logPath string) <-chan string {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if keep := os.Getenv("INVITEFLOOD_LOGS"); keep != "" {
			b, _ := os.ReadFile(logPath)
			os.WriteFile(filepath.Join(keep, filepath.Base(logPath)), b, 0o644)
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("%s (last lines):\n%s", filepath.Base(logPath), tail(b, 20))
			}
		}
	})
	return lines
}

func tail(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	return bytes.Join(lines[max(0, len(lines)-n):], []byte("\n"))
}

// waitLine returns the first line that starts with prefix.
func waitLine(t *testing.T, lines <-chan string, prefix string, within time.Duration) string {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the process ended before it printed %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line %q within %v", prefix, within)
		}
	}
}

type daemon struct {
	home   string
	pid    int
	client *client.Client
}

// startDaemon runs `peercollab daemon` in namespace ns and waits until its
// local API answers.
func startDaemon(t *testing.T, ns, name string, listen ...string) *daemon {
	t.Helper()
	home := t.TempDir()
	args := []string{"netns", "exec", ns, testnettest.Binary(t), "--home", home, "daemon", "--name", name}
	for _, l := range listen {
		args = append(args, "--listen", l)
	}
	cmd := exec.Command("ip", args...)
	level := "error,peercollab/invitations=info"
	if l := os.Getenv("INVITEFLOOD_GOLOG"); l != "" {
		level = l
	}
	cmd.Env = append(os.Environ(), "GOLOG_LOG_LEVEL="+level)
	startProcess(t, cmd, filepath.Join(t.TempDir(), name+".log"))
	d := &daemon{home: home, pid: cmd.Process.Pid, client: client.New(home)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.client.ID(ctx)
		cancel()
		if err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon %s did not answer within 30 s: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type memory struct{ rss, hwm int64 }

// memory reads the daemon's resident set now (VmRSS) and at its peak
// (VmHWM).
func (d *daemon) memory(t *testing.T) memory {
	t.Helper()
	m, err := readMemory(d.pid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.rss = kb << 10
		case "VmHWM:":
			m.hwm = kb << 10
		}
	}
	return m, nil
}

// cpu reads the CPU time the daemon used so far (user and system).
func (d *daemon) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's name, which ends with ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on
// Linux everywhere).
const clockTicks = 100

type sampler struct {
	stopc chan struct{}
	done  chan int64
}

// sample records the daemon's largest VmRSS until stop.
func (d *daemon) sample(every time.Duration) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if m, err := readMemory(d.pid); err == nil {
				peak = max(peak, m.rss)
			}
			select {
			case <-s.stopc:
				s.done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *sampler) stop() int64 {
	close(s.stopc)
	return <-s.done
}

// exchangeCards makes two daemons contacts of each other.
func exchangeCards(ctx context.Context, t *testing.T, a, b *client.Client) {
	t.Helper()
	for _, pair := range [][2]*client.Client{{a, b}, {b, a}} {
		card, err := pair[0].Card(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pair[1].AddContact(ctx, apitype.AddContactRequest{Card: card.Card}); err != nil {
			t.Fatal(err)
		}
	}
}
