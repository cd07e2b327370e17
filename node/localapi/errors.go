package localapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/events"
	"github.com/peercollab/peercollab/node/invitations"
	"github.com/peercollab/peercollab/node/localapi/apitype"
	"github.com/peercollab/peercollab/node/localapi/internal/sentence"
	"github.com/peercollab/peercollab/node/near"
	"github.com/peercollab/peercollab/node/publish"
	"github.com/peercollab/peercollab/node/reach"
	"github.com/peercollab/peercollab/node/sessions"
	"github.com/peercollab/peercollab/node/watch"
	"github.com/peercollab/peercollab/protocols/endpoint"
	"github.com/peercollab/peercollab/protocols/invite"
	psession "github.com/peercollab/peercollab/protocols/session"
	"github.com/peercollab/peercollab/session"
)

// An error of a handler becomes an *apitype.Error: a stable code, the HTTP
// status, and one sentence for a person (see toError).

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
	{contacts.ErrContactNotFound, apitype.CodeContactNotFound, http.StatusNotFound, "see `peercollab contacts list`"},
	{contacts.ErrAmbiguous, apitype.CodeAmbiguousPeer, http.StatusConflict, "give more of the peer ID or nickname"},
	{node.ErrDropsEndorsement, apitype.CodeEndorsementDropped, http.StatusConflict, "to replace the card all the same, add it again with --replace (API: \"replace\": true); or ask for a card that carries the endorsement"},
	{contacts.ErrContactExists, apitype.CodeContactExists, http.StatusConflict, "to replace its card, add it again with --replace (API: \"replace\": true); `peercollab contacts update` changes its settings"},
	{contacts.ErrSameProfile, apitype.CodeSameProfile, http.StatusConflict, ""},
	{contacts.ErrRenameIssued, apitype.CodeRenameIssued, http.StatusConflict, ""},
	{watch.ErrWatched, apitype.CodePeerWatched, http.StatusConflict, "unwatch it first with `peercollab unwatch`"},
	{watch.ErrNoData, apitype.CodeNoEndpointData, http.StatusNotFound, ""},
	{contacts.ErrIsMe, apitype.CodeIsMe, http.StatusBadRequest, "that card is your own"},
	{node.ErrBadNickname, apitype.CodeBadNickname, http.StatusBadRequest, ""},
	{contacts.ErrSelfEndorsement, apitype.CodeSelfEndorsement, http.StatusBadRequest, ""},
	{contacts.ErrCardEmpty, apitype.CodeCardEmpty, http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrCardTooLarge, apitype.CodeCardTooLarge, http.StatusUnprocessableEntity, "a card is a few kilobytes; check that you picked the right file"},
	{contacts.ErrNotPEM, apitype.CodeCardNotPEM, http.StatusUnprocessableEntity, "check that you picked a .contact file"},
	{contacts.ErrTruncatedPEM, apitype.CodeCardTruncated, http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrTrailingData, apitype.CodeCardTrailingData, http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrUnknownBlock, apitype.CodeCardUnknownBlock, http.StatusUnprocessableEntity, "check that you picked a .contact file"},
	{contacts.ErrBlockOrder, apitype.CodeCardBlockOrder, http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrNoCertificate, apitype.CodeCardNoCert, http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrChainTooLong, apitype.CodeCardChainTooLong, http.StatusUnprocessableEntity, ""},
	{contacts.ErrBadCertificate, apitype.CodeCardBadCert, http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrKeyType, apitype.CodeCardKeyType, http.StatusUnprocessableEntity, "peercollab cards carry Ed25519 keys only"},
	{contacts.ErrNoPeerID, apitype.CodeCardNoPeerID, http.StatusUnprocessableEntity, "this is not a peercollab card"},
	{contacts.ErrPeerIDMismatch, apitype.CodeCardPeerIDMismatch, http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrBadSignature, apitype.CodeCardBadSignature, http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrBrokenChain, apitype.CodeCardBrokenChain, http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrIssuerNotCA, apitype.CodeCardIssuerNotCA, http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrIncompleteChain, apitype.CodeCardIncompleteChain, http.StatusUnprocessableEntity, "ask the endorser for the whole endorsed card"},
	{contacts.ErrExpired, apitype.CodeCardExpired, http.StatusUnprocessableEntity, "ask the peer for a fresh card"},
	{contacts.ErrNotYetValid, apitype.CodeCardNotYetValid, http.StatusUnprocessableEntity, "check this computer's clock, or the peer's"},
	{contacts.ErrBadRecord, apitype.CodeCardBadRecord, http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrRecordMismatch, apitype.CodeCardRecordMismatch, http.StatusUnprocessableEntity, hintForged},
	{contacts.ErrDuplicateRecord, apitype.CodeCardDuplicateRecord, http.StatusUnprocessableEntity, hintBadCard},
	{contacts.ErrUntrusted, apitype.CodeCardUntrusted, http.StatusForbidden, "add the peer, or one who endorsed it, to your contacts first"},
	{contacts.ErrChainTooDeep, apitype.CodeCardChainTooDeep, http.StatusForbidden, "add one of the endorsers to your contacts, or raise the trust depth"},
	{contacts.ErrTextTooLong, apitype.CodeTextTooLong, http.StatusBadRequest, ""},
	{contacts.ErrEmptyName, apitype.CodeEmptyName, http.StatusBadRequest, ""},
	{contacts.ErrBadEmail, apitype.CodeBadEmail, http.StatusBadRequest, ""},
	{ErrDaemonRunning, apitype.CodeDaemonRunning, http.StatusConflict, "stop it first, or give another --home"},
	{contacts.ErrStoreLocked, apitype.CodeStoreLocked, http.StatusConflict, "another peercollab process is using this data directory"},
	{contacts.ErrNoIdentity, apitype.CodeNoIdentity, http.StatusConflict, "create one with `peercollab init --name NAME`"},
	{contacts.ErrBadKeyFile, apitype.CodeBadKeyFile, http.StatusInternalServerError, "restore identity.key from a backup, or move it away and run `peercollab init`"},
	{node.ErrAddrInUse, apitype.CodeAddrInUse, http.StatusConflict, "choose another --listen port, or stop the other process"},
	{node.ErrUnreachable, apitype.CodeUnreachable, http.StatusBadGateway, "check that the peer runs and that an address of its card is reachable from here"},
	{node.ErrBadTarget, apitype.CodeBadTarget, http.StatusBadRequest, "name a contact, a peer ID, or a multiaddr ending in /p2p/PEERID"},
	{near.ErrNotSignedIn, apitype.CodeNotSignedInNearMe, http.StatusConflict, ""},
	{near.ErrNotFound, apitype.CodeNearNotFound, http.StatusNotFound, "see `peercollab near`"},
	{near.ErrAmbiguous, apitype.CodeAmbiguousPeer, http.StatusConflict, "give more of the peer ID or name"},
	{publish.ErrNotSignedIn, apitype.CodeNotSignedIn, http.StatusConflict, ""},
	{publish.ErrAppExists, apitype.CodeAppExists, http.StatusConflict, ""},
	{publish.ErrAppNotFound, apitype.CodeAppNotFound, http.StatusNotFound, "see `peercollab apps list`"},
	{publish.ErrObjNotFound, apitype.CodeObjectNotFound, http.StatusNotFound, "see `peercollab objects list`"},
	{publish.ErrSameName, apitype.CodeSameName, http.StatusConflict, ""},
	{publish.ErrLaunchTooBig, apitype.CodeLaunchTooLong, http.StatusBadRequest, ""},
	{endpoint.ErrTextTooLong, apitype.CodeTextTooLong, http.StatusBadRequest, ""},
	{endpoint.ErrDataTooLarge, apitype.CodeDataTooLarge, http.StatusBadRequest, "data may be at most 16384 bytes"},
	{endpoint.ErrEmptyData, apitype.CodeDataEmpty, http.StatusBadRequest, ""},
	{endpoint.ErrBadID, apitype.CodeBadID, http.StatusBadRequest, ""},
	{endpoint.ErrTooManyApps, apitype.CodeTooManyApps, http.StatusConflict, "remove one first"},
	{endpoint.ErrTooManyObjects, apitype.CodeTooManyObjects, http.StatusConflict, "remove one first"},
	{endpoint.ErrBadStatus, apitype.CodeBadStatus, http.StatusBadRequest, ""},
	{endpoint.ErrOfflineSignedIn, apitype.CodeOfflineSignedIn, http.StatusConflict, "sign out instead with `peercollab signout`"},
	{endpoint.ErrNotSignedIn, apitype.CodePeerNotSignedIn, http.StatusConflict, "the peer must sign in before you can see its data"},
	{endpoint.ErrBlocked, apitype.CodePeerBlockedYou, http.StatusForbidden, ""},
	{endpoint.ErrNotAllowed, apitype.CodePeerNotAllowed, http.StatusForbidden, "exchange cards with the peer, or join its subnet"},
	{invitations.ErrBadPolicy, apitype.CodeBadPolicy, http.StatusBadRequest, ""},
	{invitations.ErrNotFound, apitype.CodeInvitationNotFound, http.StatusNotFound, "see `peercollab invitations`"},
	{invitations.ErrAmbiguous, apitype.CodeAmbiguousInvitation, http.StatusConflict, "give more of the invitation ID"},
	{invitations.ErrAnswered, apitype.CodeInvitationAnswered, http.StatusConflict, ""},
	{invitations.ErrNotReceived, apitype.CodeNotReceived, http.StatusBadRequest, ""},
	{invitations.ErrNotSent, apitype.CodeNotSent, http.StatusBadRequest, ""},
	{invitations.ErrNoApp, apitype.CodeAppNotRegistered, http.StatusConflict, "register it first with `peercollab apps register`"},
	{invitations.ErrNoPeers, apitype.CodeNoPeers, http.StatusBadRequest, ""},
	{invitations.ErrSelf, apitype.CodeInviteSelf, http.StatusBadRequest, ""},
	{invite.ErrMessageTooLong, apitype.CodeMessageTooLong, http.StatusBadRequest, ""},
	{invite.ErrDataTooLarge, apitype.CodeDataTooLarge, http.StatusBadRequest, "invitation data may be at most 16384 bytes"},
	{invite.ErrBadExpiry, apitype.CodeBadTimeout, http.StatusBadRequest, "give a timeout of at most 24h"},
	{sessions.ErrNotFound, apitype.CodeSessionNotFound, http.StatusNotFound, "see `peercollab session list`"},
	{sessions.ErrAmbiguous, apitype.CodeAmbiguousSession, http.StatusConflict, "give more of the session ID"},
	{sessions.ErrNotHost, apitype.CodeNotHost, http.StatusForbidden, ""},
	{sessions.ErrIsHost, apitype.CodeIsHost, http.StatusBadRequest, ""},
	{sessions.ErrNotJoined, apitype.CodeNotJoined, http.StatusConflict, ""},
	{sessions.ErrEnded, apitype.CodeSessionEnded, http.StatusConflict, ""},
	{sessions.ErrNotRunning, apitype.CodeSessionNotRunning, http.StatusConflict, ""},
	{sessions.ErrNoKey, apitype.CodeNoSessionKey, http.StatusServiceUnavailable, ""},
	{sessions.ErrBadApp, apitype.CodeBadID, http.StatusBadRequest, ""},
	{sessions.ErrNoRequest, apitype.CodeHostRequestNotFound, http.StatusNotFound, "see `peercollab host-requests`"},
	{sessions.ErrAmbiguousRequest, apitype.CodeAmbiguousHostRequest, http.StatusConflict, "give more of the request ID"},
	{sessions.ErrAnswered, apitype.CodeHostRequestAnswered, http.StatusConflict, ""},
	{sessions.ErrDeclined, apitype.CodeHostRequestDeclined, http.StatusConflict, ""},
	{session.ErrEnded, apitype.CodeSessionEnded, http.StatusConflict, ""},
	{session.ErrNotForming, apitype.CodeSessionStarted, http.StatusConflict, ""},
	{session.ErrNotMember, apitype.CodeNotMember, http.StatusConflict, ""},
	{session.ErrIsHost, apitype.CodeIsHost, http.StatusBadRequest, ""},
	{psession.ErrTooLarge, apitype.CodeMessageTooLarge, http.StatusBadRequest, ""},
	{reach.ErrNoDHT, apitype.CodeNoDHT, http.StatusConflict, "start the daemon with --relay or --bootstrap"},
	{reach.ErrStale, apitype.CodeRecordStale, http.StatusNotFound, "the peer has not been online in the Internet scope lately"},
	{events.ErrOverflow, apitype.CodeEventsOverflow, http.StatusServiceUnavailable, "reconnect with Last-Event-ID set to the last event's id to get the events missed"},
}

// toError turns any error a handler returns into an *apitype.Error.
func toError(err error) *apitype.Error {
	var apiErr *apitype.Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	for _, m := range mappings {
		if errors.Is(err, m.err) {
			msg := err.Error()
			if m.err == node.ErrUnreachable {
				msg = unreachableMessage(err)
			}
			return &apitype.Error{Status: m.status, Code: m.code, Message: sentence.Make(msg, m.hint)}
		}
	}
	return &apitype.Error{Status: http.StatusInternalServerError, Code: apitype.CodeInternal, Message: sentence.Make(err.Error(), "")}
}

// ToError returns err as the API would answer it: an *apitype.Error with a
// code and one sentence (with a hint) for a person. The commands that run
// a node use it for the errors of starting one.
func ToError(err error) *apitype.Error { return toError(err) }

// badRequest is an error in the request itself.
func badRequest(format string, args ...any) *apitype.Error {
	return badValue(apitype.CodeBadRequest, format, args...)
}

// badValue is a bad value in a request, with its own code.
func badValue(code, format string, args ...any) *apitype.Error {
	return &apitype.Error{Status: http.StatusBadRequest, Code: code, Message: sentence.Make(fmt.Sprintf(format, args...), "")}
}

// maxQuoted is the most of a client's value that a message or a log line
// repeats; maxMessage caps a whole message.
const (
	maxQuoted  = sentence.MaxQuoted
	maxMessage = sentence.MaxMessage
)

// unreachableMessage says in one line why a peer could not be reached:
// libp2p's dial error lists every address tried, one per line.
func unreachableMessage(err error) string {
	var de *swarm.DialError
	if !errors.As(err, &de) || len(de.DialErrors) == 0 {
		return strings.Join(strings.Fields(err.Error()), " ")
	}
	first := de.DialErrors[0]
	cause := strings.Join(strings.Fields(first.Cause.Error()), " ")
	if len(de.DialErrors) == 1 {
		return fmt.Sprintf("peer is unreachable: its address %s did not answer (%s)", first.Address, cause)
	}
	return fmt.Sprintf("peer is unreachable: none of its %d addresses answered (%s: %s)", len(de.DialErrors), first.Address, cause)
}
