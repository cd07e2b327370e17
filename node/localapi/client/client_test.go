package client_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/client"
)

// TestLinksNoNode keeps the client small: it links the contract and
// libp2p's core types, nothing of the node, no libp2p host or transport,
// no DHT and no database.
func TestLinksNoNode(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/peercollab/peercollab/node/localapi/apitype":           true,
		"github.com/peercollab/peercollab/node/localapi/client":            true,
		"github.com/peercollab/peercollab/node/localapi/internal/sentence": true,
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case allowed[pkg]:
		case strings.HasPrefix(pkg, "github.com/peercollab/peercollab/"),
			strings.HasPrefix(pkg, "github.com/libp2p/go-libp2p/p2p/"),
			pkg == "github.com/libp2p/go-libp2p/core/host",
			strings.HasPrefix(pkg, "github.com/libp2p/go-libp2p-kad-dht"),
			strings.HasPrefix(pkg, "go.etcd.io/bbolt"):
			t.Errorf("the client links %s", pkg)
		}
	}
}

func TestNoDaemonIsOneSentence(t *testing.T) {
	_, err := client.New(t.TempDir()).ID(context.Background())
	if !client.IsNoDaemon(err) || !errors.Is(err, &apitype.Error{Code: apitype.CodeNoDaemon}) {
		t.Fatalf("err = %v", err)
	}
	if s := client.Sentence(err); !strings.HasPrefix(s, "No peercollab daemon is running") || !strings.HasSuffix(s, ".") {
		t.Errorf("Sentence = %q", s)
	}
}

func TestSentence(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"API error as sent", &apitype.Error{Code: "x", Message: "As the daemon put it."}, "As the daemon put it."},
		{"package prefix", errors.New("client: decode answer: unexpected EOF"), "Decode answer: unexpected EOF."},
		{"several lines", errors.New("config.yaml: [1:9] bad value:\n>  1 | listen: x\n           ^\n"), "Config.yaml: [1:9] bad value.\n>  1 | listen: x\n           ^"},
		{"long value", errors.New(`unknown thing "` + strings.Repeat("v", 500) + `"`), `Unknown thing "` + strings.Repeat("v", 64) + `"….`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := client.Sentence(tc.err); got != tc.want {
				t.Errorf("Sentence = %q, want %q", got, tc.want)
			}
		})
	}
}
