package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peercollab/peercollab/node"
)

func TestConfigFileTakesOneAddressOrAList(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		listen     []string
		err        string
	}{
		{"one address", "listen: /ip4/0.0.0.0/tcp/4737\n", []string{"/ip4/0.0.0.0/tcp/4737"}, ""},
		{"a list", "listen: [/ip4/0.0.0.0/tcp/4737, /ip4/0.0.0.0/udp/4737/quic-v1]\n", []string{"/ip4/0.0.0.0/tcp/4737", "/ip4/0.0.0.0/udp/4737/quic-v1"}, ""},
		{"a block list", "listen:\n  - /ip4/0.0.0.0/tcp/1\n", []string{"/ip4/0.0.0.0/tcp/1"}, ""},
		{"a map", "listen: {a: b}\n", nil, "expected an address or a list of addresses"},
		{"unknown key", "lisen: x\n", nil, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			os.WriteFile(filepath.Join(home, ConfigFile), []byte(tc.yaml), 0o600)
			cfg := node.DefaultConfig(home)
			var web string
			err := loadConfigFile(home, &cfg, &web)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line with %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(cfg.ListenAddrs, tc.listen) {
				t.Fatalf("listen = %v, %v; want %v", cfg.ListenAddrs, err, tc.listen)
			}
		})
	}
}

func TestConfigFilePublicMode(t *testing.T) {
	const boot = "/ip4/11.1.0.1/tcp/4737/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
	for _, tc := range []struct {
		name, yaml string
		public     bool
		boot       []string
		err        string
	}{
		{"off by default", "scope: all\n", false, nil, ""},
		{"on", "public: true\n", true, nil, ""},
		{"one bootstrap peer", "public: true\npublic_bootstrap: " + boot + "\n", true, []string{boot}, ""},
		{"a list", "public_bootstrap: [" + boot + "]\n", false, []string{boot}, ""},
		{"no peer ID", "public_bootstrap: /ip4/11.1.0.1/tcp/4737\n", false, nil, "must end in /p2p/"},
		{"not a multiaddr", "public_bootstrap: nonsense\n", false, nil, "not a multiaddr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			os.WriteFile(filepath.Join(home, ConfigFile), []byte(tc.yaml), 0o600)
			cfg := node.DefaultConfig(home)
			var web string
			err := loadConfigFile(home, &cfg, &web)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || cfg.Public != tc.public || !slices.Equal(cfg.PublicBootstrap, tc.boot) {
				t.Fatalf("public = %v, bootstrap = %v, err = %v; want %v, %v", cfg.Public, cfg.PublicBootstrap, err, tc.public, tc.boot)
			}
		})
	}
}
