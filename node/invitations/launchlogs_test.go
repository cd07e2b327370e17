package invitations

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPruneLaunchLogs(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	write := func(name string, age time.Duration) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, now.Add(-age), now.Add(-age))
	}
	for i := range launchLogsKept + 20 {
		write(fmt.Sprintf("new%03d.log", i), time.Duration(i)*time.Minute)
	}
	write("old.log", launchLogsAge+time.Hour)
	write("notes.txt", launchLogsAge+time.Hour) // not a log: left alone
	pruneLaunchLogs(dir, now)
	left, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(left) != launchLogsKept {
		t.Fatalf("%d logs left, want %d", len(left), launchLogsKept)
	}
	for _, name := range []string{"new000.log", "new099.log", "notes.txt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s was removed", name)
		}
	}
	for _, name := range []string{"new100.log", "old.log"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s was kept", name)
		}
	}
}
