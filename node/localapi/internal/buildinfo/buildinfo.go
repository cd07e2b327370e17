// Package buildinfo reads what a peercollab binary was built from (its
// VCS revision, Go and go-libp2p versions) out of the build information Go
// records in every binary. The daemon answers it at GET /v1/version, and
// the command line prints its own.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/peercollab/peercollab/node/localapi/apitype"
)

// libp2pModule is the module path of go-libp2p.
const libp2pModule = "github.com/libp2p/go-libp2p"

// Read returns the build of the running binary, of peercollab version
// version.
func Read(version string) apitype.VersionInfo {
	v := apitype.VersionInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
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
