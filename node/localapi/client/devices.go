package client

import (
	"context"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// Devices lists the devices of the node's person.
func (c *Client) Devices(ctx context.Context) (apitype.Devices, error) {
	var v apitype.Devices
	return v, c.do(ctx, "GET", "/v1/devices", nil, &v)
}

// LinkDevice makes the node's link request, to be approved by a device of
// the person it is to join.
func (c *Client) LinkDevice(ctx context.Context, req apitype.DeviceLinkRequest) (apitype.DeviceLinkResponse, error) {
	var v apitype.DeviceLinkResponse
	return v, c.do(ctx, "POST", "/v1/devices/link", req, &v)
}

// ApproveDevice approves a new device's link request; it returns the grant.
func (c *Client) ApproveDevice(ctx context.Context, request []byte) (apitype.DeviceApproveResponse, error) {
	var v apitype.DeviceApproveResponse
	return v, c.do(ctx, "POST", "/v1/devices/approve", apitype.DeviceApproveRequest{Request: string(request)}, &v)
}

// JoinDevice takes the grant that answers the node's link request.
func (c *Client) JoinDevice(ctx context.Context, grant []byte) (apitype.Devices, error) {
	var v apitype.Devices
	return v, c.do(ctx, "POST", "/v1/devices/join", apitype.DeviceJoinRequest{Grant: string(grant)}, &v)
}

// RevokeDevice revokes a device of the node's person (peer ID, name or a
// unique prefix); it returns the device and the signed revocation.
func (c *Client) RevokeDevice(ctx context.Context, device string) (apitype.DeviceRevokeResponse, error) {
	var v apitype.DeviceRevokeResponse
	return v, c.do(ctx, "POST", "/v1/devices/"+esc(device)+"/revoke", nil, &v)
}
