package contacts

import (
	"errors"
	"fmt"
)

// Errors about profiles and endorsement.
var (
	ErrEmptyName       = errors.New("contacts: display name is empty")
	ErrTextTooLong     = errors.New("contacts: text longer than 255 characters")
	ErrBadEmail        = errors.New("contacts: e-mail address has no @")
	ErrSelfEndorsement = errors.New("contacts: a peer cannot endorse itself")
)

// Card rejections. Each names one reason a card is refused; ParseCard and
// Evaluate wrap them (see CertError) and errors.Is finds them.
var (
	ErrCardEmpty       = errors.New("contacts: card is empty")
	ErrCardTooLarge    = errors.New("contacts: card is larger than 64 KiB")
	ErrNotPEM          = errors.New("contacts: card is not a PEM file")
	ErrTruncatedPEM    = errors.New("contacts: card is truncated (a PEM block has no end)")
	ErrTrailingData    = errors.New("contacts: card has data after its last PEM block")
	ErrUnknownBlock    = errors.New("contacts: card has a PEM block of unknown type")
	ErrBlockOrder      = errors.New("contacts: card has a certificate after its peer record")
	ErrNoCertificate   = errors.New("contacts: card holds no certificate")
	ErrChainTooLong    = errors.New("contacts: certificate chain is longer than 8")
	ErrBadCertificate  = errors.New("contacts: certificate cannot be parsed")
	ErrKeyType         = errors.New("contacts: certificate key is not Ed25519")
	ErrNoPeerID        = errors.New("contacts: certificate names no single peer ID")
	ErrPeerIDMismatch  = errors.New("contacts: certificate key does not match the peer ID it names")
	ErrBadSignature    = errors.New("contacts: certificate signature is invalid")
	ErrBrokenChain     = errors.New("contacts: certificate was not issued by the next one in the chain")
	ErrIssuerNotCA     = errors.New("contacts: issuer certificate is not allowed to endorse")
	ErrIncompleteChain = errors.New("contacts: chain does not end in a self-signed certificate")
	ErrExpired         = errors.New("contacts: certificate has expired")
	ErrNotYetValid     = errors.New("contacts: certificate is not valid yet")
	ErrBadRecord       = errors.New("contacts: peer record is malformed or its signature is invalid")
	ErrRecordMismatch  = errors.New("contacts: peer record belongs to another peer")
	ErrDuplicateRecord = errors.New("contacts: card has more than one peer record")
	ErrUntrusted       = errors.New("contacts: card is not endorsed by any of your contacts")
	ErrChainTooDeep    = errors.New("contacts: card is endorsed by a contact, but through more endorsements than allowed")
)

// CertError locates a rejection in a card's chain. Index 0 is the card's own
// certificate.
type CertError struct {
	Index int
	Err   error
}

func (e *CertError) Error() string {
	if e.Index == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("%v (certificate %d of the chain)", e.Err, e.Index+1)
}

// Unwrap returns the sentinel.
func (e *CertError) Unwrap() error { return e.Err }

// Store errors.
var (
	ErrContactNotFound = errors.New("contacts: no such contact")
	ErrContactExists   = errors.New("contacts: contact already exists")
	ErrAmbiguous       = errors.New("contacts: more than one contact matches")
	ErrIsMe            = errors.New("contacts: that is your own card")
	ErrStoreLocked     = errors.New("contacts: contact store is in use by another process")
)
