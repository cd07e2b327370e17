package localapi

import (
	"net/http"

	"github.com/peercollab/peercollab/contacts"
	"github.com/peercollab/peercollab/node"
	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// The errors of a person's devices, added to the server's mappings.
func init() {
	const (
		hintGrant = "ask for a new grant: run `peercollab device link` on this device again and have a device of the person approve it"
		hintOwn   = "see `peercollab device list`"
	)
	mappings = append(mappings, []mapping{
		{contacts.ErrDeviceNotFound, apitype.CodeDeviceNotFound, http.StatusNotFound, hintOwn},
		{contacts.ErrNotDeviceGrant, apitype.CodeNotDeviceGrant, http.StatusUnprocessableEntity, "a grant is what `peercollab device approve` writes"},
		{contacts.ErrBadDeviceMarker, apitype.CodeBadDeviceGrant, http.StatusUnprocessableEntity, hintForged},
		{contacts.ErrDeviceTwice, apitype.CodeBadDeviceGrant, http.StatusUnprocessableEntity, hintForged},
		{contacts.ErrWrongPerson, apitype.CodeWrongPerson, http.StatusForbidden, hintForged},
		{contacts.ErrDeviceRevoked, apitype.CodeDeviceRevoked, http.StatusForbidden, ""},
		{contacts.ErrGrantForOtherKey, apitype.CodeGrantForOtherKey, http.StatusUnprocessableEntity, "join on the device that made the link request"},
		{contacts.ErrGrantNonce, apitype.CodeGrantNonce, http.StatusUnprocessableEntity, hintGrant},
		{contacts.ErrNoLinkRequest, apitype.CodeNoLinkRequest, http.StatusConflict, "run `peercollab device link` on this device first"},
		{contacts.ErrBadLinkRequest, apitype.CodeBadLinkRequest, http.StatusUnprocessableEntity, "check that the file arrived whole; a request is what `peercollab device link` writes"},
		{contacts.ErrLinkExpired, apitype.CodeLinkExpired, http.StatusUnprocessableEntity, "make a new request with `peercollab device link`, or check the clocks"},
		{contacts.ErrAlreadyDevice, apitype.CodeAlreadyDevice, http.StatusConflict, hintOwn},
		{contacts.ErrBadRevocation, apitype.CodeBadRevocation, http.StatusUnprocessableEntity, hintForged},
		{contacts.ErrRevocationReplay, apitype.CodeRevocationReplay, http.StatusConflict, ""},
		{contacts.ErrRevocationFuture, apitype.CodeRevocationFuture, http.StatusUnprocessableEntity, "check this computer's clock, or the signer's"},
		{contacts.ErrRevokePerson, apitype.CodeRevokePerson, http.StatusBadRequest, "a person whose first device is lost starts afresh with a new identity"},
		{node.ErrJoined, apitype.CodeDeviceJoined, http.StatusConflict, hintOwn},
		{node.ErrHasDevices, apitype.CodeHasDevices, http.StatusConflict, hintOwn},
	}...)
}

func devicesView(ds node.Devices) apitype.Devices {
	out := apitype.Devices{Person: ds.Person, Self: ds.Self, PendingLink: ds.PendingLink, Devices: make([]apitype.Device, len(ds.Devices))}
	for i, d := range ds.Devices {
		out.Devices[i] = deviceView(d)
	}
	return out
}

func deviceView(d node.Device) apitype.Device {
	return apitype.Device{Device: d.Device, Name: d.Name, First: d.First, Self: d.Self, ApprovedBy: d.ApprovedBy, Approved: d.Approved, Revoked: d.Revoked}
}

func (s *Server) listDevices(*http.Request) (apitype.Devices, error) {
	ds, err := s.n.Devices()
	if err != nil {
		return apitype.Devices{}, err
	}
	return devicesView(ds), nil
}

func (s *Server) linkDevice(r *http.Request) (apitype.DeviceLinkResponse, error) {
	var req apitype.DeviceLinkRequest
	if err := decode(r, &req); err != nil {
		return apitype.DeviceLinkResponse{}, err
	}
	file, err := s.n.LinkDevice(req.Name)
	if err != nil {
		return apitype.DeviceLinkResponse{}, err
	}
	return apitype.DeviceLinkResponse{Request: string(file)}, nil
}

func (s *Server) approveDevice(r *http.Request) (apitype.DeviceApproveResponse, error) {
	var req apitype.DeviceApproveRequest
	if err := decode(r, &req); err != nil {
		return apitype.DeviceApproveResponse{}, err
	}
	if req.Request == "" {
		return apitype.DeviceApproveResponse{}, badRequest("the request carries no link request")
	}
	grant, d, err := s.n.ApproveDevice([]byte(req.Request))
	if err != nil {
		return apitype.DeviceApproveResponse{}, err
	}
	return apitype.DeviceApproveResponse{Device: deviceView(d), Grant: string(grant)}, nil
}

func (s *Server) joinDevice(r *http.Request) (apitype.Devices, error) {
	var req apitype.DeviceJoinRequest
	if err := decode(r, &req); err != nil {
		return apitype.Devices{}, err
	}
	if req.Grant == "" {
		return apitype.Devices{}, badRequest("the request carries no grant")
	}
	ds, err := s.n.JoinDevice([]byte(req.Grant))
	if err != nil {
		return apitype.Devices{}, err
	}
	return devicesView(ds), nil
}

func (s *Server) revokeDevice(r *http.Request) (apitype.DeviceRevokeResponse, error) {
	d, file, err := s.n.RevokeDevice(r.PathValue("device"))
	if err != nil {
		return apitype.DeviceRevokeResponse{}, err
	}
	return apitype.DeviceRevokeResponse{Device: deviceView(d), Revocation: string(file)}, nil
}
