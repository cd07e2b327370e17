package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// pcOut runs a command that may fail and returns its standard output and
// standard error.
func pcOut(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := command(ctx, args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// oneLine fails the test unless msg is one sentence on one line.
func oneLine(t *testing.T, what, msg string) {
	t.Helper()
	msg = strings.TrimSuffix(msg, "\n")
	if strings.Contains(msg, "\n") || !strings.HasSuffix(msg, ".") {
		t.Errorf("%s: not one sentence on one line: %q", what, msg)
	}
}

// TestCommandLineMistakes: what a user mistypes gets one sentence that says
// what to do, a non-zero exit, and under --json an error body on stdout.
func TestCommandLineMistakes(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	startDaemon(t, home, "--name", "H")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"contacts", "lst"}, []string{`no command "lst" in peercollab contacts`, "did you mean list"}},
		{[]string{"contcts"}, []string{`no command "contcts" in peercollab`, "did you mean contacts"}},
		{[]string{"invitations", "acept"}, []string{`no command "acept"`, "accept"}},
		{[]string{"contacts", "show"}, []string{"usage: peercollab contacts show PEER", "received 0"}},
		{[]string{"session", "send", "x"}, []string{"usage: peercollab session send SID MESSAGE"}},
		{[]string{"presence", "set", "bogus"}, []string{"online, away", "sign out to appear offline"}},
		{[]string{"log", "level", "loud"}, []string{`"loud" is none of debug`}},
	} {
		stdout, stderr, err := pcOut(t, append([]string{"--home", home}, tc.args...)...)
		if err == nil {
			t.Errorf("%v: exit 0; stdout %q", tc.args, stdout)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(strings.ToLower(stderr), strings.ToLower(w)) {
				t.Errorf("%v: %q lacks %q", tc.args, stderr, w)
			}
		}
		if strings.Contains(stderr, "offline,") {
			t.Errorf("%v: offers offline, which is refused: %q", tc.args, stderr)
		}
		oneLine(t, strings.Join(tc.args, " "), stderr)
	}

	// --json: the error as an error body on stdout too.
	stdout, _, err := pcOut(t, "--home", home, "contacts", "show", "nobody", "--json")
	var eb apitype.ErrorBody
	if err == nil || json.Unmarshal([]byte(stdout), &eb) != nil || eb.Error == nil || eb.Error.Code != apitype.CodeContactNotFound {
		t.Errorf("contacts show nobody --json: %v %q", err, stdout)
	}
	for _, args := range [][]string{{"name", "--json"}, {"invitations", "policy", "--json"}, {"version", "--json"}, {"doctor", "--json"}, {"log", "level", "--json"}} {
		out, err := pc(t, append([]string{"--home", home}, args...)...)
		if err != nil || !json.Valid([]byte(out)) {
			t.Errorf("%v: %v %q", args, err, out)
		}
	}

	// A data directory too deep for a unix socket: one sentence.
	deep := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	_, stderr, err := pcOut(t, "--home", deep, "id")
	if err == nil || !strings.Contains(stderr, "shorter --home") {
		t.Errorf("deep home: %v %q", err, stderr)
	}
	oneLine(t, "deep home", stderr)
}

func TestVersionDoctorAndLogLevel(t *testing.T) {
	home := filepath.Join(t.TempDir(), "h")
	if out := must(t, "--version"); !strings.HasPrefix(out, "peercollab ") {
		t.Errorf("--version: %q", out)
	}
	var v struct {
		Client apitype.VersionInfo  `json:"client"`
		Daemon *apitype.VersionInfo `json:"daemon"`
	}
	json.Unmarshal([]byte(must(t, "--home", home, "version", "--json")), &v)
	if v.Client.Version == "" || v.Client.Go == "" || v.Client.Libp2p == "" || v.Daemon != nil {
		t.Errorf("version without a daemon: %+v", v)
	}
	// doctor without a daemon: the first check fails and says what to do.
	stdout, stderr, err := pcOut(t, "--home", home, "doctor")
	if err == nil || !strings.Contains(stdout, "FAIL") || !strings.Contains(stdout, "daemon") {
		t.Errorf("doctor without a daemon: %v %q %q", err, stdout, stderr)
	}

	startDaemon(t, home, "--name", "H")
	json.Unmarshal([]byte(must(t, "--home", home, "version", "--json")), &v)
	if v.Daemon == nil || v.Daemon.Version != v.Client.Version {
		t.Errorf("version with a daemon: %+v", v)
	}
	var rep apitype.DoctorReport
	out, _, _ := pcOut(t, "--home", home, "doctor", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v %q", err, out)
	}
	ids := map[string]bool{}
	for _, c := range rep.Checks {
		ids[c.ID] = true
		if c.Status != apitype.CheckOK && c.Advice == "" {
			t.Errorf("check %s is %s without advice", c.ID, c.Status)
		}
	}
	for _, id := range []string{"daemon", "nearme", "listen", "reachability", "relays", "hole-punching", "dht", "clock", "invitations"} {
		if !ids[id] {
			t.Errorf("doctor has no %s check: %+v", id, rep.Checks)
		}
	}
	must(t, "--home", home, "log", "level", "debug", "peercollab/invite")
	var levels apitype.LogLevels
	json.Unmarshal([]byte(must(t, "--home", home, "log", "level", "--json")), &levels)
	if levels.Subsystems["peercollab/invite"] != "debug" {
		t.Errorf("after log level debug: %v", levels.Subsystems["peercollab/invite"])
	}
}

// TestNamesWhereNamesBelong: sessions, messages, host requests, watches,
// ping and presence name peers by their contact names; a member's role is
// its standing; a removed member is told so; completion offers peers.
func TestNamesWhereNamesBelong(t *testing.T) {
	dir := t.TempDir()
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	startDaemon(t, alice, "--name", "Alice")
	startDaemon(t, bob, "--name", "Bob")
	aliceCard, bobCard := filepath.Join(dir, "a.contact"), filepath.Join(dir, "b.contact")
	must(t, "--home", alice, "card", "-o", aliceCard)
	must(t, "--home", bob, "card", "-o", bobCard)
	out := must(t, "--home", alice, "contacts", "add", bobCard)
	if !strings.Contains(out, "check its peer ID with Bob") {
		t.Errorf("untrusted card's advice: %q", out)
	}
	must(t, "--home", bob, "contacts", "add", aliceCard)
	for _, h := range []string{alice, bob} {
		must(t, "--home", h, "apps", "register", "chat", "--desc", "Chat")
	}
	if out := must(t, "--home", alice, "__complete", "contacts", "show", ""); !strings.Contains(out, "Bob") {
		t.Errorf("completion of PEER: %q", out)
	}

	var sess apitype.Session
	json.Unmarshal([]byte(must(t, "--home", alice, "session", "create", "--app", "chat", "--json")), &sess)
	must(t, "--home", alice, "session", "invite", sess.ID, "Bob")
	var id string
	for deadline := time.Now().Add(20 * time.Second); id == "" && time.Now().Before(deadline); {
		var list apitype.InvitationList
		json.Unmarshal([]byte(must(t, "--home", bob, "invitations", "--json")), &list)
		for _, inv := range list.Invitations {
			if inv.SessionID == sess.ID {
				id = inv.ID
			}
		}
	}
	if id == "" {
		t.Fatal("Bob got no invitation to the session")
	}
	must(t, "--home", bob, "invitations", "accept", id)
	var joined bool
	for deadline := time.Now().Add(20 * time.Second); !joined && time.Now().Before(deadline); {
		var v apitype.Session
		json.Unmarshal([]byte(must(t, "--home", bob, "session", "status", sess.ID, "--json")), &v)
		joined = v.Joined
	}
	if !joined {
		t.Fatal("Bob did not join")
	}
	if out := must(t, "--home", bob, "session", "list"); !strings.Contains(out, " member ") || strings.Contains(out, "member (member)") {
		t.Errorf("Bob's session list: %q", out)
	}
	if out := must(t, "--home", bob, "session", "status", sess.ID); !strings.Contains(out, "host:        Alice") {
		t.Errorf("Bob's session status: %q", out)
	}
	must(t, "--home", alice, "session", "start", sess.ID)
	must(t, "--home", alice, "session", "send", sess.ID, "hello")
	// Piped, the tab-separated lines scripts read (the table with names is
	// for terminals; see TestPrintMessages).
	if out := must(t, "--home", alice, "session", "messages", sess.ID); !strings.HasPrefix(out, "1\t12D3KooW") || !strings.HasSuffix(out, "\t1\thello\n") {
		t.Errorf("session messages: %q", out)
	}
	if out := must(t, "--home", alice, "ping", "Bob", "-c", "1"); !strings.Contains(out, "pong 1 from Bob") {
		t.Errorf("ping: %q", out)
	}
	if out := must(t, "--home", bob, "presence", "show", "Alice"); !strings.HasPrefix(out, "Alice") {
		t.Errorf("presence show Alice: %q", out)
	}
	if out := must(t, "--home", bob, "watch", "Alice"); !strings.Contains(out, "Watching Alice") {
		t.Errorf("watch: %q", out)
	}
	must(t, "--home", alice, "session", "remove", sess.ID, "Bob")
	var removed bool
	var stderr string
	for deadline := time.Now().Add(20 * time.Second); !removed && time.Now().Before(deadline); {
		_, stderr, _ = pcOut(t, "--home", bob, "session", "send", sess.ID, "still here?")
		removed = strings.Contains(stderr, "removed you")
	}
	if !removed {
		t.Errorf("a removed member sending: %q", stderr)
	}
}

// TestPingOfflinePeer: pinging a contact whose daemon stopped says so in
// one sentence, after saying it is connecting.
func TestPingOfflinePeer(t *testing.T) {
	dir := t.TempDir()
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	startDaemon(t, alice, "--name", "Alice")
	stopBob := startStoppableDaemon(t, bob, "--name", "Bob")
	card := filepath.Join(dir, "b.contact")
	must(t, "--home", bob, "card", "-o", card)
	must(t, "--home", alice, "contacts", "add", card)
	stopBob()
	_, stderr, err := pcOut(t, "--home", alice, "ping", "Bob", "-c", "1")
	if err == nil || !strings.HasPrefix(stderr, "Connecting to Bob") || !strings.Contains(stderr, "unreachable") {
		t.Fatalf("ping offline: %v %q", err, stderr)
	}
	_, msg, _ := strings.Cut(stderr, "\n")
	oneLine(t, "ping offline", msg)
}
