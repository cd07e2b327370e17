// Package prefix finds the one item whose ID starts with what a user typed.
package prefix

import (
	"iter"
	"strings"
)

// MinLen is the shortest prefix that is looked up; a shorter one must be a
// whole ID.
const MinLen = 4

// Find returns the item whose ID starts with p and how many did: 0 (none,
// or p shorter than MinLen), 1 (found), or 2 (more than one; the count
// stops there).
func Find[V any](items iter.Seq2[string, V], p string) (found V, n int) {
	if len(p) < MinLen {
		return found, 0
	}
	for id, v := range items {
		if strings.HasPrefix(id, p) {
			if n++; n > 1 {
				return found, n
			}
			found = v
		}
	}
	return found, n
}
