//go:build unix && !linux

package node

import (
	"os"
	"path/filepath"
	"syscall"
)

// listenLock serialises the port probe and the bind of daemons that start at
// once on this machine, so that two of them cannot both find the default
// port free: an flock on one file in the temporary directory (the same file
// every time, so they do not pile up).
func listenLock() (unlock func()) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "peercollab-listen.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return func() {} // no lock: fall back to the unserialised probe
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() }
}

// errAddrInUse is the error of a bind to a port in use.
var errAddrInUse error = syscall.EADDRINUSE
