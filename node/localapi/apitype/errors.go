package apitype

// Error is an error the API returned: a stable machine-readable code, the
// HTTP status, and one sentence meant for a person, which says what to do.
// Match it by code with errors.Is(err, &Error{Code: CodeX}).
type Error struct {
	// Status is the HTTP status of the answer; it does not travel in the
	// body.
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

// ErrorBody is the JSON body of every error answer, and the data of the
// event stream's "error" event.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Codes of errors that are not about one value.
const (
	// CodeBadRequest: the body is not the JSON the endpoint takes (not
	// JSON, an unknown field, a value of the wrong JSON type, too large), or
	// a required value is missing.
	CodeBadRequest = "bad_request"
	// CodeInternal: the daemon failed; its log says more.
	CodeInternal = "internal"
	// CodeNotFound: no such API endpoint.
	CodeNotFound = "not_found"
	// CodeRequestTimeout: the request body did not arrive in time.
	CodeRequestTimeout = "request_timeout"
	// CodeNoDaemon is the client's own: no daemon answers on the socket.
	// No daemon sends it.
	CodeNoDaemon = "no_daemon"
	// CodeHomeTooLong is the client's own too: the data directory's path
	// is too long for its API socket (see CheckSocketPath).
	CodeHomeTooLong = "home_too_long"
	// CodeMethodNotAllowed: the endpoint exists, but not with this method;
	// the Allow header lists those it takes.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeBadEventID: a Last-Event-ID (header or last_event_id parameter)
	// that is not an event's sequence number.
	CodeBadEventID = "bad_event_id"
	// CodeBadLogLevel: a log level that is not debug, info, warn, error,
	// dpanic, panic or fatal, or a subsystem with no logger.
	CodeBadLogLevel = "bad_log_level"
)

// Codes of bad values in a request: each is a 400.
const (
	CodeBadPolicy       = "bad_policy"             // invitation policy: anyone, contacts, nobody
	CodeBadScope        = "bad_scope"              // scope: none, nearme, internet, all
	CodeBadStatus       = "bad_status"             // presence status
	CodeBadPermission   = "bad_watcher_permission" // watcher permission: allowed, blocked
	CodeBadDirection    = "bad_direction"          // invitation direction: sent, received
	CodeBadDuration     = "bad_duration"           // a validity or ping interval
	CodeBadTimeout      = "bad_timeout"            // an invitation timeout
	CodeBadCount        = "bad_count"              // a ping count
	CodeBadIndex        = "bad_index"              // a message index
	CodeBadFlag         = "bad_flag"               // a true/false query parameter
	CodeBadBatch        = "bad_batch"              // an invitation batch
	CodeBadNickname     = "bad_nickname"           // a contact's nickname
	CodeBadTarget       = "bad_target"             // a ping target or peer
	CodeBadID           = "bad_id"                 // an application, object or session ID
	CodeTextTooLong     = "text_too_long"          // a name, presence text or description
	CodeEmptyName       = "empty_name"             // a display name
	CodeBadEmail        = "bad_email"              // an e-mail address
	CodeDataTooLarge    = "data_too_large"         // application, object or invitation data
	CodeDataEmpty       = "data_empty"             // an object without data
	CodeLaunchTooLong   = "launch_too_long"        // an application's launch command
	CodeMessageTooLong  = "message_too_long"       // an invitation's message
	CodeMessageTooLarge = "message_too_large"      // a session message
)

// Codes of contacts and cards.
const (
	CodeContactNotFound = "contact_not_found"
	// CodeAmbiguousPeer: a prefix names more than one contact or person.
	CodeAmbiguousPeer = "ambiguous_peer"
	// CodeContactExists: the card's peer is a contact already, and the
	// request did not ask to replace its card (replace).
	CodeContactExists = "contact_exists"
	// CodeEndorsementDropped: the same, and the card would drop an
	// endorsement that the stored card carries.
	CodeEndorsementDropped = "endorsement_dropped"
	// CodeSameProfile: a rename to the name and e-mail address the
	// certificate carries already.
	CodeSameProfile = "same_profile"
	// CodeRenameIssued: this node's certificate was issued by another key
	// (a device of a person), so it cannot re-issue it.
	CodeRenameIssued = "rename_issued"
	// CodePeerWatched: the peer's endpoint data is its watch's; unwatch
	// it first.
	CodePeerWatched = "peer_watched"
	// CodeNoEndpointData: the node keeps no endpoint data of the peer.
	CodeNoEndpointData   = "endpoint_data_not_found"
	CodeIsMe             = "is_me"
	CodeSelfEndorsement  = "self_endorsement"
	CodeCardEmpty        = "card_empty"
	CodeCardTooLarge     = "card_too_large"
	CodeCardNotPEM       = "card_not_pem"
	CodeCardTruncated    = "card_truncated"
	CodeCardTrailingData = "card_trailing_data"
	CodeCardUnknownBlock = "card_unknown_block"
	CodeCardBlockOrder   = "card_block_order"
	CodeCardNoCert       = "card_no_certificate"
	CodeCardChainTooLong = "card_chain_too_long"
	CodeCardBadCert      = "card_bad_certificate"
	CodeCardKeyType      = "card_key_type"
	CodeCardNoPeerID     = "card_no_peer_id"
	// The card codes below mean the card may be forged.
	CodeCardPeerIDMismatch = "card_peer_id_mismatch"
	CodeCardBadSignature   = "card_bad_signature"
	CodeCardBrokenChain    = "card_broken_chain"
	CodeCardIssuerNotCA    = "card_issuer_not_ca"
	CodeCardBadRecord      = "card_bad_record"
	CodeCardRecordMismatch = "card_record_mismatch"
	// CodeCardIncompleteChain: an endorsed card without its endorser's
	// certificates.
	CodeCardIncompleteChain = "card_incomplete_chain"
	CodeCardExpired         = "card_expired"
	CodeCardNotYetValid     = "card_not_yet_valid"
	CodeCardDuplicateRecord = "card_duplicate_record"
	// CodeCardUntrusted and CodeCardChainTooDeep: no contact vouches for
	// the card.
	CodeCardUntrusted    = "card_untrusted"
	CodeCardChainTooDeep = "card_chain_too_deep"
)

// Codes of the daemon and its data directory.
const (
	CodeDaemonRunning = "daemon_running"
	CodeStoreLocked   = "store_locked"
	CodeNoIdentity    = "no_identity"
	CodeBadKeyFile    = "bad_key_file"
	CodeAddrInUse     = "addr_in_use"
)

// Codes of reaching peers, sign-in and endpoint data.
const (
	CodeUnreachable = "unreachable"
	// CodeNotSignedInNearMe: People Near Me needs the nearme scope.
	CodeNotSignedInNearMe = "not_signed_in_nearme"
	CodeNearNotFound      = "near_not_found"
	// CodeNotSignedIn: publishing needs a sign-in.
	CodeNotSignedIn     = "not_signed_in"
	CodeAppExists       = "app_exists"
	CodeAppNotFound     = "app_not_found"
	CodeObjectNotFound  = "object_not_found"
	CodeSameName        = "same_name"
	CodeTooManyApps     = "too_many_apps"
	CodeTooManyObjects  = "too_many_objects"
	CodeOfflineSignedIn = "offline_signed_in"
	// CodePeerNotSignedIn, CodePeerBlockedYou and CodePeerNotAllowed: the
	// peer refused to show its endpoint data.
	CodePeerNotSignedIn = "peer_not_signed_in"
	CodePeerBlockedYou  = "peer_blocked_you"
	CodePeerNotAllowed  = "peer_not_allowed"
	CodeNoDHT           = "no_dht"
	CodeRecordStale     = "record_stale"
)

// Codes of invitations, sessions and host requests.
const (
	CodeInvitationNotFound  = "invitation_not_found"
	CodeAmbiguousInvitation = "ambiguous_invitation"
	CodeInvitationAnswered  = "invitation_answered"
	CodeNotReceived         = "not_received"
	CodeNotSent             = "not_sent"
	CodeAppNotRegistered    = "app_not_registered"
	CodeNoPeers             = "no_peers"
	CodeInviteSelf          = "invite_self"
	CodeSessionNotFound     = "session_not_found"
	CodeAmbiguousSession    = "ambiguous_session"
	CodeNotHost             = "not_host"
	CodeIsHost              = "is_host"
	CodeNotJoined           = "not_joined"
	CodeSessionEnded        = "session_ended"
	CodeSessionNotRunning   = "session_not_running"
	// CodeSessionStarted: the session has started; it takes no more
	// invitations.
	CodeSessionStarted = "session_started"
	CodeNotMember      = "not_member"
	// CodeRemovedFromSession and CodeLeftSession: this node no longer
	// takes part in the session, removed by its host or gone itself.
	CodeRemovedFromSession  = "removed_from_session"
	CodeLeftSession         = "left_session"
	CodeNoSessionKey        = "no_session_key"
	CodeHostRequestNotFound = "host_request_not_found"
	// CodeAmbiguousHostRequest: a prefix names more than one host request.
	CodeAmbiguousHostRequest = "ambiguous_host_request"
	CodeHostRequestAnswered  = "host_request_answered"
	CodeHostRequestDeclined  = "host_request_declined"
)

// CodeEventsOverflow ends an event stream whose reader fell too far behind;
// reconnect.
const CodeEventsOverflow = "events_overflow"
