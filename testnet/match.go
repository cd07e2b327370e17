package testnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// mismatch says how an expectation failed: what it wanted and what it saw.
type mismatch struct {
	Expected, Observed string
}

// jsonDoc checks that a command's output is JSON: one document, or JSON
// Lines (one value a line, as streaming commands print), which gjson reads
// with paths that start with "..". lines reports the second case.
func jsonDoc(out []byte) (doc []byte, lines bool, err error) {
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return nil, false, errors.New("the output is empty, not JSON")
	}
	if gjson.ValidBytes(out) {
		return out, false, nil
	}
	for l := range bytes.SplitSeq(out, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && !gjson.ValidBytes(l) {
			return nil, false, errors.New("the output is not JSON")
		}
	}
	return out, true, nil
}

// describe says what a condition wants, for a report.
func (c Condition) describe() string {
	return fmt.Sprintf("json %q %s %s", c.Path, c.Op, short(jsonText(c.Value), 200))
}

// check reports whether doc satisfies the condition, and what it saw at
// the path. c's path and string value must be expanded already.
func (c Condition) check(doc []byte) (ok bool, observed string) {
	r := gjson.GetBytes(doc, c.Path)
	observed = "nothing at that path"
	if r.Exists() {
		observed = short(compact(r.Raw), 300)
	}
	switch c.Op {
	case OpExists:
		return r.Exists() == c.Value.(bool), observed
	case OpCount:
		if !r.IsArray() {
			if r.Exists() {
				observed = "not an array: " + observed
			}
			return false, observed
		}
		n := len(r.Array())
		return float64(n) == c.Value.(float64), fmt.Sprintf("%d elements: %s", n, observed)
	case OpAtLeast, OpAtMost:
		n := r.Float()
		switch {
		case r.IsArray():
			n = float64(len(r.Array()))
			observed = fmt.Sprintf("%d elements: %s", len(r.Array()), observed)
		case r.Type != gjson.Number:
			return false, "not a number or an array: " + observed
		}
		if c.Op == OpAtLeast {
			return n >= c.Value.(float64), observed
		}
		return n <= c.Value.(float64), observed
	case OpEquals:
		return equalValue(r, c.Value), observed
	case OpContains:
		if r.IsArray() {
			for _, e := range r.Array() {
				if equalValue(e, c.Value) {
					return true, observed
				}
			}
			return false, observed
		}
		if s, ok := c.Value.(string); ok && r.Type == gjson.String {
			return strings.Contains(r.Str, s), observed
		}
		return false, observed
	}
	return false, observed
}

// equalValue compares a JSON value with an expected one. A string is
// compared with the value's text, so that "3" matches 3 and "true" true;
// anything else is compared as JSON.
func equalValue(r gjson.Result, want any) bool {
	if !r.Exists() {
		return false
	}
	if s, ok := want.(string); ok {
		return r.String() == s
	}
	var got any
	if err := json.Unmarshal([]byte(r.Raw), &got); err != nil {
		return false
	}
	return reflect.DeepEqual(got, want)
}

// checkAll checks conditions in order and returns the first that fails.
// lines says that doc is JSON Lines.
func checkAll(doc []byte, lines bool, conds []Condition) *mismatch {
	for _, c := range conds {
		if lines && !strings.HasPrefix(c.Path, "..") {
			return &mismatch{Expected: c.describe(), Observed: "JSON Lines (one value a line), which needs a path that starts with .. (..# counts the lines, ..0 is the first)"}
		}
		if ok, obs := c.check(doc); !ok {
			return &mismatch{Expected: c.describe(), Observed: obs}
		}
	}
	return nil
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return strconvQuote(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// short cuts s to at most n bytes, saying so.
func short(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("... (%d bytes in all)", len(s))
}

// compact removes the insignificant space of a JSON text.
func compact(raw string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(raw)) != nil {
		return raw
	}
	return b.String()
}
