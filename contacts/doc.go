// Package contacts holds a peer's identity and the people it knows.
//
// An identity is a libp2p Ed25519 key kept in the data directory as PKCS#8
// PEM. Its public face is a peer certificate: a self-signed X.509 v3
// certificate whose subject public key is that very key, so the libp2p peer
// ID follows from the certificate itself. The certificate names the peer
// (CN = display name), carries the peer ID in a URI SAN ("p2p:<peer ID>") and
// optionally an e-mail SAN, and is a CA certificate: any node can act as a CA
// and endorse another peer by issuing a certificate for that peer's key,
// signed with its own.
//
// A contact card (a ".contact" file) is PEM: the certificate chain, leaf
// first, each certificate issued by the next, then an optional signed libp2p
// peer record with the peer's current addresses. ParseCard checks everything
// a card can prove about itself (each signature, the validity periods, that
// every key yields the peer ID its certificate claims); Evaluate adds trust,
// which depends on the contacts a store holds: a card is trusted when its
// peer is a contact, or when its chain reaches a contact's certificate within
// a bounded number of endorsements.
//
// A person may have several devices (see device.go for the design): each
// keeps its own key, and a device the person already has issues a new one a
// grant, a certificate carrying a device marker, so that the new device's
// chain ends at the person's first device, whose peer ID is the person ID.
// A card of such a device names the person (Card.PersonID) and may carry the
// person's signed device revocations; VerifyDevice and Revocations are what a
// contact uses to take it for the same person, or to refuse it.
//
// Store is the durable contact list, an embedded bbolt database whose
// acknowledged writes survive a crash. This package does no network I/O.
package contacts
