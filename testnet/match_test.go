package testnet

import "testing"

func TestConditions(t *testing.T) {
	doc := []byte(`{"peer_id":"P1","addrs":["/ip4/1.2.3.4/tcp/1","/ip4/5.6.7.8/tcp/1"],"n":3,"ok":true,"list":[{"id":"a","v":1},{"id":"b","v":2}],"s":"hello world","o":{"x":[1,2]}}`)
	tests := []struct {
		c    Condition
		want bool
	}{
		{Condition{Path: "peer_id", Op: OpEquals, Value: "P1"}, true},
		{Condition{Path: "peer_id", Op: OpEquals, Value: "P2"}, false},
		{Condition{Path: "n", Op: OpEquals, Value: 3.0}, true},
		{Condition{Path: "n", Op: OpEquals, Value: "3"}, true},
		{Condition{Path: "ok", Op: OpEquals, Value: true}, true},
		{Condition{Path: "ok", Op: OpEquals, Value: "true"}, true},
		{Condition{Path: "o", Op: OpEquals, Value: map[string]any{"x": []any{1.0, 2.0}}}, true},
		{Condition{Path: "missing", Op: OpEquals, Value: nil}, false},
		{Condition{Path: "addrs", Op: OpContains, Value: "/ip4/5.6.7.8/tcp/1"}, true},
		{Condition{Path: "addrs", Op: OpContains, Value: "/ip4/5.6.7.8"}, false},
		{Condition{Path: "s", Op: OpContains, Value: "lo wo"}, true},
		{Condition{Path: "list.#.id", Op: OpContains, Value: "b"}, true},
		{Condition{Path: `list.#(id=="b").v`, Op: OpEquals, Value: 2.0}, true},
		{Condition{Path: "addrs", Op: OpCount, Value: 2.0}, true},
		{Condition{Path: "addrs", Op: OpCount, Value: 3.0}, false},
		{Condition{Path: "s", Op: OpCount, Value: 1.0}, false},
		{Condition{Path: "n", Op: OpAtLeast, Value: 3.0}, true},
		{Condition{Path: "n", Op: OpAtLeast, Value: 4.0}, false},
		{Condition{Path: "n", Op: OpAtMost, Value: 3.0}, true},
		{Condition{Path: "n", Op: OpAtMost, Value: 2.0}, false},
		{Condition{Path: "addrs", Op: OpAtMost, Value: 2.0}, true},
		{Condition{Path: "addrs", Op: OpAtLeast, Value: 3.0}, false},
		{Condition{Path: "s", Op: OpAtLeast, Value: 0.0}, false},
		{Condition{Path: "missing", Op: OpAtMost, Value: 1.0}, false},
		{Condition{Path: "#", Op: OpExists, Value: false}, true},
		{Condition{Path: "list.1", Op: OpExists, Value: true}, true},
		{Condition{Path: "list.2", Op: OpExists, Value: true}, false},
	}
	for _, tt := range tests {
		if got, obs := tt.c.check(doc); got != tt.want {
			t.Errorf("%s = %v (observed %s), want %v", tt.c.describe(), got, obs, tt.want)
		}
	}
}

func TestJSONDoc(t *testing.T) {
	lines := []byte("{\"seq\":1,\"relayed\":true}\n{\"seq\":2,\"relayed\":false}\n")
	doc, isLines, err := jsonDoc(lines)
	if err != nil || !isLines {
		t.Fatalf("jsonDoc(lines) = %v, %v", isLines, err)
	}
	if mm := checkAll(doc, true, []Condition{{Path: "..#", Op: OpEquals, Value: 2.0}, {Path: "..1.relayed", Op: OpEquals, Value: false}}); mm != nil {
		t.Errorf("JSON Lines: %+v", mm)
	}
	if mm := checkAll(doc, true, []Condition{{Path: "#", Op: OpEquals, Value: 2.0}}); mm == nil {
		t.Error("a path without .. on JSON Lines matched")
	}
	for _, bad := range []string{"", "peer ID: x", "{\"a\":1}\nnot json"} {
		if _, _, err := jsonDoc([]byte(bad)); err == nil {
			t.Errorf("jsonDoc(%q) succeeded", bad)
		}
	}
}
