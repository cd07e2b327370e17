// Package sentence turns error texts into one sentence for a person, as the
// local API's messages are: without Go package prefixes, with long quoted
// values cut short, capitalised, ending in a period. The server and the
// client share it.
package sentence

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxQuoted is the most of a client's value, in bytes, that a message or a
// log line repeats; MaxMessage caps a whole message.
const (
	MaxQuoted  = 64
	MaxMessage = 1024
)

// Quote returns s quoted as Go quotes it, cut after MaxQuoted bytes (at a
// character boundary) with an ellipsis after the closing quote.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	cut := MaxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

// quoted matches a Go-quoted string in an error text.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// ShortenQuoted cuts every long quoted string of msg down to a prefix, as
// Quote does, and msg itself to MaxMessage bytes: error texts repeat whole
// values (`unknown policy "..."`) that a client sent.
func ShortenQuoted(msg string) string {
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if len(q) <= MaxQuoted+2 {
			return q
		}
		if s, err := strconv.Unquote(q); err == nil {
			return Quote(s)
		}
		return Quote(q[1 : len(q)-1])
	})
	return Cut(msg, MaxMessage)
}

// Cut returns s cut after n bytes (at a character boundary) with an
// ellipsis.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// packagePrefix matches a Go package's "name: " prefix at the start of an
// error text or of one of its wrapped parts.
var packagePrefix = regexp.MustCompile(`(^|: )(?:contacts|node|events|localapi|apitype|client|near|publish|endpoint|watch|card|invite|invitations|sessions|session|state|reach): `)

// Make makes one sentence for a person out of an error text: without the
// Go package prefixes, capitalised, with the hint after a semicolon. A
// text of several lines (a parser's excerpt of a file) makes a sentence of
// its first line, and keeps the others after it.
func Make(msg, hint string) string {
	if head, rest, ok := strings.Cut(strings.TrimSpace(msg), "\n"); ok && strings.TrimSpace(rest) != "" {
		return Make(strings.TrimRight(head, ": "), hint) + "\n" + strings.TrimRight(rest, " \t\n")
	}
	msg = packagePrefix.ReplaceAllString(msg, "$1")
	msg = strings.TrimRight(ShortenQuoted(msg), ". ")
	if msg == "" {
		msg = "the request failed"
	}
	if hint != "" {
		msg += "; " + hint
	}
	r, size := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[size:] + "."
}
