package endpoint

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/peercollab/peercollab/protocols/pb"
)

// Limits of endpoint data (Windows' limits).
const (
	// MaxText is the longest endpoint name, presence text or application
	// description, in characters.
	MaxText = 255
	// MaxData is the largest application or object data, in bytes.
	MaxData = 16 << 10
	// MaxApplications is how many applications a node may register.
	MaxApplications = 64
	// MaxObjects is how many objects a node may publish.
	MaxObjects = 128
	// MaxIDLen is the longest application or object ID.
	MaxIDLen = 64
)

// UserPictureID is the ID of the predefined object that holds the user's
// picture: Windows' PEER_COLLAB_OBJECTID_USER_PICTURE, a GUID written as
// Windows writes it. Its data, at most MaxData bytes, is an image.
const UserPictureID = "{DD15F41F-FC4E-4922-B035-4C06A754D01D}"

// Errors about endpoint data.
var (
	ErrTextTooLong     = errors.New("endpoint: text longer than 255 characters")
	ErrDataTooLarge    = errors.New("endpoint: data larger than 16 KiB")
	ErrEmptyData       = errors.New("endpoint: object data is empty")
	ErrBadID           = errors.New("endpoint: ID must be 1 to 64 letters, digits, '.', '-', '_', '{' or '}'")
	ErrTooManyApps     = errors.New("endpoint: 64 applications are registered already")
	ErrTooManyObjects  = errors.New("endpoint: 128 objects are published already")
	ErrBadStatus       = errors.New("endpoint: unknown presence status")
	ErrOfflineSignedIn = errors.New("endpoint: presence cannot be offline while signed in")
)

// Status is a presence status (Windows' PEER_PRESENCE_STATUS).
type Status int

// Presence statuses, in Windows' order.
const (
	Offline Status = iota
	OutToLunch
	Away
	BeRightBack
	Idle
	Busy
	OnThePhone
	Online
)

var statusNames = [...]string{"offline", "out-to-lunch", "away", "be-right-back", "idle", "busy", "on-the-phone", "online"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// ParseStatus reads a status name, ignoring case and separators
// ("on-the-phone", "OnThePhone", "on_the_phone").
func ParseStatus(s string) (Status, error) {
	norm := func(x string) string {
		return strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.ToLower(x))
	}
	for i, n := range statusNames {
		if norm(n) == norm(s) {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("%w %q (one of %s)", ErrBadStatus, s, strings.Join(statusNames[:], ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	*s = v
	return err
}

// Presence is a status and a text (Windows' PEER_PRESENCE_INFO).
type Presence struct {
	Status Status `json:"status"`
	Text   string `json:"text,omitempty"`
}

// Check reports whether p is within limits.
func (p Presence) Check() error {
	if p.Status < Offline || p.Status > Online {
		return ErrBadStatus
	}
	return checkText(p.Text)
}

// ToPB converts p to its wire form.
func (p Presence) ToPB() *pb.Presence {
	return &pb.Presence{Status: pb.Presence_Status(p.Status), Text: p.Text}
}

// PresenceFromPB converts and checks a wire presence; nil is Offline.
func PresenceFromPB(m *pb.Presence) (Presence, error) {
	if m == nil {
		return Presence{}, nil
	}
	p := Presence{Status: Status(m.GetStatus()), Text: m.GetText()}
	return p, p.Check()
}

// Application is a registered application as others see it.
type Application struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Data        []byte `json:"data,omitempty"`
}

// Check reports whether a is within limits.
func (a Application) Check() error {
	if err := CheckID(a.ID); err != nil {
		return err
	}
	if err := checkText(a.Description); err != nil {
		return err
	}
	if len(a.Data) > MaxData {
		return ErrDataTooLarge
	}
	return nil
}

// ToPB converts a to its wire form.
func (a Application) ToPB() *pb.Application {
	return &pb.Application{Id: a.ID, Description: a.Description, Data: a.Data}
}

// ApplicationFromPB converts and checks a wire application.
func ApplicationFromPB(m *pb.Application) (Application, error) {
	a := Application{ID: m.GetId(), Description: m.GetDescription(), Data: m.GetData()}
	return a, a.Check()
}

// Object is a published object.
type Object struct {
	ID   string `json:"id"`
	Data []byte `json:"data"`
}

// Check reports whether o is within limits.
func (o Object) Check() error {
	if err := CheckID(o.ID); err != nil {
		return err
	}
	if len(o.Data) == 0 {
		return ErrEmptyData
	}
	if len(o.Data) > MaxData {
		return ErrDataTooLarge
	}
	return nil
}

// ToPB converts o to its wire form.
func (o Object) ToPB() *pb.Object { return &pb.Object{Id: o.ID, Data: o.Data} }

// ObjectFromPB converts and checks a wire object.
func ObjectFromPB(m *pb.Object) (Object, error) {
	o := Object{ID: m.GetId(), Data: m.GetData()}
	return o, o.Check()
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._{}-]{1,64}$`)

// CheckID reports whether id is a valid application or object ID.
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return ErrBadID
	}
	return nil
}

// CheckName reports whether an endpoint name is within limits.
func CheckName(name string) error { return checkText(name) }

func checkText(s string) error {
	if utf8.RuneCountInString(s) > MaxText || !utf8.ValidString(s) {
		return ErrTextTooLong
	}
	return nil
}
