package web_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/peercollab/peercollab/node/web"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAPI stands for the local API: it records the paths it is asked for,
// and serves an event stream that stays open until the request ends.
type fakeAPI struct {
	mu    sync.Mutex
	paths []string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	if r.Header.Get("Cookie") != "" {
		http.Error(w, "the API got the page's cookie", http.StatusTeapot)
		return
	}
	if r.URL.Path == "/v1/events" {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, ": peercollab events\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"ok":true}`)
}

func (f *fakeAPI) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

// page serves the page in a new data directory, on a free loopback port.
type page struct {
	t    *testing.T
	srv  *web.Server
	api  *fakeAPI
	home string
	hc   *http.Client
}

func newPage(t *testing.T) *page {
	t.Helper()
	home := t.TempDir()
	return servePage(t, home)
}

func servePage(t *testing.T, home string) *page {
	t.Helper()
	l, err := web.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := &fakeAPI{}
	srv, err := web.Serve(l, home, api)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &page{t: t, srv: srv, api: api, home: home, hc: hc}
}

// do sends a request to the page with the given headers ("Host" sets the
// Host header) and returns the answer with its body read.
func (p *page) do(method, path string, hdr map[string]string) (*http.Response, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.srv.URL()+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// login opens the page with its token and returns the cookie it gets.
func (p *page) login() string {
	p.t.Helper()
	tok := p.srv.Page().Token
	resp, body := p.do("GET", "/?token="+url.QueryEscape(tok), map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `url=/`) {
		p.t.Fatalf("token exchange: %s %q", resp.Status, body)
	}
	cs := resp.Cookies()
	if len(cs) != 1 {
		p.t.Fatalf("token exchange set %d cookies", len(cs))
	}
	c := cs[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge != 0 || !c.Expires.IsZero() {
		p.t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, a session cookie", c)
	}
	if strings.Contains(c.Value, tok) || strings.Contains(resp.Header.Get("Set-Cookie"), tok) {
		p.t.Errorf("the cookie carries the token")
	}
	return c.Name + "=" + c.Value
}

// TestNothingWithoutTheToken: without the cookie, every path gets the page
// that says how to open the page, or a 401 error body, and the API is not
// called.
func TestNothingWithoutTheToken(t *testing.T) {
	p := newPage(t)
	for _, path := range []string{"/", "/index.html", "/app.js", "/style.css", "/nope"} {
		resp, body := p.do("GET", path, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "peercollab web --open") || strings.Contains(body, "<script") {
			t.Errorf("GET %s: %s %q", path, resp.Status, body)
		}
	}
	for _, path := range []string{"/v1/id", "/v1/events", "/v1/contacts"} {
		resp, body := p.do("GET", path, nil)
		var eb struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal([]byte(body), &eb)
		if resp.StatusCode != http.StatusUnauthorized || eb.Error.Code != web.CodeUnauthorized {
			t.Errorf("GET %s: %s %q", path, resp.Status, body)
		}
	}
	// A wrong token, a cookie of the wrong value.
	if resp, body := p.do("GET", "/?token=nottheone", nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "old or wrong token") || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("wrong token: %s %q", resp.Status, body)
	}
	name := strings.SplitN(p.login(), "=", 2)[0]
	if resp, _ := p.do("GET", "/v1/id", map[string]string{"Cookie": name + "=forged"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged cookie: %s", resp.Status)
	}
	if got := p.api.called(); len(got) != 0 {
		t.Errorf("the API was called: %v", got)
	}
}

// TestTheCookieOpensThePage: with the cookie, the page's files are served
// and /v1/ goes to the API, without the cookie; the page's own routes to
// its token are refused.
func TestTheCookieOpensThePage(t *testing.T) {
	p := newPage(t)
	cookie := p.login()
	same := map[string]string{"Cookie": cookie, "Sec-Fetch-Site": "same-origin"}
	resp, body := p.do("GET", "/", same)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<script type="module" src="/app.js">`) {
		t.Fatalf("GET /: %s %.200q", resp.Status, body)
	}
	resp, body = p.do("GET", "/v1/id", same)
	if resp.StatusCode != http.StatusOK || body != `{"ok":true}` || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /v1/id: %s %q", resp.Status, body)
	}
	post := map[string]string{"Cookie": cookie, "Origin": strings.TrimSuffix(p.srv.URL(), "/"), "Sec-Fetch-Site": "same-origin"}
	if resp, body := p.do("POST", "/v1/sessions", post); resp.StatusCode != http.StatusOK {
		t.Errorf("same-origin POST: %s %q", resp.Status, body)
	}
	// localhost names the same server.
	_, port, _ := net.SplitHostPort(p.srv.Addr())
	if resp, _ := p.do("GET", "/v1/id", map[string]string{"Cookie": cookie, "Host": "localhost:" + port}); resp.StatusCode != http.StatusOK {
		t.Errorf("Host localhost: %s", resp.Status)
	}
	for _, path := range []string{"/v1/web", "/v1/web/token", "/v1/./web", "/v1/x/../web/token", "/v1/%77eb"} {
		for _, m := range []string{"GET", "POST"} {
			if resp, _ := p.do(m, path, post); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: %s, want 403", m, path, resp.Status)
			}
		}
	}
	want := []string{"GET /v1/id", "POST /v1/sessions", "GET /v1/id"}
	if got := p.api.called(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("API calls %v, want %v", got, want)
	}
}

// TestForeignHostAndCrossSiteRefused: a Host header that names another host
// (DNS rebinding), an Origin that is not the page's, and a request a
// browser marks as from another site, are refused, with the cookie; no
// answer carries a CORS header.
func TestForeignHostAndCrossSiteRefused(t *testing.T) {
	p := newPage(t)
	cookie := p.login()
	_, port, _ := net.SplitHostPort(p.srv.Addr())
	for _, tc := range []struct {
		name, method, path string
		hdr                map[string]string
		code               string
	}{
		{"rebound DNS name", "GET", "/v1/id", map[string]string{"Host": "attacker.example:" + port}, web.CodeForeignHost},
		{"rebound DNS name, page", "GET", "/", map[string]string{"Host": "attacker.example:" + port}, ""},
		{"another port", "GET", "/v1/id", map[string]string{"Host": "127.0.0.1:1"}, web.CodeForeignHost},
		{"no port", "GET", "/v1/id", map[string]string{"Host": "127.0.0.1"}, web.CodeForeignHost},
		{"cross-site origin", "POST", "/v1/sessions", map[string]string{"Origin": "https://attacker.example"}, web.CodeCrossSite},
		{"another port's origin", "POST", "/v1/sessions", map[string]string{"Origin": "http://127.0.0.1:1"}, web.CodeCrossSite},
		{"null origin", "POST", "/v1/sessions", map[string]string{"Origin": "null"}, web.CodeCrossSite},
		{"preflight", "OPTIONS", "/v1/sessions", map[string]string{"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"}, web.CodeCrossSite},
		{"cross-site GET", "GET", "/v1/contacts", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, web.CodeCrossSite},
		{"same-site (another port)", "GET", "/v1/contacts", map[string]string{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"}, web.CodeCrossSite},
		{"cross-site navigation to the API", "GET", "/v1/contacts", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, web.CodeCrossSite},
		{"cross-site script", "GET", "/app.js", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "script"}, ""},
		{"framed", "GET", "/", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Cookie": cookie}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			resp, body := p.do(tc.method, tc.path, hdr)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s %s: %s %q, want 403", tc.method, tc.path, resp.Status, body)
			}
			if tc.code != "" && !strings.Contains(body, `"`+tc.code+`"`) {
				t.Errorf("body %q lacks code %s", body, tc.code)
			}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("CORS header %s", k)
				}
			}
		})
	}
	// A navigation that comes from elsewhere (a file:// page, a link) may
	// bring the token: it returns no data.
	tok := p.srv.Page().Token
	resp, _ := p.do("GET", "/?token="+tok, map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 1 {
		t.Errorf("cross-site navigation with the token: %s", resp.Status)
	}
	if got := p.api.called(); len(got) != 0 {
		t.Errorf("the API was called: %v", got)
	}
	// Every answer forbids framing and sniffing.
	resp, _ = p.do("GET", "/", map[string]string{"Cookie": cookie})
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if resp.Header.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, resp.Header.Get(k), v)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
}

// TestRotateToken: the new token opens the page, the old one and its
// cookie no longer do, and a stream the old cookie opened ends.
func TestRotateToken(t *testing.T) {
	p := newPage(t)
	old := p.srv.Page()
	cookie := p.login()

	// An event stream open with the old cookie.
	req, _ := http.NewRequest("GET", p.srv.URL()+"v1/events", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := p.hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %v %v", resp, err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, ": peercollab events") {
		t.Fatalf("stream starts with %q", line)
	}

	nw, err := p.srv.RotateToken()
	if err != nil {
		t.Fatal(err)
	}
	if nw.Token == old.Token || !strings.HasSuffix(nw.OpenURL, "?token="+nw.Token) || nw.URL != old.URL {
		t.Fatalf("rotated %+v from %+v", nw, old)
	}
	// The stream ends (read to its end; the test's deadline bounds it).
	io.Copy(io.Discard, br)
	if r, _ := p.do("GET", "/v1/id", map[string]string{"Cookie": cookie}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("old cookie after rotation: %s", r.Status)
	}
	if r, _ := p.do("GET", "/?token="+old.Token, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("old token after rotation: %s", r.Status)
	}
	cookie2 := p.login()
	if cookie2 == cookie {
		t.Error("the cookie did not change with the token")
	}
	if r, _ := p.do("GET", "/v1/id", map[string]string{"Cookie": cookie2}); r.StatusCode != http.StatusOK {
		t.Errorf("new cookie: %s", r.Status)
	}
	// The file holds the new token.
	if b, _ := os.ReadFile(filepath.Join(p.home, web.TokenFile)); strings.TrimSpace(string(b)) != nw.Token {
		t.Errorf("token file %q, want the new token", b)
	}
}

// TestTokenFile: the token is kept in the data directory, mode 0600, and
// stays the same across restarts; a token file readable by others is made
// private, one with no token in it replaced.
func TestTokenFile(t *testing.T) {
	home := t.TempDir()
	p1 := servePage(t, home)
	tok := p1.srv.Page().Token
	path := filepath.Join(home, web.TokenFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	cookie := p1.login()
	p1.srv.Close()

	os.Chmod(path, 0o644)
	p2 := servePage(t, home)
	if p2.srv.Page().Token != tok {
		t.Error("the token changed across a restart")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v after a restart, want 0600", fi.Mode().Perm())
	}
	// The cookie of the first run opens the page of the second.
	if r, _ := p2.do("GET", "/v1/id", map[string]string{"Cookie": cookie}); r.StatusCode != http.StatusOK {
		t.Errorf("cookie across a restart: %s", r.Status)
	}
	p2.srv.Close()

	os.WriteFile(path, []byte("short\n"), 0o600)
	p3 := servePage(t, home)
	if v := p3.srv.Page().Token; v == tok || len(v) != 43 {
		t.Errorf("token after a damaged file: %q", v)
	}
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:4738": "127.0.0.1:4738", "localhost:0": "127.0.0.1:0", "[::1]:80": "[::1]:80", "127.1.2.3:9": "127.1.2.3:9",
		"0.0.0.0:4738": "", "192.168.1.2:4738": "", "example.com:80": "", "127.0.0.1": "", "[::]:1": "", ":4738": "",
	} {
		got, err := web.ParseAddr(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestAssetsHangTogether: every file the page names is served (the page
// has no build step: what is in assets/ is what the browser runs), with
// its type, compressed when asked, and revalidated by ETag.
func TestAssetsHangTogether(t *testing.T) {
	p := newPage(t)
	cookie := p.login()
	get := func(path string, hdr map[string]string) (*http.Response, string) {
		h := map[string]string{"Cookie": cookie}
		for k, v := range hdr {
			h[k] = v
		}
		return p.do("GET", path, h)
	}
	_, index := get("/", nil)
	refs := regexp.MustCompile(`(?:src|href)="(/[^"#]*)"`).FindAllStringSubmatch(index, -1)
	imports := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	seen := map[string]bool{}
	var check func(path string)
	check = func(path string) {
		if seen[path] {
			return
		}
		seen[path] = true
		resp, body := get(path, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: %s", path, resp.Status)
			return
		}
		if strings.HasSuffix(path, ".js") {
			if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
				t.Errorf("%s: Content-Type %q", path, ct)
			}
			for _, m := range imports.FindAllStringSubmatch(body, -1) {
				check("/" + m[1])
			}
			if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
				t.Errorf("%s names another site", path)
			}
		}
		r2, _ := get(path, map[string]string{"If-None-Match": resp.Header.Get("ETag")})
		if r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %s", path, r2.Status)
		}
	}
	for _, m := range refs {
		check(m[1])
	}
	for _, want := range []string{"/app.js", "/views.js", "/state.js", "/api.js", "/dom.js", "/words.js", "/style.css", "/icon.svg"} {
		if !seen[want] {
			t.Errorf("%s is not reached from index.html", want)
		}
	}
	resp, _ := get("/app.js", map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("app.js not compressed: %v", resp.Header)
	}
}

// wordLists reads the page's PGP word lists.
func wordLists(t testing.TB) (even, odd []string) {
	t.Helper()
	b, err := os.ReadFile("assets/words.js")
	if err != nil {
		t.Fatal(err)
	}
	lists := regexp.MustCompile("(?s)const (EVEN|ODD) = `([^`]*)`").FindAllStringSubmatch(string(b), -1)
	if len(lists) != 2 {
		t.Fatalf("found %d lists", len(lists))
	}
	even, odd = strings.Fields(lists[0][2]), strings.Fields(lists[1][2])
	if len(even) != 256 || len(odd) != 256 {
		t.Fatalf("lists of %d and %d words", len(even), len(odd))
	}
	return even, odd
}

// keyWords is what the page reads out of a peer's key: its first 8 bytes
// as PGP words.
func keyWords(t testing.TB, id peer.ID) string {
	t.Helper()
	even, odd := wordLists(t)
	pk, err := id.ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := pk.Raw()
	var w []string
	for i, b := range raw[:8] {
		if i%2 == 0 {
			w = append(w, even[b])
		} else {
			w = append(w, odd[b])
		}
	}
	return strings.Join(w, " ")
}

// TestWordList: the page's PGP word list is the published one (the
// checksum of both lists, joined by newlines, as vendored elsewhere).
func TestWordList(t *testing.T) {
	even, odd := wordLists(t)
	sum := sha256.Sum256([]byte(strings.Join(even, "\n") + "\n" + strings.Join(odd, "\n")))
	if got := hex.EncodeToString(sum[:]); got != "e9b7b0052233a74aa56724ed3f79c272036aed68d8f4c0856e833c8043b9ac62" {
		t.Errorf("word lists' checksum %s", got)
	}
}

// TestCloseEndsStreams: Close returns although an event stream is open.
func TestCloseEndsStreams(t *testing.T) {
	p := newPage(t)
	cookie := p.login()
	req, _ := http.NewRequest("GET", p.srv.URL()+"v1/events", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := p.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	done := make(chan error, 1)
	go func() { done <- p.srv.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close waits on an open event stream")
	}
	io.Copy(io.Discard, resp.Body)
}

// TestListenDefault: the page takes the first free port of its series.
func TestListenDefault(t *testing.T) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range 2 {
		l, err := web.ListenDefault()
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	inSeries := func(p int) bool {
		return p >= web.DefaultPort && p <= web.DefaultPort+70 && (p-web.DefaultPort)%10 == 0
	}
	p0, p1 := ls[0].Addr().(*net.TCPAddr).Port, ls[1].Addr().(*net.TCPAddr).Port
	// Other programs may hold ports of the series; a page never takes one
	// outside it while one of it is free before.
	if !inSeries(p0) && inSeries(p1) || inSeries(p0) && inSeries(p1) && p1 <= p0 {
		t.Errorf("ports %d then %d, want the free ones of %d, %d, ... in order", p0, p1, web.DefaultPort, web.DefaultPort+10)
	}
	if ip := ls[0].Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Errorf("listening on %v", ip)
	}
}
