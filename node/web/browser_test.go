package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/peercollab/peercollab/node/internal/nstest"
	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// artifactsEnv names the directory where the browser tests keep their
// screenshots; without it they go to peercollab-web-artifacts in the
// system's temporary directory, replaced at each run.
const artifactsEnv = "PEERCOLLAB_ARTIFACTS"

// artifacts returns the directory for t's screenshots, and logs it.
func artifacts(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "peercollab-web-artifacts")
	}
	dir = filepath.Join(dir, t.Name())
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s (set $%s to keep them elsewhere)", dir, artifactsEnv)
	return dir
}

// chromium returns the path of a Chromium or Chrome binary; it skips t
// when there is none and it cannot be installed here (not root), and fails
// it when it should have been (CI runs as root, and .ci/run installs it).
func chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: no Chromium to drive (install Debian's chromium package, which .ci/run does when run as root)")
	}
	t.Fatal("Chromium is not installed: run .ci/run as root, which installs Debian's chromium package")
	return ""
}

// newBrowser starts a headless Chromium for t, which the test's end stops.
// Its flags keep it from reaching anything but the page (this network is
// closed: background connections are refused, and waiting on them slows
// the browser down).
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return bctx
}

// person is a tab in a browser context of its own (its own cookies and
// storage: another person's browser), whose page's uncaught exceptions are
// kept.
type person struct {
	context.Context
	mu         sync.Mutex
	exceptions []string
}

func newPerson(t testing.TB, browser context.Context) *person {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	p := &person{Context: ctx}
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	console := chromedp.Console(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() {
				p.mu.Lock()
				p.exceptions = append(p.exceptions, m.String())
				p.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return p
}

// checkExceptions fails t if the page threw an exception it did not catch.
func (p *person) checkExceptions(t testing.TB, who string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.exceptions {
		t.Errorf("%s's page threw: %s", who, e)
	}
}

// goCommand is the go command of the toolchain running the test.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// buildPeercollab builds the binary of the module under test into dir. (It
// is not testnet/testnettest's, which the node must not import.)
func buildPeercollab(t testing.TB, dir string) string {
	t.Helper()
	out, err := exec.Command(goCommand(), "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(dir, "peercollab")
	cmd := exec.Command(goCommand(), "build", "-o", bin, "./cmd/peercollab")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/peercollab: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a buffer that a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// subnetIP is the address the test's namespace gives its loopback, the
// "subnet" both daemons are on. (With 127.0.0.1 alone, multicast on lo
// leaves with the source 0.0.0.0, and People Near Me then drops the
// loopback addresses it hears: people are listed, but cannot be dialled.)
const subnetIP = "10.77.0.1"

// joinSubnet gives the namespace's loopback subnetIP.
func joinSubnet(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("ip", "addr", "add", subnetIP+"/24", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
}

// startDaemon runs `peercollab daemon` on home until the test ends, and
// returns once it says where its page is.
func startDaemon(t testing.TB, bin, home, name string) {
	t.Helper()
	cmd := exec.Command(bin, "--home", home, "daemon", "--name", name,
		"--listen", "/ip4/"+subnetIP+"/tcp/0", "--scope", "all", "--web", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
			if strings.HasPrefix(sc.Text(), "web page: ") {
				close(up)
			}
		}
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("daemon %s did not exit cleanly: %v\n%s", name, err, logs.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("daemon %s ignored SIGTERM for 15 s\n%s", name, logs.String())
		}
		if t.Failed() {
			t.Logf("daemon %s:\n%s", name, logs.String())
		}
	})
	select {
	case <-up:
	case err := <-exited:
		t.Fatalf("daemon %s exited: %v\n%s", name, err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon %s serves no page after 30 s\n%s", name, logs.String())
	}
}

// pc runs a peercollab command and returns its standard output.
func pc(t testing.TB, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("peercollab %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// xp is an XPath string literal of s (s holds no quote).
func xp(s string) string { return "'" + s + "'" }

// item is the XPath of the entry of list (an element ID) that names name.
func item(list, name string) string {
	return "//*[@id=" + xp(list) + "]/li[.//*[contains(@class,'name') and normalize-space()=" + xp(name) + "]]"
}

// shot saves a screenshot of the tab's viewport as dir/name.png.
func shot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.CaptureScreenshot()(ctx, t)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// run runs the actions of one step in tab within a minute, failing t with
// the step's name and what the page shows.
func run(t testing.TB, tab context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, time.Minute)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(ctx, actions...); err != nil {
		where, _ := chromedp.Run(tab, chromedp.Evaluate[string](`location.href + " · " + document.getElementById('status').textContent + " · " + document.querySelector('main').innerText.slice(0, 1500)`))
		t.Fatalf("%s: %v\npage: %s", step, err, where)
	}
	t.Logf("%-58s %6.0f ms", step, float64(time.Since(start).Microseconds())/1000)
}

// TestPageInBrowser: two daemons on one subnet (a network namespace's
// loopback), each with its page open in a headless Chromium. Alice's page
// shows Bob near; Alice adds him as a contact and invites him to a chat
// from the page; Bob's page shows the invitation, from whom and that she is
// not his contact, and he accepts it by keyboard; Alice starts the session;
// they exchange a message each in the session view, with names. Bob opens
// his page the way `peercollab web --open` does (a file that leads the
// browser on, so that the token is on no command line).
func TestPageInBrowser(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	chromium(t)
	joinSubnet(t)
	shots := artifacts(t)
	dir := t.TempDir()
	bin := buildPeercollab(t, dir)
	alice, bob := filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	var wg sync.WaitGroup
	var browser context.Context
	wg.Go(func() { browser = newBrowser(t) })
	startDaemon(t, bin, alice, "Alice")
	startDaemon(t, bin, bob, "Bob")
	wg.Wait()
	if t.Failed() {
		return
	}

	// Alice's address, as `peercollab web` prints it.
	aliceURL := strings.TrimSpace(pc(t, bin, nil, "--home", alice, "web"))
	// Bob's, as `peercollab web --open` hands it to the browser: through
	// a file (here, to a stand-in for xdg-open that records it).
	opener := filepath.Join(dir, "bin")
	os.Mkdir(opener, 0o755)
	opened := filepath.Join(dir, "opened")
	os.WriteFile(filepath.Join(opener, "xdg-open"), []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+opened+".tmp && mv "+opened+".tmp "+opened+"\n"), 0o755)
	pc(t, bin, []string{"PATH=" + opener + ":" + os.Getenv("PATH")}, "--home", bob, "web", "--open")
	var bobFile string
	eventually(t, func() bool { b, err := os.ReadFile(opened); bobFile = string(b); return err == nil })
	if fi, err := os.Stat(bobFile); err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(bobFile) != bob {
		t.Fatalf("web --open opened %q (%v, %v)", bobFile, fi, err)
	}
	var bobPage apitype.WebPage
	json.Unmarshal([]byte(pc(t, bin, nil, "--home", bob, "web", "--json")), &bobPage)
	if b, _ := os.ReadFile(bobFile); !strings.Contains(string(b), bobPage.OpenURL) {
		t.Fatalf("%s does not lead to %s: %q", bobFile, bobPage.OpenURL, b)
	}

	a, b := newPerson(t, browser), newPerson(t, browser)
	ready := chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`))
	run(t, a, "Alice opens her page", chromedp.Navigate(aliceURL), ready)
	run(t, b, "Bob opens his through the file web --open wrote", chromedp.Navigate("file://"+bobFile), ready)
	loc, err := chromedp.Run(a, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(loc, "token") {
		t.Errorf("Alice's address still holds the token: %s", loc)
	}

	bobNear := item("near-list", "Bob")
	run(t, a, "Alice's page shows Bob near", chromedp.WaitVisible(bobNear), shot(shots, "alice-near"))
	run(t, b, "Bob's page shows Alice near", chromedp.WaitVisible(item("near-list", "Alice")))
	run(t, a, "Alice adds Bob to her contacts",
		chromedp.Click(bobNear+"//button[@data-act='add']"),
		chromedp.WaitVisible(bobNear+"//*[contains(@class,'badge') and text()='Contact']"))
	run(t, a, "Alice invites Bob to a chat",
		chromedp.Click(bobNear+"//button[@data-act='invite']"),
		chromedp.WaitVisible(chromedp.CSS(`#view-session:not([hidden])`)),
		chromedp.WaitVisible(item("member-list", "Bob")+"//*[@class='sub' and text()='invited, no answer yet']"))

	fromAlice := item("received-list", "Alice")
	run(t, b, "Bob's page shows the invitation",
		chromedp.WaitVisible(`//*[@id='count-invitations' and text()='1']`),
		chromedp.Click(chromedp.CSS(`a[href="#invitations"]`)),
		chromedp.WaitVisible(fromAlice+"//*[contains(@class,'badge') and text()='Not a contact']"),
		chromedp.WaitVisible(fromAlice+"//strong[text()='Chat']"),
		shot(shots, "bob-invitation"))
	run(t, b, "Bob accepts it with the keyboard",
		chromedp.Focus(fromAlice+"//button[@data-act='accept']"),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#view-session:not([hidden])`)),
		chromedp.WaitVisible(`//h1[@id='h-session' and text()='Chat with Alice']`))
	run(t, a, "Alice sees Bob in the session, and starts it",
		chromedp.WaitVisible(item("member-list", "Bob")+"//*[@class='sub' and text()='in the session']"),
		chromedp.Click(chromedp.CSS(`#session-actions button[data-act=start]`)),
		chromedp.WaitEnabled(chromedp.CSS(`#composer-text`)))

	msg := func(from, text string) string {
		return "//ol[@id='message-log']/li[span[@class='from' and text()=" + xp(from) + "] and div[@class='text' and text()=" + xp(text) + "]]"
	}
	run(t, b, "Bob writes to Alice",
		chromedp.WaitEnabled(chromedp.CSS(`#composer-text`)),
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), "Hello Alice, Bob here\n"),
		chromedp.WaitVisible(msg("You", "Hello Alice, Bob here")))
	run(t, a, "Alice reads Bob's message and answers",
		chromedp.WaitVisible(msg("Bob", "Hello Alice, Bob here")),
		chromedp.SendKeys(chromedp.CSS(`#composer-text`), "Hi Bob! Good to see you near\n"),
		chromedp.WaitVisible(msg("You", "Hi Bob! Good to see you near")))
	run(t, b, "Bob reads Alice's answer",
		chromedp.WaitVisible(msg("Alice", "Hi Bob! Good to see you near")),
		shot(shots, "bob-session"))
	run(t, a, "Alice's session view", shot(shots, "alice-session"))
	run(t, a, "Alice's invitations sent, with their tally",
		chromedp.Click(chromedp.CSS(`a[href="#invitations"]`)),
		chromedp.WaitVisible(`//*[@id='sent-list']//*[@data-tally and text()='1 accepted, 0 declined, 0 no answer yet']`),
		shot(shots, "alice-invitations"),
		chromedp.Click(chromedp.CSS(`a[href="#me"]`)),
		chromedp.WaitVisible(`//*[@id='me-facts']//dd[@class='words']`),
		chromedp.WaitNotPresent(`//*[@id='me-facts' and contains(., 'null')]`),
		shot(shots, "alice-me"),
		chromedp.Evaluate[chromedp.Void](`history.back(); history.back()`),
		chromedp.WaitVisible(chromedp.CSS(`#view-session:not([hidden])`)))
	run(t, b, "Bob's session at phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.WaitVisible(msg("Alice", "Hi Bob! Good to see you near")),
		shot(shots, "bob-session-phone"),
		chromedp.EmulateViewport(1280, 860))
	run(t, a, "peer IDs on request",
		chromedp.Click(chromedp.CSS(`a[href="#me"]`)),
		chromedp.Click(chromedp.CSS(`#show-ids`)),
		chromedp.Click(chromedp.CSS(`a[href="#contacts"]`)),
		chromedp.WaitVisible(item("contact-list", "Bob")+"//*[@class='pid']"),
		chromedp.Click(item("contact-list", "Bob")+"//button[@data-act='details']"),
		chromedp.WaitVisible(item("contact-list", "Bob")+"//dd[starts-with(normalize-space(), 'Trusted: you hold Bob')]"),
		shot(shots, "alice-contacts"))

	// The words Alice reads out for Bob's key are those Bob's own page
	// shows, and those of his key.
	aliceSays, err := chromedp.Run(a, chromedp.Text(item("contact-list", "Bob")+"//dd[@class='words' or span[@class='words']]"))
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, "Bob's own page", chromedp.Click(chromedp.CSS(`a[href="#me"]`)), chromedp.WaitVisible(chromedp.CSS(`#me-facts .words`)))
	bobSays, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(`#me-facts .words`)))
	if err != nil {
		t.Fatal(err)
	}
	var bobID apitype.Info
	json.Unmarshal([]byte(pc(t, bin, nil, "--home", bob, "id", "--json")), &bobID)
	if want := keyWords(t, bobID.PeerID); strings.TrimSpace(aliceSays) != want || strings.TrimSpace(bobSays) != want {
		t.Errorf("Bob's key in words: Alice's page %q, Bob's %q, want %q", aliceSays, bobSays, want)
	}

	// Presence, live: Bob is busy, and Alice's list of people near says so.
	run(t, b, "Bob says he is busy",
		chromedp.Evaluate[chromedp.Void](`(s => { s.value = 'busy'; s.dispatchEvent(new Event('change')); })(document.getElementById('me-quick'))`),
		chromedp.WaitVisible(`//*[@id='me-dot' and @data-s='busy']`))
	run(t, a, "Alice sees Bob busy",
		chromedp.Click(chromedp.CSS(`a[href="#near"]`)),
		chromedp.WaitVisible(bobNear+"//*[@class='sub' and starts-with(text(), 'Busy')]"))

	// Bob imports the card Alice gave him; the page shows whose it is, in
	// words to compare, before he adds it.
	card := filepath.Join(dir, "alice.contact")
	pc(t, bin, nil, "--home", alice, "card", "-o", card)
	run(t, b, "Bob imports Alice's card",
		chromedp.Click(chromedp.CSS(`a[href="#contacts"]`)),
		chromedp.SetUploadFiles(chromedp.CSS(`#card-file`), []string{card}),
		chromedp.WaitVisible(`//*[@id='import']//h2[text()='Card of Alice']`),
		chromedp.WaitVisible(`//*[@id='import']//dd[starts-with(text(), 'Not trusted')]`),
		chromedp.Click(chromedp.CSS(`#import button[data-act=import-add]`)),
		chromedp.WaitVisible(item("contact-list", "Alice")),
		chromedp.Click(item("contact-list", "Alice")+"//button[@data-act='block']"),
		chromedp.WaitVisible(item("contact-list", "Alice")+"//*[contains(@class,'badge') and text()='Blocked']"),
		chromedp.Click(item("contact-list", "Alice")+"//button[@data-act='block']"),
		chromedp.WaitNotPresent(item("contact-list", "Alice")+"//*[contains(@class,'badge') and text()='Blocked']"))
	// Her card once more: the page offers to replace it, and does so only
	// when asked (the API refuses to replace a contact's card silently).
	run(t, b, "Bob imports Alice's card again and replaces it",
		chromedp.SetUploadFiles(chromedp.CSS(`#card-file`), []string{card}),
		chromedp.Click(`//*[@id='import']//button[@data-act='import-add' and text()='Replace their card']`),
		chromedp.WaitVisible(`//*[contains(text(), 'card is replaced.')]`),
		chromedp.WaitVisible(item("contact-list", "Alice")))

	// Alice ends the session; Bob's session view says so.
	run(t, a, "Alice ends the session",
		chromedp.Click(chromedp.CSS(`a[href="#sessions"]`)),
		chromedp.Click(`//ul[@id='session-list']//a[.//*[text()='Chat with Bob']]`),
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`#session-actions button[data-act=end]`)),
		chromedp.WaitVisible(`//*[@id='composer-hint' and text()='The session has ended.']`))
	run(t, b, "Bob sees it ended",
		chromedp.Click(chromedp.CSS(`a[href="#sessions"]`)),
		chromedp.WaitVisible(`//ul[@id='session-list']//*[@class='sub' and starts-with(text(), 'ended')]`))

	// A new token closes the page in every browser that opened it with the
	// old one; the new address opens it again.
	pc(t, bin, nil, "--home", alice, "web", "--rotate")
	run(t, a, "a new token closes Alice's page",
		chromedp.WaitVisible(chromedp.CSS(`#gone:not([hidden])`)),
		chromedp.WaitVisible(`//*[@id='conn' and text()='closed']`),
		shot(shots, "alice-closed"))
	run(t, a, "the new address opens it again",
		chromedp.Navigate(strings.TrimSpace(pc(t, bin, nil, "--home", alice, "web"))),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
		chromedp.WaitVisible(bobNear))
	a.checkExceptions(t, "Alice")
	b.checkExceptions(t, "Bob")
}

// eventually waits, with a bound, until cond holds.
func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		<-time.After(10 * time.Millisecond)
	}
}
