package localapi

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/reach"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/invite"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// Error is an error the API returned: a stable machine-readable code, the
// HTTP status, and a message meant for a person.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Is lets errors.Is(err, &Error{Code: "x"}) match by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error *Error `json:"error"`
}

// Error codes that are not tied to one sentinel.
const (
	// CodeBadRequest: the body is not the JSON the endpoint takes (not
	// JSON, an unknown field, a value of the wrong JSON type, too large), or
	// a required value is missing.
	CodeBadRequest = "bad_request"
	CodeInternal   = "internal"
	CodeNotFound   = "not_found"
	CodeNoDaemon   = "no_daemon"
	// CodeRequestTimeout: the request body did not arrive in time.
	CodeRequestTimeout = "request_timeout"
)

// Codes of bad values in a request: each is a 400.
const (
	CodeBadPolicy     = "bad_policy"             // invitation policy: anyone, contacts, nobody
	CodeBadScope      = "bad_scope"              // scope: none, nearme, internet, all
	CodeBadStatus     = "bad_status"             // presence status
	CodeBadPermission = "bad_watcher_permission" // watcher permission: allowed, blocked
	CodeBadDirection  = "bad_direction"          // invitation direction: sent, received
	CodeBadDuration   = "bad_duration"           // a validity or ping interval
	CodeBadTimeout    = "bad_timeout"            // an invitation timeout
	CodeBadCount      = "bad_count"              // a ping count
	CodeBadIndex      = "bad_index"              // a message index
	CodeBadFlag       = "bad_flag"               // a true/false query parameter
	CodeBadBatch      = "bad_batch"              // an invitation batch
)

// mapping ties a sentinel error to its code, HTTP status and a hint that
// tells the user what to do.
type mapping struct {
	err    error
	code   string
	status int
	hint   string
}

const (
	hintBadCard = "ask the peer to export its card again and check that the file arrived whole"
	hintForged  = "the card may be forged; do not add it, and check the peer's fingerprint with them in person"
)

var mappings = []mapping{
	{contacts.ErrContactNotFound, "contact_not_found", http.StatusNotFound, "see `peercollab contacts list`"},
	{contacts.ErrAmbiguous, "ambiguous_peer", http.StatusConflict, "give more of the peer ID or nickname"},
	{contacts.ErrContactExists, "contact_exists", http.StatusConflict, "use `peercollab contacts update` to change it"},
	{contacts.ErrIsMe, "is_me", http.StatusBadRequest, "that card is your own"},
	{node.ErrBadNickname, "bad_nickname", http.StatusBadRequest, ""},
	{contacts.ErrSelfEndorsement, "self_endorsement", http.StatusBadRequest, ""},
	{contacts.ErrCardEmpty, "card_empty", http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrCardTooLarge, "card_too_large", http.StatusUnprocessableEntity, "a card is a few kilobytes; check that you picked the right file"},
	{contacts.ErrNotPEM, "card_not_pem", http.StatusUnprocessableEntity, "check that you picked a .contact file"},
	{contacts.ErrTruncatedPEM, "card_truncated", http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrTrailingData, "card_trailing_data", http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrUnknownBlock, "card_unknown_block", http.StatusUnprocessableEntity, "check that you picked a .contact file"},
	{contacts.ErrBlockOrder, "card_block_order", http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrNoCertificate, "card_no_certificate", http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrChainTooLong, "card_chain_too_long", http.StatusUnprocessableEntity, ""},
	{contacts.ErrBadCertificate, "card_bad_certificate", http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrKeyType, "card_key_type", http.StatusUnprocessableEntity, "peercollab cards carry Ed25519 keys only"},
	{contacts.ErrNoPeerID, "card_no_peer_id", http.StatusUnprocessableEntity, "this is not a peercollab card"},
	{contacts.ErrPeerIDMismatch, "card_peer_id_mismatch", http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrBadSignature, "card_bad_signature", http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrBrokenChain, "card_broken_chain", http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrIssuerNotCA, "card_issuer_not_ca", http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrIncompleteChain, "card_incomplete_chain", http.StatusUnprocessableEntity, "ask the endorser for the whole endorsed card"},
	{contacts.ErrExpired, "card_expired", http.StatusUnprocessableEntity, "ask the peer for a fresh card"},
	{contacts.ErrNotYetValid, "card_not_yet_valid", http.StatusUnprocessableEntity, "check this computer's clock, or the peer's"},
	{contacts.ErrBadRecord, "card_bad_record", http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrRecordMismatch, "card_record_mismatch", http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrDuplicateRecord, "card_duplicate_record", http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrUntrusted, "card_untrusted", http.StatusForbidden, "add the peer, or one who endorsed it, to your contacts first"},
	{contacts.ErrChainTooDeep, "card_chain_too_deep", http.StatusForbidden, "add one of the endorsers to your contacts, or raise the trust depth"},
	{contacts.ErrTextTooLong, "text_too_long", http.StatusBadRequest, ""},
	{contacts.ErrEmptyName, "empty_name", http.StatusBadRequest, ""},
	{contacts.ErrBadEmail, "bad_email", http.StatusBadRequest, ""},
	{ErrDaemonRunning, "daemon_running", http.StatusConflict, "stop it first, or give another --home"},
	{contacts.ErrStoreLocked, "store_locked", http.StatusConflict, "another peercollab process is using this data directory"},
	{contacts.ErrNoIdentity, "no_identity", http.StatusConflict, "create one with `peercollab init --name NAME`"},
	{contacts.ErrBadKeyFile, "bad_key_file", http.StatusInternalServerError, "restore identity.key from a backup, or move it away and run `peercollab init`"},
	{node.ErrAddrInUse, "addr_in_use", http.StatusConflict, "choose another --listen port, or stop the other process"},
	{node.ErrUnreachable, "unreachable", http.StatusBadGateway, "check that the peer runs and that an address of its card is reachable from here"},
	{node.ErrBadTarget, "bad_target", http.StatusBadRequest, "name a contact, a peer ID, or a multiaddr ending in /p2p/PEERID"},
	{near.ErrNotSignedIn, "not_signed_in_nearme", http.StatusConflict, ""},
	{near.ErrNotFound, "near_not_found", http.StatusNotFound, "see `peercollab near`"},
	{near.ErrAmbiguous, "ambiguous_peer", http.StatusConflict, "give more of the peer ID or name"},
	{publish.ErrNotSignedIn, "not_signed_in", http.StatusConflict, ""},
	{publish.ErrAppExists, "app_exists", http.StatusConflict, ""},
	{publish.ErrAppNotFound, "app_not_found", http.StatusNotFound, "see `peercollab apps list`"},
	{publish.ErrObjNotFound, "object_not_found", http.StatusNotFound, "see `peercollab objects list`"},
	{publish.ErrSameName, "same_name", http.StatusConflict, ""},
	{publish.ErrLaunchTooBig, "launch_too_long", http.StatusBadRequest, ""},
	{endpoint.ErrTextTooLong, "text_too_long", http.StatusBadRequest, ""},
	{endpoint.ErrDataTooLarge, "data_too_large", http.StatusBadRequest, "data may be at most 16384 bytes"},
	{endpoint.ErrEmptyData, "data_empty", http.StatusBadRequest, ""},
	{endpoint.ErrBadID, "bad_id", http.StatusBadRequest, ""},
	{endpoint.ErrTooManyApps, "too_many_apps", http.StatusConflict, "remove one first"},
	{endpoint.ErrTooManyObjects, "too_many_objects", http.StatusConflict, "remove one first"},
	{endpoint.ErrBadStatus, CodeBadStatus, http.StatusBadRequest, ""},
	{endpoint.ErrOfflineSignedIn, "offline_signed_in", http.StatusConflict, "sign out instead with `peercollab signout`"},
	{endpoint.ErrNotSignedIn, "peer_not_signed_in", http.StatusConflict, "the peer must sign in before you can see its data"},
	{endpoint.ErrBlocked, "peer_blocked_you", http.StatusForbidden, ""},
	{endpoint.ErrNotAllowed, "peer_not_allowed", http.StatusForbidden, "exchange cards with the peer, or join its subnet"},
	{invitations.ErrBadPolicy, CodeBadPolicy, http.StatusBadRequest, ""},
	{invitations.ErrNotFound, "invitation_not_found", http.StatusNotFound, "see `peercollab invitations`"},
	{invitations.ErrAmbiguous, "ambiguous_invitation", http.StatusConflict, "give more of the invitation ID"},
	{invitations.ErrAnswered, "invitation_answered", http.StatusConflict, ""},
	{invitations.ErrNotReceived, "not_received", http.StatusBadRequest, ""},
	{invitations.ErrNotSent, "not_sent", http.StatusBadRequest, ""},
	{invitations.ErrNoApp, "app_not_registered", http.StatusConflict, "register it first with `peercollab apps register`"},
	{invitations.ErrNoPeers, "no_peers", http.StatusBadRequest, ""},
	{invitations.ErrSelf, "invite_self", http.StatusBadRequest, ""},
	{invite.ErrMessageTooLong, "message_too_long", http.StatusBadRequest, ""},
	{invite.ErrDataTooLarge, "data_too_large", http.StatusBadRequest, "invitation data may be at most 16384 bytes"},
	{invite.ErrBadExpiry, CodeBadTimeout, http.StatusBadRequest, "give a timeout of at most 24h"},
	{sessions.ErrNotFound, "session_not_found", http.StatusNotFound, "see `peercollab session list`"},
	{sessions.ErrAmbiguous, "ambiguous_session", http.StatusConflict, "give more of the session ID"},
	{sessions.ErrNotHost, "not_host", http.StatusForbidden, ""},
	{sessions.ErrIsHost, "is_host", http.StatusBadRequest, ""},
	{sessions.ErrNotJoined, "not_joined", http.StatusConflict, ""},
	{sessions.ErrEnded, "session_ended", http.StatusConflict, ""},
	{sessions.ErrNotRunning, "session_not_running", http.StatusConflict, ""},
	{sessions.ErrNoKey, "no_session_key", http.StatusServiceUnavailable, ""},
	{sessions.ErrBadApp, "bad_id", http.StatusBadRequest, ""},
	{sessions.ErrNoRequest, "host_request_not_found", http.StatusNotFound, "see `peercollab host-requests`"},
	{sessions.ErrAnswered, "host_request_answered", http.StatusConflict, ""},
	{sessions.ErrDeclined, "host_request_declined", http.StatusConflict, ""},
	{session.ErrEnded, "session_ended", http.StatusConflict, ""},
	{session.ErrNotForming, "session_started", http.StatusConflict, ""},
	{session.ErrNotMember, "not_member", http.StatusConflict, ""},
	{session.ErrIsHost, "is_host", http.StatusBadRequest, ""},
	{psession.ErrTooLarge, "message_too_large", http.StatusBadRequest, ""},
	{reach.ErrNoDHT, "no_dht", http.StatusConflict, "start the daemon with --relay or --bootstrap"},
	{reach.ErrStale, "record_stale", http.StatusNotFound, "the peer has not been online in the Internet scope lately"},
	{events.ErrOverflow, "events_overflow", http.StatusServiceUnavailable, "reconnect to the event stream"},
}

// toError turns any error a handler returns into an *Error.
func toError(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	for _, m := range mappings {
		if errors.Is(err, m.err) {
			return &Error{Status: m.status, Code: m.code, Message: sentence(err.Error(), m.hint)}
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: sentence(err.Error(), "")}
}

// badRequest is an error in the request itself.
func badRequest(format string, args ...any) *Error {
	return badValue(CodeBadRequest, format, args...)
}

// badValue is a bad value in a request, with its own code.
func badValue(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Message: sentence(fmt.Sprintf(format, args...), "")}
}

// maxQuoted is the most of a client's value, in bytes, that an error
// message or a log line repeats; maxMessage caps a whole message.
const (
	maxQuoted  = 64
	maxMessage = 1024
)

// quote returns s quoted as Go quotes it, cut after maxQuoted bytes (at a
// character boundary) with an ellipsis after the closing quote.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

// quoted matches a Go-quoted string in an error text.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// shortenQuoted cuts every long quoted string of msg down to a prefix, as
// quote does, and msg itself to maxMessage bytes: error texts of other
// packages repeat whole values (`unknown policy "..."`) that a client sent.
func shortenQuoted(msg string) string {
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if len(q) <= maxQuoted+2 {
			return q
		}
		if s, err := strconv.Unquote(q); err == nil {
			return quote(s)
		}
		return quote(q[1 : len(q)-1])
	})
	return cut(msg, maxMessage)
}

// cut returns s cut after n bytes (at a character boundary) with an
// ellipsis.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Sentence returns err as one sentence for a person: an API error's message
// as it is, any other error cleaned up the same way the server cleans up its
// messages.
func Sentence(err error) string {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.Message
	}
	return toError(err).Message
}

// packagePrefix matches a Go package's "name: " prefix at the start of an
// error text or of one of its wrapped parts.
var packagePrefix = regexp.MustCompile(`(^|: )(?:contacts|node|events|localapi|near|publish|endpoint|watch|card|invite|invitations|sessions|session|state|reach): `)

// sentence makes one sentence for a person out of an error text: without the
// Go package prefixes, capitalised, with the hint after a semicolon.
func sentence(msg, hint string) string {
	msg = packagePrefix.ReplaceAllString(msg, "$1")
	msg = strings.TrimRight(shortenQuoted(msg), ". ")
	if msg == "" {
		msg = "the request failed"
	}
	if hint != "" {
		msg += "; " + hint
	}
	r, size := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[size:] + "."
}
