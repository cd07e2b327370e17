package testnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Helpers that read YAML nodes and say, with the line, what is wrong.

// pairsOf returns the key-value pairs of a mapping node.
func pairsOf(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

func errAt(n ast.Node, format string, args ...any) error {
	line := 0
	if n != nil && n.GetToken() != nil {
		line = n.GetToken().Position.Line
	}
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

func lineOf(n ast.Node) int {
	if n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// fields calls fn for each key of the mapping n, in order. A key not in
// known is an error that lists the known ones.
func fields(n ast.Node, what string, known []string, fn func(key string, v ast.Node) error) error {
	pairs, ok := pairsOf(n)
	if !ok {
		return errAt(n, "%s must be a mapping (key: value lines)", what)
	}
	for _, kv := range pairs {
		k, ok := kv.Key.(*ast.StringNode)
		if !ok {
			return errAt(kv.Key, "%s: keys must be plain words", what)
		}
		if !slices.Contains(known, k.Value) {
			return errAt(kv.Key, "unknown key %q in %s; known keys: %s", k.Value, what, strings.Join(known, ", "))
		}
		if err := fn(k.Value, kv.Value); err != nil {
			return err
		}
	}
	return nil
}

func checkPlain(n ast.Node) error {
	switch n.(type) {
	case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
		return errAt(n, "YAML anchors, aliases and tags are not supported")
	}
	return nil
}

// str reads a scalar as text.
func str(n ast.Node, what string) (string, error) {
	if err := checkPlain(n); err != nil {
		return "", err
	}
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, nil
	case *ast.LiteralNode:
		return v.Value.Value, nil
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return n.GetToken().Value, nil
	}
	return "", errAt(n, "%s must be a string", what)
}

// strs reads a sequence of scalars, or one scalar, as a list of text.
func strs(n ast.Node, what string) ([]string, error) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		s, err := str(n, what)
		if err != nil {
			return nil, errAt(n, "%s must be a string or a list of strings", what)
		}
		return []string{s}, nil
	}
	out := make([]string, 0, len(seq.Values))
	for _, v := range seq.Values {
		s, err := str(v, what)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func seqOf(n ast.Node, what string) ([]ast.Node, error) {
	if err := checkPlain(n); err != nil {
		return nil, err
	}
	switch v := n.(type) {
	case *ast.SequenceNode:
		return v.Values, nil
	case *ast.NullNode:
		return nil, nil
	}
	return nil, errAt(n, "%s must be a list (lines starting with -)", what)
}

func duration(n ast.Node, what string) (time.Duration, error) {
	s, err := str(n, what)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errAt(n, "%s must be a positive duration such as 500ms, 5s or 2m, not %q", what, s)
	}
	return d, nil
}

func boolean(n ast.Node, what string) (bool, error) {
	b, ok := n.(*ast.BoolNode)
	if !ok {
		return false, errAt(n, "%s must be true or false", what)
	}
	return b.Value, nil
}

func integer(n ast.Node, what string) (int, error) {
	s, err := str(n, what)
	if err != nil {
		return 0, err
	}
	i, err := strconv.Atoi(s)
	if _, ok := n.(*ast.IntegerNode); !ok || err != nil {
		return 0, errAt(n, "%s must be a whole number, not %q", what, s)
	}
	return i, nil
}

// jsonValue decodes a YAML value into what encoding/json would decode the
// same JSON into (float64 numbers, map[string]any objects).
func jsonValue(n ast.Node, what string) (any, error) {
	if err := checkPlain(n); err != nil {
		return nil, err
	}
	var v any
	if err := yaml.NodeToValue(n, &v); err != nil {
		return nil, errAt(n, "%s: %v", what, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errAt(n, "%s cannot be written as JSON: %v", what, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, errAt(n, "%s cannot be read as JSON: %v", what, err)
	}
	return out, nil
}

// splitWords splits a command line into words as a POSIX shell would for
// quotes and backslashes.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("the command ends in a backslash")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("a single quote is not closed")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("a double quote is not closed")
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
