package localapi

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/session"
)

// fill sets every exported field of the value v points to, through
// structs, pointers, slices and maps, to something that is not zero, so
// that every field shows in the JSON.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC)))
		return
	case reflect.TypeFor[ma.Multiaddr]():
		v.Set(reflect.ValueOf(ma.StringCast("/ip4/192.0.2.1/tcp/4737")))
		return
	case reflect.TypeFor[peer.ID]():
		v.Set(reflect.ValueOf(peer.ID("\x00\x04peer")))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0))
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i))
		}
	case reflect.Map:
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k)
		fill(t, e)
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Interface:
	default:
		t.Fatalf("fill: no value for %s", v.Type())
	}
}

func filled[T any](t *testing.T) T {
	t.Helper()
	var v T
	fill(t, reflect.ValueOf(&v).Elem())
	return v
}

// asJSON is v as generic JSON.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T does not encode: %v", v, err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestViewsKeepJSON checks that each view of the contract encodes as the
// node's type it shows did, every field set, less the fields listed as
// internal: a field the node adds to one of these types fails this test
// until the contract shows it or the test lists it as internal.
func TestViewsKeepJSON(t *testing.T) {
	for _, tc := range []struct {
		name     string
		view     func(*testing.T) (node, contract any)
		internal []string // top-level JSON fields the contract leaves out
	}{
		{"Info", pair(infoView), nil},
		{"Contact", pair(func(c contacts.Contact) any { return contactView(&c) }), nil},
		{"PingResult", pair(pingResultView), nil},
		{"Person", pair(personView), nil},
		{"RegisteredApp", pair(registeredAppView), nil},
		{"PeerEndpoint", pair(peerEndpointView), nil},
		{"Invitation", pair(invitationView), []string{"unacked", "card"}},
		{"Tally", pair(tallyView), nil},
		{"Session", pair(sessionView), nil},
		{"Message", pair(messageView), nil},
		{"HostRequest", pair(hostRequestView), nil},
		{"ContactEvent", event[node.ContactEvent], nil},
		{"ScopeEvent", event[node.ScopeEvent], nil},
		{"ConnectionEvent", event[node.ConnectionEvent], nil},
		{"MyPresenceEvent", event[publish.PresenceEvent], nil},
		{"MyNameEvent", event[publish.NameEvent], nil},
		{"MyApplicationEvent", event[publish.ApplicationEvent], nil},
		{"MyObjectEvent", event[publish.ObjectEvent], nil},
		{"NearEvent", event[near.ChangeEvent], nil},
		{"PeerNameEvent", event[watch.NameEvent], nil},
		{"PeerPresenceEvent", event[watch.PresenceEvent], nil},
		{"PeerApplicationEvent", event[watch.ApplicationEvent], nil},
		{"PeerObjectEvent", event[watch.ObjectEvent], nil},
		{"WatchListEvent", event[watch.WatchListEvent], nil},
		{"RequestDoneEvent", event[watch.RequestDoneEvent], nil},
		{"InvitationEvent", event[invitations.Record], []string{"unacked", "card"}},
		{"SessionEvent", event[sessions.View], nil},
		{"MessageEvent", event[sessions.Message], nil},
		{"HostRequestEvent", event[sessions.HostRequest], nil},
		{"LostEvent", event[session.Gap], nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, c := tc.view(t)
			want, ok := asJSON(t, n).(map[string]any)
			if !ok {
				t.Fatalf("%T does not encode as an object", n)
			}
			for _, f := range tc.internal {
				if _, ok := want[f]; !ok {
					t.Errorf("%T has no field %q any more; drop it from the internal ones", n, f)
				}
				delete(want, f)
			}
			if got := asJSON(t, c); !reflect.DeepEqual(got, want) {
				t.Errorf("%T encodes as\n%v\nbut %T, which it shows, as\n%v", c, got, n, want)
			}
		})
	}
}

// pair makes a view case of a converter.
func pair[N, C any](convert func(N) C) func(*testing.T) (any, any) {
	return func(t *testing.T) (any, any) {
		n := filled[N](t)
		return n, convert(n)
	}
}

// event makes a view case of an event payload.
func event[N any](t *testing.T) (any, any) {
	n := filled[N](t)
	c, ok := eventData(n)
	if !ok {
		t.Fatalf("event payload %T has no contract type", n)
	}
	return n, c
}
