package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/web"
)

// crowdAPI answers the page's calls as a daemon with 50 people near (12 of
// them contacts) and a running session of 6 with 200 messages would: its
// answers are the API's own types, encoded as the daemon encodes them, so
// the page transfers and renders what it would. It stands in for the
// daemon so that the figures are the page's, not 50 daemons'.
type crowdAPI struct {
	routes map[string][]byte
	sid    string
}

func newCrowdAPI(tb testing.TB, people, messages int) *crowdAPI {
	tb.Helper()
	now := time.Now().UTC()
	id := func(i int) peer.ID {
		seed := sha256.Sum256([]byte(fmt.Sprint("person", i)))
		k, _, err := crypto.GenerateEd25519Key(strings.NewReader(string(seed[:])))
		if err != nil {
			tb.Fatal(err)
		}
		p, _ := peer.IDFromPrivateKey(k)
		return p
	}
	fp := func(i int) apitype.Fingerprint { return sha256.Sum256([]byte(fmt.Sprint("cert", i))) }
	addr := func(i int) []ma.Multiaddr {
		return []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/192.168.1.%d/tcp/4737", 10+i))}
	}
	me := id(0)
	statuses := []apitype.PresenceStatus{apitype.StatusOnline, apitype.StatusBusy, apitype.StatusAway, apitype.StatusOnThePhone, apitype.StatusOnline}
	var near []apitype.PersonNear
	var contacts []apitype.Contact
	for i := 1; i <= people; i++ {
		name := fmt.Sprintf("%s %s", first[i%len(first)], last[(i/len(first))%len(last)])
		p := apitype.Person{PeerID: id(i), DisplayName: name, Email: fmt.Sprintf("person%d@example.org", i),
			EndpointName: fmt.Sprintf("laptop-%d", i), Presence: apitype.Presence{Status: statuses[i%len(statuses)]},
			Fingerprint: fp(i), Addrs: addr(i), Since: now.Add(-time.Hour), LastSeen: now}
		if i%4 == 0 {
			p.Presence.Text = "in a meeting until three"
		}
		near = append(near, apitype.PersonNear{Person: p, Contact: i <= 12})
		if i <= 12 {
			contacts = append(contacts, apitype.Contact{PeerID: p.PeerID, Nickname: first[i%len(first)], DisplayName: name,
				Email: p.Email, Fingerprint: p.Fingerprint, WatcherPermission: apitype.WatcherAllowed, Watch: i%2 == 0,
				Addrs: p.Addrs, Added: now.Add(-48 * time.Hour), LastSeen: now})
		}
	}
	members := []peer.ID{me, id(1), id(2), id(3), id(4), id(5)}
	sess := apitype.Session{ID: fmt.Sprintf("%x", sha256.Sum256([]byte("session")))[:32], AppID: "org.peercollab.chat", Host: me, Hosting: true,
		State: apitype.SessionRunning, Version: 7, Epoch: 1, Members: members, Joined: true, Me: apitype.StandingMember,
		Standing: map[string]apitype.Standing{}, Tally: &apitype.Tally{Total: 5, Accepted: 5}, Sent: 34, Received: uint64(messages)}
	var invs []apitype.Invitation
	for i, m := range members[1:] {
		sess.Standing[m.String()] = apitype.StandingMember
		invs = append(invs, apitype.Invitation{ID: fmt.Sprintf("%032x", i+1), AppID: sess.AppID, Sent: now.Add(-30 * time.Minute),
			Expires: now.Add(-25 * time.Minute), SessionID: sess.ID, Direction: apitype.Sent, Peer: m, PeerName: near[i].DisplayName,
			State: apitype.InvitationAccepted, Trusted: true, Batch: "b1", Updated: now.Add(-29 * time.Minute)})
	}
	var msgs []apitype.Message
	seq := map[peer.ID]uint64{}
	for i := 1; i <= messages; i++ {
		from := members[i%len(members)]
		seq[from]++
		text := lines[i%len(lines)]
		msgs = append(msgs, apitype.Message{Session: sess.ID, Sender: from, Seq: seq[from], Data: []byte(text),
			Time: now.Add(time.Duration(i-messages) * 20 * time.Second), Index: uint64(i)})
	}
	enc := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return append(b, '\n')
	}
	app := apitype.RegisteredApp{ID: "org.peercollab.chat", Description: "Chat (peercollab’s page)"}
	return &crowdAPI{sid: sess.ID, routes: map[string][]byte{
		"GET /v1/id": enc(apitype.Info{PeerID: me, DisplayName: "Alice Example", Email: "alice@example.org", Fingerprint: fp(0),
			Addrs: addr(0), Reachability: "private", PrivateAddrs: addr(0), Protocols: []string{"/peercollab/card/1.0.0"}, Version: "dev"}),
		"GET /v1/me/endpoint":                       enc(apitype.MyEndpoint{Name: "alice-laptop", Presence: apitype.Presence{Status: apitype.StatusOnline}, Scope: apitype.ScopeAll, Applications: []apitype.RegisteredApp{app}, Objects: []apitype.Object{}}),
		"GET /v1/near":                              enc(near),
		"GET /v1/contacts":                          enc(contacts),
		"GET /v1/watching":                          enc([]apitype.PeerEndpoint{}),
		"GET /v1/invitations":                       enc(apitype.InvitationList{Invitations: invs, Tally: apitype.TallyOf(invs)}),
		"GET /v1/sessions":                          enc([]apitype.Session{sess}),
		"GET /v1/invitations/policy":                enc(apitype.PolicyBody{Policy: apitype.PolicyAnyone}),
		"GET /v1/sessions/" + sess.ID + "/messages": enc(msgs),
	}}
}

var (
	first = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Radia", "Tim", "Sophie", "Leslie"}
	last  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen", "Perlman"}
	lines = []string{
		"Morning! Shall we go through the agenda?",
		"Yes, I have the notes from last week open.",
		"The first point is the release: are the builds green?",
		"All six systems built; the browser test passes in about four seconds.",
		"Great. Who reviews the page's keyboard navigation?",
		"I can, after lunch.",
		"Let's also check how it reads on a phone 📱",
	}
)

func (c *crowdAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/v1/events" {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(": peercollab events\n\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if b, ok := c.routes[r.Method+" "+r.URL.Path]; ok {
		w.Write(b)
		return
	}
	w.Write([]byte("{}\n"))
}

// loadFigures are what one cold load of the page costs.
type loadFigures struct {
	// Bytes is what the network carried for the page (transfer sizes:
	// headers and compressed bodies) up to its first full rendering, the
	// event stream's first bytes left out; Body the same bodies
	// uncompressed.
	Bytes, Body float64
	// Requests counts them.
	Requests float64
	// FCP is the first contentful paint, Rendered when the page had drawn
	// everything it loaded (its "peercollab-rendered" mark), both in ms
	// from the start of the navigation.
	FCP, Rendered float64
}

// measureLoad opens the page at fragment in a fresh browser context (an
// empty cache) and reads the browser's own figures.
func measureLoad(tb testing.TB, browser context.Context, srv *web.Server, fragment, wait string) loadFigures {
	tb.Helper()
	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	ctx, cancelT := context.WithTimeout(tab, time.Minute)
	defer cancelT()
	// The token first (its cookie), then the page at fragment with the
	// cache off: every file and answer comes over the network again.
	noCache := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true})
		return err
	})
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.Page().OpenURL),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
		noCache,
		chromedp.Navigate(srv.URL()+fragment),
		chromedp.Evaluate[chromedp.Void](`location.reload()`),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready]`)),
		chromedp.WaitVisible(chromedp.CSS(wait)),
	); err != nil {
		tb.Fatal(err)
	}
	f, err := chromedp.Run(ctx, chromedp.Evaluate[loadFigures](`(() => {
		const nav = performance.getEntriesByType('navigation')[0];
		const res = performance.getEntriesByType('resource');
		const mark = performance.getEntriesByName('peercollab-rendered')[0];
		const fcp = performance.getEntriesByName('first-contentful-paint')[0];
		let bytes = nav.transferSize, body = nav.decodedBodySize;
		for (const r of res) { bytes += r.transferSize; body += r.decodedBodySize; }
		return { Bytes: bytes, Body: body, Requests: 1 + res.length, FCP: fcp ? fcp.startTime : 0, Rendered: mark.startTime };
	})()`))
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// BenchmarkFirstLoad measures, in headless Chromium, what a cold load of
// the page costs with 50 people near and a session of 200 messages: the
// bytes transferred and the time to the first full rendering, of the
// people near (#near) and of the session (#session/ID). The API's answers
// come from crowdAPI, so the daemon's own time is not in the figures.
//
//	go test -run '^$' -bench FirstLoad -benchtime 5x ./node/web/
func BenchmarkFirstLoad(b *testing.B) {
	chromium(b)
	api := newCrowdAPI(b, 50, 200)
	l, err := web.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := web.Serve(l, b.TempDir(), api)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	browser := newBrowser(b)
	for _, tc := range []struct{ name, fragment, wait string }{
		{"near-50", "#near", `#near-list li:nth-child(50)`},
		{"session-200", "#session/" + api.sid, `#message-log li:nth-child(200)`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var sum loadFigures
			n := 0
			for b.Loop() {
				f := measureLoad(b, browser, srv, tc.fragment, tc.wait)
				sum.Bytes += f.Bytes
				sum.Body += f.Body
				sum.Requests += f.Requests
				sum.FCP += f.FCP
				sum.Rendered += f.Rendered
				n++
			}
			k := float64(n)
			b.ReportMetric(sum.Bytes/k, "bytes-transferred/load")
			b.ReportMetric(sum.Body/k, "bytes-uncompressed/load")
			b.ReportMetric(sum.Requests/k, "requests/load")
			b.ReportMetric(sum.FCP/k, "ms-first-paint")
			b.ReportMetric(sum.Rendered/k, "ms-rendered")
			b.Logf("%s: %.0f bytes transferred (%.0f uncompressed) in %.0f requests; first paint %.0f ms, all rendered %.0f ms (mean of %d cold loads)",
				tc.name, sum.Bytes/k, sum.Body/k, sum.Requests/k, sum.FCP/k, sum.Rendered/k, n)
		})
	}
}
