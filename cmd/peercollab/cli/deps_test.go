package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyTheClient keeps the command line a client of the local API:
// of peercollab it links the API's contract and client and testnet, nothing
// of the node and not the contact store.
func TestLinksOnlyTheClient(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rest, ours := strings.CutPrefix(pkg, "github.com/peercollab/peercollab/")
		if !ours {
			continue
		}
		switch {
		case rest == "cmd/peercollab/cli",
			strings.HasPrefix(rest, "node/localapi/apitype"),
			strings.HasPrefix(rest, "node/localapi/client"),
			strings.HasPrefix(rest, "node/localapi/internal/"),
			rest == "testnet", strings.HasPrefix(rest, "testnet/"):
		default:
			t.Errorf("the command line links %s", pkg)
		}
	}
}
