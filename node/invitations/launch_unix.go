//go:build !windows

package invitations

import (
	"fmt"
	"os/exec"
	"strings"
)

// startDetached runs command with sh in the background, its output
// appended to logPath: the shell starts it and exits at once, so the
// application is the child of init, not of the daemon.
func startDetached(command, logPath, dir string, env []string) error {
	script := fmt.Sprintf("(%s) >>%s 2>&1 </dev/null &", command, shellQuote(logPath))
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
