package node_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/internal/nstest"
)

// Daemons started at once on default settings in one network namespace
// take distinct ports, the first ones of DefaultPort's series, and leave no
// lock file behind.
func TestDefaultPortsAtOnce(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	const n = 4
	nodes := make([]*node.Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := testConfig(t, "N")
		cfg.ListenAddrs = nil
		wg.Go(func() { nodes[i], errs[i] = node.New(context.Background(), cfg) })
	}
	wg.Wait()
	ports := map[string]bool{}
	for i, nd := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		defer nd.Close()
		for _, a := range nd.Host().Network().ListenAddresses() {
			if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				if ports[p] {
					t.Errorf("two nodes listen on TCP port %s", p)
				}
				ports[p] = true
				break
			}
		}
	}
	for _, p := range []string{"4737", "4747", "4757", "4767"} {
		if !ports[p] {
			t.Errorf("no node got port %s of the default series: %v", p, ports)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "peercollab-listen*")); len(left) > 0 {
		t.Errorf("lock files left behind: %v", left)
	}
}
