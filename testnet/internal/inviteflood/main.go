// Command inviteflood floods a peercollab node with invitations from many
// fresh keys over many source addresses, as an attacker whose peer IDs cost
// nothing would. It speaks the real invite protocol (protocols/invite).
//
// Each key is a libp2p host of its own, with its own Ed25519 key and
// contact card, that dials the target from one of the source addresses
// (keys are dealt to addresses in turn), sends its invitations one after
// another, and closes. The source address is set on the TCP dialer itself:
// go-libp2p dials from its listen address only when that address is the
// route's preferred source, which for many addresses on one interface holds
// for one of them at most.
//
//	inviteflood -target /ip4/10.200.0.1/tcp/4737/p2p/12D3... \
//	    -addrs 10.200.1.1,10.200.1.2 -keys 1000 -per-key 10 -data 16384
//
// It prints "progress N" after every -progress invitations answered or
// failed, and at the end one line "result JSON" with the counts of every
// outcome (see Result). It must run where the source addresses are
// assigned; the test in this directory runs it in a network namespace.
package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/protocols/invite"
)

// Result counts what happened, per invitation unless named per key.
type Result struct {
	Keys int `json:"keys"`
	// Connected keys got a connection; DialFailed keys did not (their
	// invitations count in NotSent).
	Connected  int `json:"connected"`
	DialFailed int `json:"dial_failed"`
	NotSent    int `json:"not_sent"`
	// Taken invitations were acknowledged without an answer: stored.
	Taken int `json:"taken"`
	// Refused invitations, by reason (RateLimited, InboxFull, ...).
	Refused map[string]int `json:"refused"`
	// NotOK acknowledgements, by status.
	NotOK map[string]int `json:"not_ok"`
	// StreamErrors are invitations whose stream failed.
	StreamErrors int `json:"stream_errors"`
	// DialErrors and StreamErrorTexts are a few errors of each kind, for
	// the report.
	DialErrors       []string `json:"dial_errors,omitempty"`
	StreamErrorTexts []string `json:"stream_error_texts,omitempty"`
	Seconds          float64  `json:"seconds"`
}

const maxErrors = 5

type tally struct {
	mu       sync.Mutex
	r        Result
	answered int
	every    int
}

func (t *tally) add(f func(r *Result)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.r)
}

func (t *tally) invitation(ack invite.Ack, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case err != nil:
		t.r.StreamErrors++
		if len(t.r.StreamErrorTexts) < maxErrors {
			t.r.StreamErrorTexts = append(t.r.StreamErrorTexts, err.Error())
		}
	case ack.Status != invite.AckOK:
		t.r.NotOK[ack.Status.String()]++
	case ack.Response == nil:
		t.r.Taken++
	default:
		t.r.Refused[ack.Response.Action.String()+": "+ack.Response.Reason.String()]++
	}
	t.answered++
	if t.every > 0 && t.answered%t.every == 0 {
		fmt.Printf("progress %d\n", t.answered)
	}
}

type options struct {
	target      peer.AddrInfo
	addrs       []net.IP
	keys        int
	perKey      int
	data        int
	concurrency int
	app         string
	expiry      time.Duration
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inviteflood:", err)
		os.Exit(1)
	}
}

func run() error {
	var o options
	target := flag.String("target", "", "the victim's multiaddr, ending in /p2p/ID")
	addrs := flag.String("addrs", "", "comma-separated source IP addresses")
	flag.IntVar(&o.keys, "keys", 1000, "fresh keys (peer IDs) in all")
	flag.IntVar(&o.perKey, "per-key", 10, "invitations each key sends")
	flag.IntVar(&o.data, "data", invite.MaxData, "bytes of data in each invitation")
	flag.IntVar(&o.concurrency, "concurrency", 4, "keys at work at once per source address")
	flag.StringVar(&o.app, "app", "chat", "application ID to invite to")
	flag.DurationVar(&o.expiry, "expiry", invite.MaxExpiry, "expiry each invitation asks for")
	progress := flag.Int("progress", 1000, "print progress after this many invitations")
	flag.Parse()
	a, err := ma.NewMultiaddr(*target)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	o.target = *ai
	for s := range strings.SplitSeq(*addrs, ",") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return fmt.Errorf("-addrs: %q is not an IP address", s)
		}
		o.addrs = append(o.addrs, ip)
	}
	if o.keys <= 0 || o.perKey <= 0 || o.concurrency <= 0 || o.data < 0 || o.data > invite.MaxData {
		return errors.New("-keys, -per-key and -concurrency must be positive, -data at most 16 KiB")
	}
	t := &tally{r: Result{Keys: o.keys, Refused: map[string]int{}, NotOK: map[string]int{}}, every: *progress}
	start := time.Now()
	flood(o, t)
	t.r.Seconds = time.Since(start).Seconds()
	out, _ := json.Marshal(t.r)
	fmt.Printf("result %s\n", out)
	return nil
}

// flood runs every key, o.concurrency at a time per source address.
func flood(o options, t *tally) {
	data := make([]byte, o.data)
	rand.Read(data)
	var wg sync.WaitGroup
	for i, src := range o.addrs {
		// Keys i, i+n, i+2n, ... come from address i.
		var mine []int
		for k := i; k < o.keys; k += len(o.addrs) {
			mine = append(mine, k)
		}
		next := make(chan int, len(mine))
		for _, k := range mine {
			next <- k
		}
		close(next)
		for range min(o.concurrency, len(mine)) {
			wg.Go(func() {
				for k := range next {
					attack(o, src, k, data, t)
				}
			})
		}
	}
	wg.Wait()
}

// attack is one key's work: a host of its own, dialling from src, sends
// its invitations one after another.
func attack(o options, src net.IP, k int, data []byte, t *tally) {
	fail := func(err error) {
		t.add(func(r *Result) {
			r.DialFailed++
			r.NotSent += o.perKey
			if len(r.DialErrors) < maxErrors {
				r.DialErrors = append(r.DialErrors, fmt.Sprintf("key %d: %v", k, err))
			}
		})
	}
	id, err := contacts.GenerateIdentity()
	if err != nil {
		fail(err)
		return
	}
	now := time.Now()
	cert, err := contacts.NewCertificate(id, contacts.Profile{DisplayName: fmt.Sprintf("flood-%d", k)}, now)
	if err != nil {
		fail(err)
		return
	}
	card, err := contacts.NewCard(id, []*x509.Certificate{cert}, nil, now)
	if err != nil {
		fail(err)
		return
	}
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: invite.Timeout}
	h, err := libp2p.New(
		libp2p.Identity(id.PrivKey()),
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport, tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) { return dialer, nil })),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		fail(err)
		return
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), invite.Timeout)
	err = h.Connect(ctx, o.target)
	cancel()
	if err != nil {
		fail(err)
		return
	}
	t.add(func(r *Result) { r.Connected++ })
	pem := card.Marshal()
	for range o.perKey {
		now := time.Now()
		inv := invite.Invitation{ID: invite.NewID(), AppID: o.app, Message: "flood", Data: data,
			Sent: now, Expires: now.Add(o.expiry), InviterCard: pem}
		ctx, cancel := context.WithTimeout(context.Background(), invite.Timeout)
		ack, err := invite.Invite(ctx, h, o.target.ID, inv)
		cancel()
		t.invitation(ack, err)
	}
}
