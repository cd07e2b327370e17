package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

func TestPrintMessages(t *testing.T) {
	var b strings.Builder
	alice := peer.ID("\x00\x04alic")
	ms := []apitype.Message{{Sender: alice, Seq: 1, Index: 1, Data: []byte("hello\n"), Time: time.Now()}}
	if err := printMessages(&b, ms, func(p peer.ID) string { return map[peer.ID]string{alice: "Alice"}[p] }); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "INDEX") || !strings.Contains(lines[1], "Alice") || !strings.HasSuffix(lines[1], "hello") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestArgKind(t *testing.T) {
	for _, tc := range []struct {
		use  string
		i    int
		want string
	}{
		{"show PEER [--json]", 0, "PEER"},
		{"invite SID PEER... [--message M] [--timeout D]", 0, "SID"},
		{"invite SID PEER... [--message M] [--timeout D]", 3, "PEER"},
		{"add FILE|-|--near PEER [--nickname N] [--watch] [--block]", 0, ""},
		{"host-request PEER --app APPID [--message M]", 0, "PEER"},
		{"accept ID", 0, "ID"},
		{"accept ID", 1, ""},
		{"remove APPID", 0, "APPID"},
		{"list [--json]", 0, ""},
	} {
		if got := argKind(tc.use, tc.i); got != tc.want {
			t.Errorf("argKind(%q, %d) = %q, want %q", tc.use, tc.i, got, tc.want)
		}
	}
}
