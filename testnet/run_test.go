package testnet_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/peercollab/peercollab/testnet"
	"github.com/peercollab/peercollab/testnet/testnettest"
)

// TestScenarios runs every scenario of scenarios/: what CI proves about
// the network behaviour of the whole system.
func TestScenarios(t *testing.T) {
	testnettest.RequireMachine(t)
	files, err := filepath.Glob("scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			testnettest.Run(t, f)
		})
	}
}

// assertGone checks that nothing of a run is left: no namespace with its
// prefix, no process it started.
func assertGone(t *testing.T, rep *testnet.Report, extraPIDs ...int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, rep.Run+"-") {
			t.Errorf("namespace %s of the run is left", strings.Fields(line)[0])
		}
	}
	pids := extraPIDs
	for _, n := range rep.Nodes {
		pids = append(pids, n.PIDs...)
	}
	// A process killed a moment ago may still be on its way out (or a
	// zombie not yet reaped by init): give it a bounded time.
	for _, pid := range pids {
		gone := func() bool {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			return errors.Is(err, os.ErrNotExist) || strings.Contains(string(b), ") Z ")
		}
		tick := time.NewTicker(20 * time.Millisecond)
		deadline := time.After(5 * time.Second)
	wait:
		for !gone() {
			select {
			case <-tick.C:
			case <-deadline:
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("process %d of the run is still there: %q", pid, b)
				break wait
			}
		}
		tick.Stop()
	}
	for _, n := range rep.Nodes {
		if _, err := os.Stat(n.Home); !os.IsNotExist(err) {
			t.Errorf("%s's home %s is left", n.Name, n.Home)
		}
	}
}

const oneNode = `
networks:
  - {name: lan, subnet: 10.9.0.0/24}
nodes:
  - {name: alice, network: lan, display_name: Alice}
  - {name: bob, network: lan, display_name: Bob}
`

// A failing expectation fails the run with the step, the expected and the
// observed value and the node's log, and the run still removes everything.
func TestFailingExpectation(t *testing.T) {
	testnettest.RequireMachine(t)
	testnettest.Binary(t) // build outside the leak check
	tests := []struct {
		name, steps string
		want        []string // in the error
		step        string   // index of the failed step
	}{
		{"json", `
  - {node: alice, run: id --json, json: [{path: display_name, equals: Alice}]}
  - node: alice
    run: contacts list --json
    json: [{path: "#", equals: 5}]
    within: 300ms
  - {node: alice, run: id}
`, []string{"step 2 (line 9", `expected json "#" equals 5 within 300ms`, "observed 0"}, "2"},
		{"event", `
  - node: bob
    event: contact.changed
    json: [{path: change, equals: added}]
    within: 200ms
`, []string{"step 1", "1 contact.changed event(s)", "no contact.changed event since the step began"}, "1"},
		{"status", `
  - {node: bob, run: contacts show nobody}
`, []string{"step 1", "expected exit status 0", "observed exit status 1"}, "1"},
		{"parallel", `
  - parallel:
      - {node: alice, sh: "sleep 30"}
      - {node: bob, sh: "exit 3"}
`, []string{"step 1", "failed at 1.2", "observed exit status 3"}, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			sc, err := testnet.Parse(tt.name+".yaml", []byte(oneNode+"steps:"+tt.steps))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := testnettest.Try(t, sc)
			if err == nil || rep == nil || rep.OK {
				t.Fatalf("run passed: %v", err)
			}
			t.Cleanup(func() { os.RemoveAll(rep.LogDir) })
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			var failed *testnet.StepResult
			for i := range rep.Steps {
				if rep.Steps[i].Index == tt.step {
					failed = &rep.Steps[i]
				}
			}
			if failed == nil || failed.Outcome != testnet.OutcomeFailed {
				t.Fatalf("step %s: %+v", tt.step, failed)
			}
			if len(failed.Logs) == 0 {
				for _, sub := range failed.Steps {
					if len(sub.Logs) > 0 {
						failed = &sub
					}
				}
			}
			if len(failed.Logs) == 0 {
				t.Errorf("the failed step carries no node log")
			}
			var b strings.Builder
			rep.Print(&b)
			if !strings.Contains(b.String(), "'s log:") || !strings.Contains(b.String(), "FAIL") {
				t.Errorf("the printed report shows no log tail:\n%s", b.String())
			}
			if rep.LogDir == "" {
				t.Error("a failed run kept no logs")
			} else if _, err := os.Stat(filepath.Join(rep.LogDir, "alice.log")); err != nil {
				t.Errorf("alice's log is not kept: %v", err)
			}
			assertGone(t, rep)
		})
	}
}

// A node that cannot start fails the set-up, which still cleans up.
func TestSetupFailure(t *testing.T) {
	testnettest.RequireMachine(t)
	sc, err := testnet.Parse("setup.yaml", []byte(oneNode+"  - {name: carol, network: lan, flags: [--no-such-flag]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := testnettest.Try(t, sc)
	if err == nil || !strings.Contains(err.Error(), "set-up failed: carol exited during start-up") {
		t.Fatalf("Run = %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(rep.LogDir) })
	if !strings.Contains(strings.Join(rep.Setup.Logs["carol"], "\n"), "no-such-flag") {
		t.Errorf("the set-up failure does not show carol's log: %v", rep.Setup.Logs)
	}
	assertGone(t, rep)
}

// SIGINT to `peercollab testnet run` in the middle of a run ends it and
// leaves no namespace and no process behind, not even a shell step's
// children.
func TestInterrupt(t *testing.T) {
	testnettest.RequireMachine(t)
	bin := testnettest.Binary(t)
	dir := t.TempDir()
	scenario := filepath.Join(dir, "slow.yaml")
	os.WriteFile(scenario, []byte(oneNode+`steps:
  - {node: [alice, bob], run: id}
  - parallel:
      - {node: alice, sh: "sleep 300"}
      - {node: bob, run: "near --json", json: [{path: "#", equals: 7}], within: 5m}
`), 0o644)
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(bin, "testnet", "run", scenario, "--report", report)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	// Wait for the first step to pass, then for the namespaces' processes
	// of the second step to be there.
	runRE := regexp.MustCompile(`, run (pctn[0-9a-f]+);`)
	run := ""
	deadline := time.After(60 * time.Second)
	for step1 := false; !step1; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the run ended before its second step")
			}
			t.Log(l)
			if m := runRE.FindStringSubmatch(l); m != nil {
				run = m[1]
			}
			step1 = strings.HasPrefix(strings.TrimSpace(l), "OK") && strings.Contains(l, " 1  ")
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("the first step did not pass within 60s")
		}
	}
	if run == "" {
		t.Fatal("the run did not print its prefix")
	}
	var inside []int
	poll(t, 10*time.Second, func() bool {
		inside = pidsInNamespaces(t, run)
		return len(inside) >= 3 // two daemons and the shell step
	})
	t0 := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	go func() {
		for range lines {
		}
	}()
	select {
	case err := <-exited:
		if err == nil {
			t.Error("an interrupted run exited 0")
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the run did not end within 60s of SIGINT")
	}
	t.Logf("the run ended %s after SIGINT", time.Since(t0).Round(time.Millisecond))
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("no report after SIGINT: %v", err)
	}
	var rep testnet.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.OK || !strings.Contains(rep.Error, "interrupted") {
		t.Errorf("report: ok %v, error %q", rep.OK, rep.Error)
	}
	assertGone(t, &rep, inside...)
}

// pidsInNamespaces lists the processes inside the namespaces of a run.
func pidsInNamespaces(t *testing.T, run string) []int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for line := range strings.Lines(string(out)) {
		ns := strings.Fields(line)
		if len(ns) == 0 || !strings.HasPrefix(ns[0], run+"-") {
			continue
		}
		out, _ := exec.Command("ip", "netns", "pids", ns[0]).Output()
		for f := range strings.FieldsSeq(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// poll calls cond every 20 ms until it holds, failing t after timeout.
func poll(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("condition not met within %s", timeout)
		}
	}
}

// Two runs of the same scenario at once get their own namespaces, and the
// same addresses in each do not meet.
func TestTwoRunsAtOnce(t *testing.T) {
	testnettest.RequireMachine(t)
	testnettest.Binary(t)
	sc, err := testnet.Parse("twice.yaml", []byte(oneNode+`steps:
  - {node: alice, run: card -o alice.contact}
  - {node: bob, run: contacts add alice.contact}
  - {node: bob, run: "ping {{alice.addr}} --count 1 --json", json: [{path: peer, equals: "{{alice.id}}"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	reps := make([]*testnet.Report, 2)
	errs := make([]error, 2)
	done := make(chan int)
	for i := range reps {
		go func() {
			reps[i], errs[i] = testnettest.Try(t, sc)
			done <- i
		}()
	}
	<-done
	<-done
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if reps[0] == nil || reps[1] == nil || reps[0].Run == reps[1].Run {
		t.Fatalf("the runs share a prefix or did not run: %+v %+v", reps[0], reps[1])
	}
	if reps[0].Nodes[0].IP != reps[1].Nodes[0].IP || reps[0].Nodes[0].PeerID == reps[1].Nodes[0].PeerID {
		t.Errorf("runs: alice at %s and %s, %s and %s", reps[0].Nodes[0].IP, reps[1].Nodes[0].IP, reps[0].Nodes[0].PeerID, reps[1].Nodes[0].PeerID)
	}
	for _, rep := range reps {
		assertGone(t, rep)
	}
}
