package invitations

import (
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// startDetached runs command with cmd.exe as a detached process of its own
// process group, its output appended to logPath; the daemon reaps it when
// it ends but does not wait for it.
func startDetached(command, logPath, dir string, env []string) error {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command("cmd.exe", "/C", command)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.DETACHED_PROCESS}
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	go func() {
		cmd.Wait()
		out.Close()
	}()
	return nil
}
