// Package testnettest runs testnet scenarios from Go tests:
//
//	func TestNearMe(t *testing.T) {
//		testnettest.Run(t, "testdata/near.yaml")
//	}
//
// The first call in a test process builds the peercollab binary of the
// module under test (go build ./cmd/peercollab); every scenario's nodes run
// it. Tests skip, with a sentence saying why, on a machine without root, ip
// or nft; CI runs as root, where they run.
package testnettest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peercollab/peercollab/testnet"
)

// built is the binary of this test process. It is package state on
// purpose: the point is to build once per process, whatever the number of
// tests that need it.
var built struct {
	once sync.Once
	path string
	err  error
}

// RequireMachine skips t unless this machine can run scenarios: root, ip
// (iproute2), tc and nft (nftables).
func RequireMachine(t testing.TB) {
	t.Helper()
	if err := testnet.Preflight(true); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// Binary returns the path of a peercollab binary built from the module
// that holds the working directory, building it on the first call of the
// process. It goes to the user's cache directory (one per module checkout)
// and replaces the previous build there atomically.
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() { built.path, built.err = build() })
	if built.err != nil {
		t.Fatalf("cannot build peercollab: %v", built.err)
	}
	return built.path
}

func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func build() (string, error) {
	gobin := goCommand()
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("the working directory is not inside a Go module")
	}
	root := filepath.Dir(gomod)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(cache, "peercollab-testnet", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "peercollab-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(gobin, "build", "-o", tmp.Name(), "./cmd/peercollab")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/peercollab in %s: %v\n%s", root, err, stderr.String())
	}
	final := filepath.Join(dir, "peercollab")
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	return final, nil
}

// Run runs the scenario file at path and fails t, with the report, when
// the run fails. It skips t on a machine that cannot run scenarios.
func Run(t testing.TB, path string) *testnet.Report {
	t.Helper()
	RequireMachine(t)
	sc, err := testnet.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return RunScenario(t, sc)
}

// RunString runs a scenario given as YAML text, like Run.
func RunString(t testing.TB, yaml string) *testnet.Report {
	t.Helper()
	RequireMachine(t)
	sc, err := testnet.Parse(t.Name(), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return RunScenario(t, sc)
}

// RunScenario runs a parsed scenario, like Run.
func RunScenario(t testing.TB, sc *testnet.Scenario) *testnet.Report {
	t.Helper()
	rep, err := Try(t, sc)
	if err != nil {
		var b strings.Builder
		if rep != nil {
			rep.Print(&b)
		}
		t.Fatalf("scenario %s failed: %v\n%s", sc.File, err, b.String())
	}
	return rep
}

// Try runs a scenario and returns its report and error without failing t,
// for tests that expect a run to fail. Each step's line goes to t.Log.
func Try(t testing.TB, sc *testnet.Scenario) (*testnet.Report, error) {
	t.Helper()
	RequireMachine(t)
	ctx := context.Background()
	if dl, ok := t.(interface {
		Deadline() (deadline time.Time, ok bool)
	}); ok {
		if d, ok := dl.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
			defer cancel()
		}
	}
	return testnet.Run(ctx, sc, testnet.Options{Binary: Binary(t), Progress: &logWriter{t: t}})
}

// logWriter passes whole lines to t.Log.
type logWriter struct {
	t   testing.TB
	buf []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}
