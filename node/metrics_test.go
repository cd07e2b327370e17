package node_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/protocols/endpoint"
)

// scrape reads the value of the first sample of metric whose line matches
// labels (a regular expression on the label set), -1 when there is none.
func scrape(t *testing.T, addr, metric, labels string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(metric) + `(\{[^}]*` + labels + `[^}]*\})? ([0-9.e+-]+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[2]), 64)
	return v
}

// The node serves go-libp2p's metrics and its own; an invitation shows in
// the gauges and in the count of events.
func TestMetrics(t *testing.T) {
	cfg := testConfig(t, "Alice")
	cfg.MetricsAddr = "127.0.0.1:0"
	a := newNode(t, cfg)
	b := newNode(t, testConfig(t, "Bob"))
	addr := a.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics address")
	}
	for _, m := range []string{"libp2p_rcmgr_connections", "go_goroutines", "peercollab_contacts", "peercollab_relay_reservations"} {
		if scrape(t, addr, m, "") < 0 {
			t.Errorf("no %s among the metrics", m)
		}
	}
	pair(t, a, b)
	register(t, a, publish.RegisteredApp{Application: endpoint.Application{ID: "chat", Description: "Chat"}})
	rec := send(t, b, a, invitations.Request{AppID: "chat", Expiry: time.Minute})
	waitInvitation(t, a, rec.ID, invitations.Pending)
	eventually(t, 5*time.Second, func() bool {
		return scrape(t, addr, "peercollab_invitations", `direction="received",state="pending"`) == 1 &&
			scrape(t, addr, "peercollab_events_total", `type="invitation.changed"`) >= 1
	}, func() string { return "the invitation does not show in the metrics" })
	if got := scrape(t, addr, "peercollab_contacts", ""); got != 1 {
		t.Errorf("peercollab_contacts = %v, want 1", got)
	}
}
