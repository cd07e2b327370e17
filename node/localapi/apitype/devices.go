package apitype

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Device is a device of this node's person.
type Device struct {
	// Device is the device's peer ID.
	Device peer.ID `json:"device"`
	// Name is what the device goes by; the first device goes by the
	// person's name.
	Name string `json:"name"`
	// First is set for the person's first device, whose peer ID is the
	// person ID; it cannot be revoked.
	First bool `json:"first"`
	// Self is set for the node that answers.
	Self bool `json:"self"`
	// ApprovedBy is the device that approved it.
	ApprovedBy peer.ID `json:"approved_by,omitempty"`
	// Approved is when its grant was issued.
	Approved time.Time `json:"approved,omitzero"`
	// Revoked is when it was revoked, if it was.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Devices is the answer to GET /v1/devices and POST /v1/devices/join.
type Devices struct {
	// Person is the person ID: the peer ID of the person's first device.
	Person peer.ID `json:"person"`
	// Self is the peer ID of the node that answers.
	Self peer.ID `json:"self"`
	// Devices are the person's devices that the node knows, the first
	// device first.
	Devices []Device `json:"devices"`
	// PendingLink is set while the node waits for the grant that answers
	// its link request.
	PendingLink bool `json:"pending_link"`
}

// DeviceLinkRequest is the body of POST /v1/devices/link.
type DeviceLinkRequest struct {
	// Name is what the new device asks to go by (default: its host name).
	Name string `json:"name,omitempty"`
}

// DeviceLinkResponse is the answer to POST /v1/devices/link.
type DeviceLinkResponse struct {
	// Request is the link request file (PEM), for a device of the person
	// to approve.
	Request string `json:"request"`
}

// DeviceApproveRequest is the body of POST /v1/devices/approve.
type DeviceApproveRequest struct {
	// Request is the new device's link request file (PEM).
	Request string `json:"request"`
}

// DeviceApproveResponse is the answer to POST /v1/devices/approve.
type DeviceApproveResponse struct {
	Device Device `json:"device"`
	// Grant is the grant file (PEM) for the new device to join with.
	Grant string `json:"grant"`
}

// DeviceJoinRequest is the body of POST /v1/devices/join.
type DeviceJoinRequest struct {
	// Grant is the grant file (PEM) that answers this device's link
	// request.
	Grant string `json:"grant"`
}

// DeviceRevokeResponse is the answer to POST /v1/devices/{device}/revoke.
type DeviceRevokeResponse struct {
	Device Device `json:"device"`
	// Revocation is the signed revocation (PEM).
	Revocation string `json:"revocation"`
}

// Codes of a person's devices.
const (
	CodeDeviceNotFound = "device_not_found"
	// CodeNotDeviceGrant: a card or endorsement that is not a device grant.
	CodeNotDeviceGrant = "not_device_grant"
	CodeBadDeviceGrant = "bad_device_grant"
	// CodeWrongPerson: a device, grant or revocation of another person.
	CodeWrongPerson      = "wrong_person"
	CodeDeviceRevoked    = "device_revoked"
	CodeGrantForOtherKey = "grant_for_other_key"
	// CodeGrantNonce: a grant for an earlier link request of this device.
	CodeGrantNonce     = "grant_nonce"
	CodeNoLinkRequest  = "no_link_request"
	CodeBadLinkRequest = "bad_link_request"
	CodeLinkExpired    = "link_request_expired"
	CodeAlreadyDevice  = "already_device"
	CodeBadRevocation  = "bad_revocation"
	// CodeRevocationReplay: a revocation older than what is known of its
	// device.
	CodeRevocationReplay = "revocation_replay"
	CodeRevocationFuture = "revocation_future"
	// CodeRevokePerson: the person's first device cannot be revoked.
	CodeRevokePerson = "revoke_first_device"
	// CodeDeviceJoined: this device belongs to a person already.
	CodeDeviceJoined = "device_joined"
	// CodeHasDevices: the first device of a person with other devices
	// cannot join another person.
	CodeHasDevices = "has_devices"
)
