package apitype

import (
	_ "embed"
	"runtime"
	"runtime/debug"
	"time"
)

// OpenAPI is the API's contract as an OpenAPI 3.1 document (JSON): every
// route, its parameters, request and answer schemas, the error codes, and
// the event types with their payloads. GET /v1/openapi.json serves it.
//
//go:embed openapi.json
var OpenAPI []byte

// VersionInfo says which build of peercollab runs: the answer to
// GET /v1/version, and what `peercollab version` prints of the CLI itself.
type VersionInfo struct {
	// Version is peercollab's version.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, with
	// "-dirty" when the tree had changes; empty when the build did not
	// record it.
	Commit string `json:"commit,omitempty"`
	// CommitTime is when that revision was committed.
	CommitTime time.Time `json:"commit_time,omitzero"`
	// Go is the Go version the binary was built with.
	Go string `json:"go"`
	// Libp2p is the version of go-libp2p linked in; empty in a binary
	// without it.
	Libp2p string `json:"libp2p,omitempty"`
	// OS and Arch are the system the binary was built for.
	OS   string `json:"os"`
	Arch string `json:"arch"`
}

// Check statuses of a DoctorCheck.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
	// CheckInfo reports a fact that is neither good nor bad.
	CheckInfo = "info"
)

// DoctorCheck is one check of GET /v1/doctor.
type DoctorCheck struct {
	// ID names the check: daemon, nearme, listen, reachability, relays,
	// hole-punching, dht, clock, invitations.
	ID string `json:"id"`
	// Title is a few words for a person.
	Title string `json:"title"`
	// Status is ok, warn, fail or info.
	Status string `json:"status"`
	// Detail says what was found, Advice what to do about it (empty when
	// all is well).
	Detail string `json:"detail"`
	Advice string `json:"advice,omitempty"`
}

// DoctorReport is the answer to GET /v1/doctor.
type DoctorReport struct {
	// Time is the daemon's clock when it made the report.
	Time   time.Time     `json:"time"`
	Checks []DoctorCheck `json:"checks"`
}

// LogLevelRequest is the body of PUT /v1/log/level.
type LogLevelRequest struct {
	// Level is debug, info, warn, error, dpanic, panic or fatal.
	Level string `json:"level"`
	// Subsystem is a logger's name ("peercollab/invite", "dht"); empty or
	// "*" sets every subsystem.
	Subsystem string `json:"subsystem,omitempty"`
}

// LogLevels is the answer to GET /v1/log and PUT /v1/log/level: the level
// of every subsystem, by name.
type LogLevels struct {
	Subsystems map[string]string `json:"subsystems"`
}

// libp2pModule is the module path of go-libp2p.
const libp2pModule = "github.com/libp2p/go-libp2p"

// ReadVersion returns the build of the running binary, of peercollab
// version version, from the build information Go records in it: the VCS
// revision, the Go and go-libp2p versions.
func ReadVersion(version string) VersionInfo {
	v := VersionInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				v.CommitTime = t
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && v.Commit != "" {
		v.Commit += "-dirty"
	}
	for _, d := range bi.Deps {
		if d.Path == libp2pModule {
			if d.Replace != nil {
				d = d.Replace
			}
			v.Libp2p = d.Version
		}
	}
	return v
}
