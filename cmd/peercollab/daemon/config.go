package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/node"
)

// ConfigFile is the name of the optional configuration file in the data
// directory. Flags given on the command line override it.
const ConfigFile = "config.yaml"

// fileConfig is the configuration file:
//
//	listen: [/ip4/0.0.0.0/tcp/4737, /ip4/0.0.0.0/udp/4737/quic-v1]
//	relays: [/ip4/203.0.113.7/tcp/4737/p2p/12D3Koo...]
//	bootstrap: [/ip4/198.51.100.9/tcp/4737/p2p/12D3Koo...]
//	scope: all                  # none, nearme, internet, all
//	reachability: ""            # public, private, or "" to let AutoNAT decide
//	web: 127.0.0.1:4738         # the web page's loopback address, or off (daemon only)
//	metrics: 127.0.0.1:9737     # Prometheus metrics at http://ADDR/metrics (default off)
//	public: false               # public mode: relays and contacts found on the public Amino DHT
//	public_bootstrap: [/dnsaddr/bootstrap.libp2p.io/p2p/QmNnoo...]  # default: Amino's bootstrap peers
//	relay:                      # for `peercollab relay`
//	  unlimited: false          # no time or data limit on circuits
//	  trusted_only: false       # serve only contacts and peers endorsed here
//	  limit_duration: 2m
//	  limit_data: 131072
//
// listen, relays, bootstrap and public_bootstrap take one address as a plain value too
// (listen: /ip4/0.0.0.0/tcp/4737).
type fileConfig struct {
	Listen          stringList  `yaml:"listen"`
	Relays          stringList  `yaml:"relays"`
	Bootstrap       stringList  `yaml:"bootstrap"`
	Scope           string      `yaml:"scope"`
	Reachability    string      `yaml:"reachability"`
	Web             string      `yaml:"web"`
	Metrics         string      `yaml:"metrics"`
	Public          bool        `yaml:"public"`
	PublicBootstrap stringList  `yaml:"public_bootstrap"`
	Relay           relayConfig `yaml:"relay"`
}

// stringList is a list of strings that a single string may stand for.
type stringList []string

// UnmarshalYAML takes a sequence of strings or one string.
func (l *stringList) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := unmarshal(&many); err != nil {
		return errors.New("expected an address or a list of addresses")
	}
	*l = many
	return nil
}

type relayConfig struct {
	Unlimited     bool   `yaml:"unlimited"`
	TrustedOnly   bool   `yaml:"trusted_only"`
	LimitDuration string `yaml:"limit_duration"`
	LimitData     int64  `yaml:"limit_data"`
}

// loadConfigFile reads HOME/config.yaml into cfg, if there is one, and its
// web setting into web ("" when it has none).
func loadConfigFile(home string, cfg *node.Config, web *string) error {
	path := filepath.Join(home, ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, errors.Unwrap(err))
	}
	var fc fileConfig
	if err := yaml.UnmarshalWithOptions(data, &fc, yaml.Strict()); err != nil {
		return fmt.Errorf("%s: %s", path, yaml.FormatError(err, false, false))
	}
	if fc.Listen != nil {
		cfg.ListenAddrs = fc.Listen
	}
	cfg.StaticRelays, cfg.Bootstrap = fc.Relays, fc.Bootstrap
	if fc.Scope != "" {
		if _, err := node.ParseScope(fc.Scope); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		cfg.Scope = fc.Scope
	}
	cfg.Reachability = fc.Reachability
	cfg.MetricsAddr = fc.Metrics
	cfg.Public = fc.Public
	if fc.PublicBootstrap != nil {
		if err := checkP2PAddrs(fc.PublicBootstrap); err != nil {
			return fmt.Errorf("%s: public_bootstrap: %w", path, err)
		}
		cfg.PublicBootstrap = fc.PublicBootstrap
	}
	if fc.Web != "" {
		if err := checkWebAddr(fc.Web); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		*web = fc.Web
	}
	cfg.RelayUnlimited, cfg.RelayTrustedOnly, cfg.RelayLimitData = fc.Relay.Unlimited, fc.Relay.TrustedOnly, fc.Relay.LimitData
	if fc.Relay.LimitDuration != "" {
		d, err := time.ParseDuration(fc.Relay.LimitDuration)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s: relay.limit_duration %q is not a duration such as 2m", path, fc.Relay.LimitDuration)
		}
		cfg.RelayLimitDuration = d
	}
	return nil
}

// checkP2PAddrs checks that every address is a multiaddr ending in /p2p/ID.
func checkP2PAddrs(addrs []string) error {
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("%q is not a multiaddr: %v", s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return fmt.Errorf("%q must end in /p2p/<peer ID>", s)
		}
	}
	return nil
}
