package prefix

import (
	"maps"
	"testing"
)

func TestFind(t *testing.T) {
	items := map[string]int{"abcd1234": 1, "abcd5678": 2, "ffff0000": 3}
	for _, tc := range []struct {
		p    string
		want int
		n    int
	}{
		{"ffff", 3, 1},
		{"abcd1", 1, 1},
		{"abcd", 0, 2},
		{"abc", 0, 0}, // too short
		{"9999", 0, 0},
		{"", 0, 0},
	} {
		got, n := Find(maps.All(items), tc.p)
		if n != tc.n || (n == 1 && got != tc.want) {
			t.Errorf("Find(%q) = %d, %d; want %d, %d", tc.p, got, n, tc.want, tc.n)
		}
	}
}
