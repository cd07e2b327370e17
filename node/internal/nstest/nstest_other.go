//go:build !linux

package nstest

import "testing"

// Enter skips tb: network namespaces are Linux's.
func Enter(tb testing.TB) bool {
	tb.Helper()
	tb.Skip("needs Linux network namespaces (mDNS must not leave this machine)")
	return false
}
