package localapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	logging "github.com/ipfs/go-log/v2"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
	"github.com/peercollab/peercollab/node/near"
)

func (s *Server) version(*http.Request) (apitype.VersionInfo, error) {
	return apitype.ReadVersion(node.Version), nil
}

// logLevels lists the default level and each go-log logger's, read
// through the loggers themselves. go-log's SubsystemLevelNames (v2.9.2)
// reads its table of levels without its lock while its slog bridge adds to
// it when a go-libp2p subsystem first logs: a concurrent map read and
// write, which the race detector caught and which can kill the daemon.
// go-libp2p's slog subsystems (swarm2, basichost, ...) are therefore not
// listed; setting one by name works all the same.
func logLevels() apitype.LogLevels {
	subs := map[string]string{logging.DefaultName: logging.DefaultLevel().String()}
	for _, name := range logging.GetSubsystems() {
		subs[name] = logging.Logger(name).Level().String()
	}
	return apitype.LogLevels{Subsystems: subs}
}

func (s *Server) logLevels(*http.Request) (apitype.LogLevels, error) { return logLevels(), nil }

// setLogLevel sets a subsystem's level, or every one's, as GOLOG_LOG_LEVEL
// does at start.
func (s *Server) setLogLevel(r *http.Request) (apitype.LogLevels, error) {
	var req apitype.LogLevelRequest
	if err := decode(r, &req); err != nil {
		return apitype.LogLevels{}, err
	}
	sub := req.Subsystem
	if sub == "" {
		sub = "*"
	}
	if _, err := logging.Parse(req.Level); err != nil {
		return apitype.LogLevels{}, badValue(apitype.CodeBadLogLevel, "log level %s is none of debug, info, warn, error, dpanic, panic, fatal", sentence.Quote(req.Level))
	}
	if err := logging.SetLogLevel(sub, req.Level); err != nil {
		return apitype.LogLevels{}, badValue(apitype.CodeBadLogLevel, "no subsystem %s logs here; see GET /v1/log (`peercollab log level`) for their names", sentence.Quote(sub))
	}
	log.Infow("log level set", "subsystem", sub, "level", req.Level)
	return logLevels(), nil
}

// doctor runs the checks of GET /v1/doctor, composed from what the node
// shows of itself (Info, Scope, Near, Relays, Locate, its host).
func (s *Server) doctor(r *http.Request) (apitype.DoctorReport, error) {
	info, err := s.n.Info()
	if err != nil {
		return apitype.DoctorReport{}, err
	}
	rep := apitype.DoctorReport{Time: time.Now().UTC()}
	add := func(id, title, status, detail, advice string) {
		rep.Checks = append(rep.Checks, apitype.DoctorCheck{ID: id, Title: title, Status: status, Detail: detail, Advice: advice})
	}
	add("daemon", "Daemon", apitype.CheckOK, fmt.Sprintf("peercollab %s answers as %s (%s), with %d connections to %d peers", info.Version, info.DisplayName, info.PeerID, info.Connections, info.Peers), "")

	scope := s.n.Scope()
	nearme := scope == node.ScopeNearMe || scope == node.ScopeAll
	internet := scope == node.ScopeInternet || scope == node.ScopeAll
	ifaces := near.Interfaces()
	switch {
	case !nearme:
		add("nearme", "People Near Me", apitype.CheckWarn, fmt.Sprintf("not signed in to nearme (signed in: %s): the people on your subnet do not see you, nor you them", scopeView(scope)), "sign in with `peercollab signin nearme`")
	case len(ifaces) == 0:
		add("nearme", "People Near Me", apitype.CheckFail, "signed in, but no interface is up with an IPv4 address and multicast", "connect to a network whose interface can multicast (Wi-Fi or Ethernet, not a VPN tunnel)")
	default:
		people, _ := s.n.Near().List()
		add("nearme", "People Near Me", apitype.CheckOK, fmt.Sprintf("signed in; announcing on %s; %d people near", strings.Join(ifaces, ", "), len(people)), "")
	}

	listen := slices.DeleteFunc(s.n.Host().Network().ListenAddresses(), func(a ma.Multiaddr) bool {
		_, err := a.ValueForProtocol(ma.P_CIRCUIT)
		return err == nil // the relay transport's, not an address
	})
	switch {
	case len(listen) == 0:
		add("listen", "Listen addresses", apitype.CheckFail, "the node listens on no address", "start the daemon with --listen /ip4/0.0.0.0/tcp/4737")
	case !slices.ContainsFunc(listen, func(a ma.Multiaddr) bool { return !manet.IsIPLoopback(a) }):
		add("listen", "Listen addresses", apitype.CheckWarn, "listening on loopback only: "+addrList(listen), "other machines cannot reach you; listen on 0.0.0.0 (the default) or an interface's address")
	default:
		add("listen", "Listen addresses", apitype.CheckOK, "listening on "+addrList(listen), "")
	}

	reachAdvice := ""
	status := apitype.CheckOK
	switch info.Reachability {
	case "private":
		status = apitype.CheckWarn
		if len(info.Relays) == 0 {
			reachAdvice = "contacts outside your network cannot dial you: start the daemon with --relay ADDR to be reached through a relay"
		}
	case "unknown":
		status = apitype.CheckInfo
		reachAdvice = "AutoNAT decides once a few peers have dialed back; look again later"
	}
	add("reachability", "Reachability", status, fmt.Sprintf("%s; public addresses: %s", info.Reachability, orNone(addrList(info.PublicAddrs))), reachAdvice)

	if len(info.Relays) == 0 {
		add("relays", "Relay reservations", apitype.CheckInfo, "no relays configured", "behind NAT, start the daemon with --relay /ip4/ADDR/tcp/PORT/p2p/RELAYID")
	}
	for _, rs := range info.Relays {
		switch {
		case rs.Reserved:
			add("relays", "Relay reservation", apitype.CheckOK, fmt.Sprintf("reserved on %s until %s", rs.Relay, rs.Expires.Local().Format(time.TimeOnly)), "")
		case !internet:
			add("relays", "Relay reservation", apitype.CheckInfo, fmt.Sprintf("none on %s: reservations are kept while signed in to internet", rs.Relay), "sign in with `peercollab signin internet`")
		default:
			add("relays", "Relay reservation", apitype.CheckFail, fmt.Sprintf("no reservation on %s: %s", rs.Relay, orNone(rs.LastError)), "check that the relay runs and that its address (with /p2p/ID) is right; the node keeps trying")
		}
	}

	if info.HolePunching {
		add("hole-punching", "Hole punching", apitype.CheckOK, "ready: relayed connections can become direct (DCUtR)", "")
	} else {
		add("hole-punching", "Hole punching", apitype.CheckInfo, "not ready: the node has no address that looks public, so relayed connections stay relayed", "a router with UPnP, or a port forward to --listen's port, gives it one")
	}

	switch has, servers := s.n.DHTStatus(); {
	case !has:
		add("dht", "DHT", apitype.CheckWarn, "no DHT: no relay or bootstrap peer is configured", "contacts whose addresses change are found through the DHT: start the daemon with --relay or --bootstrap")
	case servers == 0:
		add("dht", "DHT", apitype.CheckWarn, "the DHT's routing table is empty", "check that the relays or bootstrap peers run and are reachable")
	default:
		add("dht", "DHT", apitype.CheckOK, fmt.Sprintf("%d DHT servers in the routing table", servers), "")
	}

	publicCheck(s.n.PublicStatus(), internet, info.Reachability, add)

	synced, known := clockSynchronized()
	now := time.Now()
	switch {
	case !known:
		add("clock", "Clock", apitype.CheckInfo, "the daemon's clock reads "+now.UTC().Format(time.RFC3339)+"; whether it is synchronized is not known here", "cards and invitations carry times: keep the clock synchronized (NTP)")
	case synced:
		add("clock", "Clock", apitype.CheckOK, "synchronized; it reads "+now.UTC().Format(time.RFC3339), "")
	default:
		add("clock", "Clock", apitype.CheckWarn, "not synchronized; it reads "+now.UTC().Format(time.RFC3339), "cards and invitations carry times that peers check: enable NTP (timedatectl set-ntp true)")
	}

	switch p := s.policy().Policy; p {
	case apitype.PolicyNobody:
		add("invitations", "Invitation policy", apitype.CheckWarn, "nobody: every invitation is declined at once", "take them again with `peercollab invitations policy contacts` (or anyone)")
	case apitype.PolicyContacts:
		add("invitations", "Invitation policy", apitype.CheckOK, "contacts: invitations from trusted contacts, and peers they endorsed, only", "")
	default:
		add("invitations", "Invitation policy", apitype.CheckInfo, fmt.Sprintf("%s: anyone may invite you; each invitation is marked trusted or not", p), "take only your contacts' with `peercollab invitations policy contacts`")
	}
	return rep, nil
}

// publicCheck is the doctor's check of public mode.
func publicCheck(ps node.PublicStatus, internet bool, reachability string, add func(id, title, status, detail, advice string)) {
	const id, title = "public", "Public mode"
	switch {
	case !ps.Enabled:
		add(id, title, apitype.CheckInfo, "off: contacts outside your networks are reached through your own relays and DHT only", "with no relay of your own, start the daemon with --public (see README, Public mode: what the public network learns)")
	case !ps.Running && !internet:
		add(id, title, apitype.CheckInfo, "on, but it runs while signed in to internet only", "sign in with `peercollab signin internet`")
	case !ps.Running:
		add(id, title, apitype.CheckFail, "on, but not running: see the daemon's log (public mode)", "check public_bootstrap: in config.yaml")
	case ps.Servers == 0:
		add(id, title, apitype.CheckWarn, fmt.Sprintf("no public DHT server answers yet (since %s)", ps.Since.Local().Format(time.TimeOnly)), "check the internet connection and public_bootstrap: in config.yaml")
	case ps.RelayAddrs == 0 && reachability == "private":
		add(id, title, apitype.CheckWarn, fmt.Sprintf("%d public DHT servers known, but no relay found yet: contacts cannot dial you", ps.Servers), "the node keeps looking; a relay of your own (--relay) helps")
	case ps.AnnounceError != nil:
		add(id, title, apitype.CheckWarn, fmt.Sprintf("%d public DHT servers known, %d relay addresses; announcing to contacts failed: %v", ps.Servers, ps.RelayAddrs, ps.AnnounceError), "the node retries; contacts may not find you until it succeeds")
	default:
		when := "not yet"
		if !ps.Announced.IsZero() {
			when = fmt.Sprintf("%d provider records at %s", ps.Records, ps.Announced.Local().Format(time.TimeOnly))
		}
		add(id, title, apitype.CheckOK, fmt.Sprintf("%d public DHT servers known, %d relay addresses; announced to contacts: %s", ps.Servers, ps.RelayAddrs, when), "")
	}
}

func addrList(addrs []ma.Multiaddr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
