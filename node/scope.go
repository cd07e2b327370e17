package node

import (
	"context"
	"fmt"
	"strings"
)

// Scope is where a node is signed in (Windows' PEER_SIGNIN_FLAGS): NearMe
// runs People Near Me on the subnet; Internet serves contacts wherever they
// are (relays and the DHT come with it).
type Scope int

// Scopes, with Windows' values.
const (
	ScopeNone     Scope = 0
	ScopeNearMe   Scope = 1
	ScopeInternet Scope = 2
	ScopeAll      Scope = ScopeNearMe | ScopeInternet
)

var scopeNames = [...]string{"none", "nearme", "internet", "all"}

func (s Scope) String() string {
	if s < 0 || int(s) >= len(scopeNames) {
		return fmt.Sprintf("Scope(%d)", int(s))
	}
	return scopeNames[s]
}

// Has reports whether s includes every scope of o.
func (s Scope) Has(o Scope) bool { return s&o == o }

// ParseScope reads a scope name: none, nearme (or near), internet, all.
func ParseScope(name string) (Scope, error) {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(name))
	if n == "near" {
		n = "nearme"
	}
	for i, s := range scopeNames {
		if s == n {
			return Scope(i), nil
		}
	}
	return 0, fmt.Errorf("node: unknown scope %q (none, nearme, internet or all)", name)
}

// MarshalText implements encoding.TextMarshaler.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Scope) UnmarshalText(b []byte) error {
	v, err := ParseScope(string(b))
	*s = v
	return err
}

const (
	bucketSettings = "settings"
	keyScope       = "scope"
)

// ScopeEvent is the payload of "me.scope.changed".
type ScopeEvent struct {
	Scope Scope `json:"scope"`
}

// Scope returns where the node is signed in. It does not wait for a
// change of scope under way (services ask it while one is).
func (n *Node) Scope() Scope { return Scope(n.scope.Load()) }

// SignIn adds s to the node's scopes.
func (n *Node) SignIn(ctx context.Context, s Scope) error {
	n.scopeMu.Lock()
	defer n.scopeMu.Unlock()
	return n.setScopeLocked(ctx, n.Scope()|s, true)
}

// SignOut removes s from the node's scopes. Signing out of NearMe says bye
// to the people near; signing out of everything publishes Offline.
func (n *Node) SignOut(ctx context.Context, s Scope) error {
	n.scopeMu.Lock()
	defer n.scopeMu.Unlock()
	return n.setScopeLocked(ctx, n.Scope()&^s, true)
}

// setScopeLocked moves the node to scope s, starting and stopping what
// changes, and stores it when persist is set.
func (n *Node) setScopeLocked(ctx context.Context, s Scope, persist bool) error {
	old := n.Scope()
	if persist {
		if err := n.state.Put(bucketSettings, keyScope, s); err != nil {
			return err
		}
	}
	if old == s {
		return nil
	}
	n.scope.Store(int32(s))
	if s != ScopeNone {
		n.publish.SetSignedIn(true)
	}
	switch {
	case s.Has(ScopeNearMe) && !old.Has(ScopeNearMe):
		if err := n.near.Start(); err != nil {
			return err
		}
	case !s.Has(ScopeNearMe) && old.Has(ScopeNearMe):
		n.near.Stop(ctx)
	}
	switch {
	case s.Has(ScopeInternet) && !old.Has(ScopeInternet):
		n.reach.Start()
	case !s.Has(ScopeInternet) && old.Has(ScopeInternet):
		n.reach.Stop()
	}
	if s == ScopeNone {
		n.publish.SetSignedIn(false)
	}
	log.Infow("signed in", "scope", s)
	n.hub.Publish("me.scope.changed", ScopeEvent{s})
	return nil
}
