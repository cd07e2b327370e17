package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
)

// Metrics. With Config.MetricsAddr set, the node keeps a Prometheus
// registry of its own (so that several nodes in one process do not share
// one) with go-libp2p's metrics (swarm, resource manager, identify,
// AutoNAT, relay, hole punching, ...), the Go runtime's, and the node's:
// gauges read at each scrape (people near, contacts, invitations by
// direction and state, sessions by role and state, relay reservations) and
// a counter of the node's events by type (session messages, invitation
// changes, people near coming and going, ...). It serves them in the text
// format at http://MetricsAddr/metrics.

// metricsPath is where the metrics are served.
const metricsPath = "/metrics"

// metricsNamespace prefixes the node's own metrics.
const metricsNamespace = "peercollab"

var (
	descNear     = prometheus.NewDesc(metricsNamespace+"_people_near", "People near: peercollab nodes listed on this node's subnets.", nil, nil)
	descContacts = prometheus.NewDesc(metricsNamespace+"_contacts", "Contacts in the contact list (me excluded).", nil, nil)
	descInvites  = prometheus.NewDesc(metricsNamespace+"_invitations", "Invitations kept, by direction (sent, received) and state.", []string{"direction", "state"}, nil)
	descSessions = prometheus.NewDesc(metricsNamespace+"_sessions", "Sessions this node is in, by role (host, member) and state.", []string{"role", "state"}, nil)
	descRelays   = prometheus.NewDesc(metricsNamespace+"_relay_reservations", "Reservations held on the configured relays.", nil, nil)
	descScope    = prometheus.NewDesc(metricsNamespace+"_signed_in", "Whether the node is signed in to a scope (nearme, internet).", []string{"scope"}, nil)
)

// collector is the node's gauges, read at each scrape.
type collector struct{ n *Node }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNear, descContacts, descInvites, descSessions, descRelays, descScope} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	people, _ := n.near.List()
	ch <- prometheus.MustNewConstMetric(descNear, prometheus.GaugeValue, float64(len(people)))
	if list, err := n.store.List(); err == nil {
		ch <- prometheus.MustNewConstMetric(descContacts, prometheus.GaugeValue, float64(len(list)))
	}
	type key struct{ a, b string }
	invites := map[key]int{}
	for _, r := range n.invites.List(invitations.Filter{}) {
		invites[key{string(r.Direction), string(r.State)}]++
	}
	for k, v := range invites {
		ch <- prometheus.MustNewConstMetric(descInvites, prometheus.GaugeValue, float64(v), k.a, k.b)
	}
	sessions := map[key]int{}
	for _, v := range n.sessions.List() {
		role := "member"
		if v.Hosting {
			role = "host"
		}
		sessions[key{role, v.State.String()}]++
	}
	for k, v := range sessions {
		ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(v), k.a, k.b)
	}
	reserved := 0
	for _, r := range n.reach.Relays() {
		if r.Reserved {
			reserved++
		}
	}
	ch <- prometheus.MustNewConstMetric(descRelays, prometheus.GaugeValue, float64(reserved))
	scope := n.Scope()
	for _, s := range []Scope{ScopeNearMe, ScopeInternet} {
		v := 0.0
		if scope.Has(s) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descScope, prometheus.GaugeValue, v, s.String())
	}
}

// newRegistry is the node's registry, with the Go runtime's and the
// process's collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startMetrics registers the node's own metrics, counts its events, and
// serves the registry on MetricsAddr until the node closes.
func (n *Node) startMetrics() error {
	if n.metrics == nil {
		return nil
	}
	eventsTotal := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNamespace, Name: "events_total",
		Help: "The node's events, by type: session.message counts messages delivered, invitation.changed every change of an invitation, near.changed people near coming, changing and going, ..."}, []string{"type"})
	if err := n.metrics.Register(collector{n}); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := n.metrics.Register(eventsTotal); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	n.wg.Go(func() { countEvents(n.ctx, n.hub, n.cfg.EventBuffer, eventsTotal) })

	l, err := net.Listen("tcp", n.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", n.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{Registry: n.metrics}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	n.metricsAddr = l.Addr().String()
	n.wg.Go(func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("metrics server stopped", "error", err)
		}
	})
	n.wg.Go(func() {
		<-n.ctx.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	log.Infow("metrics", "url", "http://"+n.metricsAddr+metricsPath)
	return nil
}

// countEvents counts the node's events by type until ctx ends. A
// subscription cut off for falling behind is replaced (the events it
// missed go uncounted).
func countEvents(ctx context.Context, hub *events.Hub, buffer int, total *prometheus.CounterVec) {
	for {
		sub := hub.Subscribe(buffer)
		err := countFrom(ctx, sub, total)
		sub.Close()
		if !errors.Is(err, events.ErrOverflow) {
			return // the node is closing
		}
	}
}

func countFrom(ctx context.Context, sub *events.Sub, total *prometheus.CounterVec) error {
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		total.WithLabelValues(ev.Type).Inc()
	}
}

// MetricsAddr is the address the metrics are served on (with the port
// chosen when MetricsAddr asked for port 0), or "" when they are off.
func (n *Node) MetricsAddr() string { return n.metricsAddr }
