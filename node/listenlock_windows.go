package node

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// listenLock serialises the port probe and the bind of daemons that start at
// once on this machine, so that two of them cannot both find the default
// port free: an exclusive lock on one file in the temporary directory (the
// same file every time, so they do not pile up).
func listenLock() (unlock func()) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "peercollab-listen.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return func() {} // no lock: fall back to the unserialised probe
	}
	h := windows.Handle(f.Fd())
	var ol windows.Overlapped
	if err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ol); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		windows.UnlockFileEx(h, 0, 1, 0, &ol)
		f.Close()
	}
}

// errAddrInUse is the error of a bind to a port in use.
var errAddrInUse error = windows.WSAEADDRINUSE
