package contacts

import (
	"fmt"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Pick finds the one of all that a user means by query: the one whose peer
// ID is query or whose name is query (case-insensitive), else the only one
// whose peer ID or name query begins. key gives an item's peer ID and name
// (an empty name never matches). found is false when nothing matches;
// several matches are ErrAmbiguous, naming them.
func Pick[T any](all []T, query string, key func(T) (peer.ID, string)) (item T, found bool, err error) {
	q := strings.ToLower(query)
	var exact, prefix []T
	for _, it := range all {
		p, n := key(it)
		id, name := p.String(), strings.ToLower(n)
		switch {
		case id == query || (name != "" && name == q):
			exact = append(exact, it)
		case query != "" && (strings.HasPrefix(id, query) || (name != "" && strings.HasPrefix(name, q))):
			prefix = append(prefix, it)
		}
	}
	for _, set := range [][]T{exact, prefix} {
		switch len(set) {
		case 0:
			continue
		case 1:
			return set[0], true, nil
		default:
			names := make([]string, len(set))
			for i, it := range set {
				p, n := key(it)
				names[i] = fmt.Sprintf("%s (%s)", n, p)
			}
			return item, false, fmt.Errorf("%w: %q matches %s", ErrAmbiguous, query, strings.Join(names, ", "))
		}
	}
	return item, false, nil
}
