package near

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// watchConns probes a person at once when the last connection to them
// closes, so that a node whose process ended disappears within moments.
func (s *Service) watchConns() {
	for e := range s.connSub.Out() {
		ev := e.(event.EvtPeerConnectednessChanged)
		if ev.Connectedness == network.Connected {
			continue
		}
		if _, near := s.Get(ev.Peer); near {
			s.goProbe(ev.Peer)
		}
	}
}

func (s *Service) probeLoop() {
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var probe []peer.ID
		for p := range s.people {
			probe = append(probe, p)
		}
		for p, since := range s.lost {
			if time.Since(since) > s.cfg.ForgetAfter {
				delete(s.lost, p)
				continue
			}
			probe = append(probe, p)
		}
		s.mu.Unlock()
		for _, p := range probe {
			s.goProbe(p)
		}
	}
}

// goProbe checks in the background that p is still there and still in
// People Near Me, by introducing this node again (which also refreshes p's
// entry). A person that answers with a bye is removed at once; one that
// cannot be reached when its connections have closed or its TCP ports
// refuse connections, or that has not answered for LostAfter, is removed as
// lost; a lost one that answers again
// comes back.
func (s *Service) goProbe(p peer.ID) {
	s.goIntroduce(p, func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := s.exchange(pctx, p, nil)
		cancel()
		if err == nil || errors.Is(err, errSignedOut) {
			return
		}
		s.mu.Lock()
		person, near := s.people[p]
		var since time.Duration
		if near {
			since = time.Since(person.LastSeen)
		}
		s.mu.Unlock()
		if near && (since > s.cfg.LostAfter || s.cfg.Host.Network().Connectedness(p) != network.Connected || s.portsClosed(ctx, p)) {
			s.remove(p, true)
		}
	})
}

// portsClosed reports whether p's process is gone although a connection to
// it still looks open: a QUIC connection does not hear that the UDP port
// at the other end closed, and stays until its idle timeout. p's TCP ports
// on the addresses it is connected from tell at once: every one refuses a
// connection. Any other answer (accepted, no answer, no TCP address) is not
// proof, and leaves p to the LostAfter rule.
func (s *Service) portsClosed(ctx context.Context, p peer.ID) bool {
	ips := map[string]bool{}
	for _, c := range s.cfg.Host.Network().ConnsToPeer(p) {
		if ip, err := manet.ToIP(c.RemoteMultiaddr()); err == nil {
			ips[ip.String()] = true
		}
	}
	refused := 0
	for _, a := range s.cfg.Host.Peerstore().Addrs(p) {
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			continue
		}
		na, err := manet.ToNetAddr(a)
		if err != nil {
			continue // a circuit, DNS or WebSocket address
		}
		tcp, ok := na.(*net.TCPAddr)
		if !ok || !ips[tcp.IP.String()] {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, probeTimeout)
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", tcp.String())
		cancel()
		if err == nil {
			c.Close()
			return false
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return false
		}
		refused++
	}
	return refused > 0
}
