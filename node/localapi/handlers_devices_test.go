package localapi_test

import (
	"testing"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// The device endpoints, and each refusal with its own code.
func TestDeviceEndpoints(t *testing.T) {
	_, bob, _ := serve(t, "Bob")
	_, laptop, _ := serve(t, "Bob")
	_, phone, _ := serve(t, "Bob")

	if _, err := laptop.JoinDevice(ctx(t), []byte("x")); code(err) != apitype.CodeCardNotPEM {
		t.Errorf("join with no grant: %v", err)
	}
	if _, err := bob.ApproveDevice(ctx(t), []byte("not a request")); code(err) != apitype.CodeBadLinkRequest {
		t.Errorf("approve garbage: %v", err)
	}
	card, err := bob.Card(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.JoinDevice(ctx(t), []byte(card.Card)); code(err) != apitype.CodeGrantForOtherKey {
		t.Errorf("join with Bob's card: %v", err)
	}
	req, err := laptop.LinkDevice(ctx(t), apitype.DeviceLinkRequest{Name: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	approved, err := bob.ApproveDevice(ctx(t), []byte(req.Request))
	if err != nil {
		t.Fatal(err)
	}
	if approved.Device.Name != "laptop" || approved.Grant == "" {
		t.Errorf("approved %+v", approved.Device)
	}
	if _, err := phone.JoinDevice(ctx(t), []byte(approved.Grant)); code(err) != apitype.CodeGrantForOtherKey {
		t.Errorf("the phone joins with the laptop's grant: %v", err)
	}
	ds, err := laptop.JoinDevice(ctx(t), []byte(approved.Grant))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Devices) != 2 || ds.Person == ds.Self {
		t.Errorf("joined: %+v", ds)
	}
	_, carol, _ := serve(t, "Carol")
	again, err := laptop.LinkDevice(ctx(t), apitype.DeviceLinkRequest{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := carol.ApproveDevice(ctx(t), []byte(again.Request))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.JoinDevice(ctx(t), []byte(other.Grant)); code(err) != apitype.CodeDeviceJoined {
		t.Errorf("join another person: %v", err)
	}
	if _, err := bob.LinkDevice(ctx(t), apitype.DeviceLinkRequest{}); code(err) != apitype.CodeHasDevices {
		t.Errorf("first device links: %v", err)
	}
	if _, err := laptop.RevokeDevice(ctx(t), "Bob"); code(err) != apitype.CodeRevokePerson {
		t.Errorf("revoke the first device: %v", err)
	}
	if _, err := bob.RevokeDevice(ctx(t), "tablet"); code(err) != apitype.CodeDeviceNotFound {
		t.Errorf("revoke no device: %v", err)
	}
	r, err := bob.RevokeDevice(ctx(t), "laptop")
	if err != nil || r.Revocation == "" || r.Device.Revoked.IsZero() {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	// Bob's first device goes on approving devices.
	preq, err := phone.LinkDevice(ctx(t), apitype.DeviceLinkRequest{Name: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.ApproveDevice(ctx(t), []byte(preq.Request)); err != nil {
		t.Errorf("Bob approves the phone: %v", err)
	}
	list, err := bob.Devices(ctx(t))
	if err != nil || len(list.Devices) != 3 || !list.Devices[0].First {
		t.Errorf("Bob's devices: %+v, %v", list, err)
	}
}
