package testnet

import (
	"fmt"
	"regexp"
	"strings"
)

// templateRE finds {{name.field}}; a "{{" that does not start one is an
// error (see expand).
var templateRE = regexp.MustCompile(`\{\{\s*([a-z][a-z0-9_-]*)\.([a-z]+)\s*\}\}`)

// expand replaces every {{name.field}} in s with lookup(name, field). Text
// with a "{{" that is not a template is an error, so that a typo never
// reaches a command unnoticed.
func expand(s string, lookup func(name, field string) (string, error)) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	var out strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			out.WriteString(rest)
			return out.String(), nil
		}
		out.WriteString(rest[:i])
		loc := templateRE.FindStringSubmatchIndex(rest[i:])
		if loc == nil || loc[0] != 0 {
			end := strings.Index(rest[i:], "}}")
			bad := rest[i:]
			if end >= 0 {
				bad = rest[i : i+end+2]
			}
			return "", fmt.Errorf("%q is not a template; write {{NODE.FIELD}} such as {{alice.id}}", bad)
		}
		m := rest[i:]
		v, err := lookup(m[loc[2]:loc[3]], m[loc[4]:loc[5]])
		if err != nil {
			return "", err
		}
		out.WriteString(v)
		rest = m[loc[1]:]
	}
}
