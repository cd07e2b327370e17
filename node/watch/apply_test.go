package watch

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/pb"
)

func TestApplyChange(t *testing.T) {
	snap := func() *endpoint.Snapshot {
		return &endpoint.Snapshot{Name: "desk", Presence: endpoint.Presence{Status: endpoint.Online},
			Applications: []endpoint.Application{{ID: "b", Description: "B"}},
			Objects:      []endpoint.Object{{ID: "m", Data: []byte{1}}}}
	}
	cases := []struct {
		name    string
		change  *pb.Change
		wantEvt string // type and change
		check   func(*endpoint.Snapshot) bool
		wantErr bool
	}{
		{"name", &pb.Change{Change: &pb.Change_EndpointName{EndpointName: "lap"}}, EvtName + " ",
			func(s *endpoint.Snapshot) bool { return s.Name == "lap" }, false},
		{"presence", &pb.Change{Change: &pb.Change_Presence{Presence: &pb.Presence{Status: pb.Presence_BUSY, Text: "x"}}}, EvtPresence + " ",
			func(s *endpoint.Snapshot) bool {
				return s.Presence == endpoint.Presence{Status: endpoint.Busy, Text: "x"}
			}, false},
		{"app added before", &pb.Change{Change: &pb.Change_ApplicationSet{ApplicationSet: &pb.Application{Id: "a"}}}, EvtApplication + " added",
			func(s *endpoint.Snapshot) bool { return len(s.Applications) == 2 && s.Applications[0].ID == "a" }, false},
		{"app updated", &pb.Change{Change: &pb.Change_ApplicationSet{ApplicationSet: &pb.Application{Id: "b", Description: "new"}}}, EvtApplication + " updated",
			func(s *endpoint.Snapshot) bool {
				return len(s.Applications) == 1 && s.Applications[0].Description == "new"
			}, false},
		{"app removed", &pb.Change{Change: &pb.Change_ApplicationRemoved{ApplicationRemoved: "b"}}, EvtApplication + " deleted",
			func(s *endpoint.Snapshot) bool { return len(s.Applications) == 0 }, false},
		{"object added after", &pb.Change{Change: &pb.Change_ObjectSet{ObjectSet: &pb.Object{Id: "z", Data: []byte{2}}}}, EvtObject + " added",
			func(s *endpoint.Snapshot) bool { return len(s.Objects) == 2 && s.Objects[1].ID == "z" }, false},
		{"object removed", &pb.Change{Change: &pb.Change_ObjectRemoved{ObjectRemoved: "m"}}, EvtObject + " deleted",
			func(s *endpoint.Snapshot) bool { return len(s.Objects) == 0 }, false},
		{"empty object refused", &pb.Change{Change: &pb.Change_ObjectSet{ObjectSet: &pb.Object{Id: "z"}}}, "", nil, true},
		{"bad presence refused", &pb.Change{Change: &pb.Change_Presence{Presence: &pb.Presence{Status: 42}}}, "", nil, true},
		{"no change refused", &pb.Change{}, "", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := snap()
			ev, err := applyChange("p", s, tc.change)
			if tc.wantErr {
				if err == nil {
					t.Fatal("applied an invalid change")
				}
				if !reflect.DeepEqual(s, snap()) {
					t.Fatal("an invalid change altered the snapshot")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.Type + " " + changeOf(ev); got != tc.wantEvt {
				t.Errorf("event %q, want %q", got, tc.wantEvt)
			}
			if !tc.check(s) {
				t.Errorf("snapshot after: %+v", s)
			}
		})
	}
}

func changeOf(ev Event) string {
	switch d := ev.Data.(type) {
	case ApplicationEvent:
		return d.Change.String()
	case ObjectEvent:
		return d.Change.String()
	}
	return ""
}

func TestDiff(t *testing.T) {
	old := &endpoint.Snapshot{Name: "a", Presence: endpoint.Presence{Status: endpoint.Online},
		Applications: []endpoint.Application{{ID: "keep"}, {ID: "gone"}, {ID: "upd", Description: "1"}},
		Objects:      []endpoint.Object{{ID: "o1", Data: []byte{1}}}}
	new := &endpoint.Snapshot{Name: "b", Presence: endpoint.Presence{Status: endpoint.Online},
		Applications: []endpoint.Application{{ID: "keep"}, {ID: "new"}, {ID: "upd", Description: "2"}},
		Objects:      []endpoint.Object{{ID: "o1", Data: []byte{1}}, {ID: "o2", Data: []byte{2}}}}
	var got []string
	for _, ev := range diff("p", old, new) {
		var id string
		switch d := ev.Data.(type) {
		case ApplicationEvent:
			id = d.Application.ID
		case ObjectEvent:
			id = d.Object.ID
		}
		got = append(got, fmt.Sprintf("%s %s %s", ev.Type, changeOf(ev), id))
	}
	want := []string{
		EvtName + "  ",
		EvtApplication + " deleted gone",
		EvtApplication + " added new",
		EvtApplication + " updated upd",
		EvtObject + " added o2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("diff:\n got %q\nwant %q", got, want)
	}
	if evs := diff("p", new, new); len(evs) != 0 {
		t.Fatalf("diff of equal snapshots: %v", evs)
	}
}
