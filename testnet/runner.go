package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/peercollab/peercollab/node/localapi/client"
)

var log = logging.Logger("peercollab/testnet")

// Options configure a run.
type Options struct {
	// Binary is the peercollab executable that the nodes run and that run
	// steps call. Required.
	Binary string
	// LogDir receives each node's log (NODE.log: its standard output and
	// error) and recorded events (NODE.events.jsonl). Empty means a new
	// directory in os.TempDir, removed when the run passes.
	LogDir string
	// Progress, when not nil, receives a line for the set-up, each step
	// and the teardown as they finish.
	Progress io.Writer
	// Drive, when not nil, runs after the scenario's steps have passed,
	// with the nodes as they run then, for what a Go test measures or
	// drives itself (see Live). An error fails the run.
	Drive func(ctx context.Context, nodes []Live) error
}

// Live is a node of a running scenario, for Options.Drive.
type Live struct {
	Name   string
	PeerID string
	IP     netip.Addr
	// Client is the node's local-API client.
	Client *client.Client
	// Started is when its running process started.
	Started time.Time
	// PID returns the pid of the node's running process, or 0.
	PID func() int
}

// runner is one run of a scenario.
type runner struct {
	sc   *Scenario
	opts Options
	plan *plan
	net  *network

	work     string // homes, the shared directory, bin/, tmp/
	shared   string // {{run.dir}}
	binDir   string // holds a "peercollab" link to the binary, for sh steps
	logDir   string
	tempLogs bool

	members []*member
	byName  map[string]*member

	// wg tracks every goroutine the run starts; teardown waits for it.
	wg sync.WaitGroup

	progressMu sync.Mutex

	mu         sync.Mutex
	unexpected []string // unexpected process exits, in order
	notes      []string // what the run changed on the machine
	peak       Resources
}

// live returns the nodes for Options.Drive.
func (r *runner) live() []Live {
	out := make([]Live, 0, len(r.members))
	for _, m := range r.members {
		l := Live{Name: m.plan.spec.Name, PeerID: m.id, IP: m.plan.ip, Client: m.client(), PID: func() int {
			if p := m.current(); p != nil {
				return p.cmd.Process.Pid
			}
			return 0
		}}
		if p := m.current(); p != nil {
			l.Started = p.started
		}
		out = append(out, l)
	}
	return out
}

// startAtOnce is how many nodes start at a time. A node's start costs a few
// hundred milliseconds of processor time; hundreds at once on a small
// machine starve one another for tens of seconds (their local APIs time out).
const startAtOnce = 16

// crowded is how many nodes on one network make the runner raise the
// kernel's neighbour table.
const crowded = 24

// Run builds the scenario's network in fresh namespaces, starts its nodes,
// runs its steps in order and removes every namespace, link and process it
// made, also when a step fails or ctx is cancelled (as on SIGINT). It
// returns the report, and an error saying in one sentence why the run
// failed; the report is nil only when the run could not begin (see
// Preflight).
func Run(ctx context.Context, sc *Scenario, opts Options) (*Report, error) {
	if err := Preflight(sc.usesNetem()); err != nil {
		return nil, err
	}
	if opts.Binary == "" {
		return nil, errors.New("testnet: no peercollab binary to run")
	}
	bin, err := filepath.Abs(opts.Binary)
	if err != nil {
		return nil, err
	}
	opts.Binary = bin
	started := time.Now()
	r := &runner{sc: sc, opts: opts, byName: map[string]*member{}}
	prefix := newPrefix()
	r.plan, err = makePlan(sc, prefix)
	if err != nil {
		return nil, err
	}
	r.net = &network{plan: r.plan}
	rep := &Report{Scenario: sc.Name, File: sc.File, Run: prefix, Started: started}
	if rep.Scenario == "" {
		rep.Scenario = strings.TrimSuffix(filepath.Base(sc.File), filepath.Ext(sc.File))
	}

	rctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	t := time.Now()
	err = r.prepare()
	rep.LogDir = r.logDir
	if err == nil {
		if r.tempLogs {
			// A temporary log directory is removed after a clean pass:
			// say so, rather than point at a directory that will be gone.
			r.progressf("scenario %s, run %s; logs in %s (kept if the run fails or warns)\n", rep.Scenario, prefix, r.logDir)
		} else {
			r.progressf("scenario %s, run %s; logs in %s\n", rep.Scenario, prefix, r.logDir)
		}
		err = r.setup(rctx)
	}
	rep.Setup = StepResult{Name: fmt.Sprintf("set up %d namespaces and %d nodes", len(r.plan.namespaces()), len(sc.Nodes)), Outcome: OutcomeOK, DurationMS: ms(time.Since(t))}
	if err != nil {
		rep.Setup.Outcome = OutcomeFailed
		rep.Setup.Error = r.interrupted(rctx, err).Error()
		rep.Setup.Logs = r.tails(nil)
		rep.Error = "set-up failed: " + rep.Setup.Error
	}
	r.progress(rep.Setup)

	if err == nil {
		sampled := make(chan struct{})
		stopSampler := make(chan struct{})
		r.wg.Go(func() {
			defer close(sampled)
			r.sample(stopSampler)
		})
		rep.Steps, rep.Error = r.steps(rctx, sc.Steps)
		if rep.Error == "" && opts.Drive != nil {
			if err := opts.Drive(rctx, r.live()); err != nil {
				rep.Error = "drive: " + r.interrupted(rctx, err).Error()
			}
		}
		close(stopSampler)
		<-sampled
	}

	t = time.Now()
	slow, terr := r.teardown()
	rep.Teardown = StepResult{Name: "tear down: stop the nodes, remove the namespaces", Outcome: OutcomeOK, DurationMS: ms(time.Since(t))}
	if slow != nil {
		// A daemon that does not shut down cleanly is a defect of the
		// daemon: the run fails for it.
		rep.Teardown.Outcome = OutcomeFailed
		rep.Teardown.Error = slow.Error()
		if rep.Error == "" {
			rep.Error = "teardown: " + slow.Error()
		}
	}
	if terr != nil {
		rep.Teardown.Outcome = OutcomeFailed
		rep.Teardown.Error = terr.Error()
		if rep.Error == "" {
			rep.Error = "teardown failed: " + terr.Error()
		}
	}
	r.progress(rep.Teardown)
	for _, m := range r.members {
		rep.Nodes = append(rep.Nodes, m.report())
	}
	rep.Resources = r.peak
	rep.Notes = r.notes
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		rep.Resources.RunnerPeakRSS = statusKB(b, "VmHWM:") * 1024
	}
	rep.OK = rep.Error == ""
	rep.DurationMS = ms(time.Since(started))
	if rep.OK && len(rep.Warnings) == 0 && r.tempLogs {
		os.RemoveAll(r.logDir)
		rep.LogDir = ""
		r.progressf("passed; removed the logs in %s (keep them with --report FILE)\n", r.logDir)
	}
	if !rep.OK {
		return rep, errors.New(rep.Error)
	}
	return rep, nil
}

func (sc *Scenario) usesNetem() bool {
	var walk func([]*Step) bool
	walk = func(steps []*Step) bool {
		return slices.ContainsFunc(steps, func(s *Step) bool { return s.Kind == StepNetem || walk(s.Steps) })
	}
	return walk(sc.Steps)
}

func (r *runner) progressf(format string, args ...any) {
	if r.opts.Progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	fmt.Fprintf(r.opts.Progress, format, args...)
}

func (r *runner) progress(s StepResult) {
	if r.opts.Progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	printStep(r.opts.Progress, s, "")
}

// interrupted turns an error caused by the run's context into a sentence
// about why the context ended.
func (r *runner) interrupted(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("the scenario's timeout of %s passed", r.sc.Timeout)
	case ctx.Err() != nil:
		return errors.New("the run was interrupted")
	}
	return err
}

// prepare makes the run's directories and the nodes' log files.
func (r *runner) prepare() error {
	var err error
	if r.work, err = os.MkdirTemp("", r.plan.prefix+"-"); err != nil {
		return err
	}
	r.shared = filepath.Join(r.work, "shared")
	r.binDir = filepath.Join(r.work, "bin")
	for _, d := range []string{r.shared, r.binDir, filepath.Join(r.work, "tmp")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.Symlink(r.opts.Binary, filepath.Join(r.binDir, "peercollab")); err != nil {
		return err
	}
	r.logDir = r.opts.LogDir
	if r.logDir == "" {
		r.tempLogs = true
		if r.logDir, err = os.MkdirTemp("", "peercollab-testnet-"+r.plan.prefix+"-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(r.logDir, 0o755); err != nil {
		return fmt.Errorf("cannot make the log directory: %w", err)
	}
	for _, nd := range r.plan.nodes {
		name := nd.spec.Name
		m := &member{plan: nd, home: filepath.Join(r.work, name), logPath: filepath.Join(r.logDir, name+".log")}
		if m.log, err = os.Create(m.logPath); err != nil {
			return err
		}
		if m.events, err = newRecorder(filepath.Join(r.logDir, name+".events.jsonl")); err != nil {
			m.log.Close()
			return err
		}
		r.members = append(r.members, m)
		r.byName[name] = m
	}
	return nil
}

// setup makes the network and the nodes' identities, and starts the nodes
// that start on their own.
func (r *runner) setup(ctx context.Context) error {
	if r.plan.largestNetwork() >= crowded {
		note, err := raiseNeighbourTable()
		if err != nil {
			return err
		}
		if note != "" {
			r.mu.Lock()
			r.notes = append(r.notes, note)
			r.mu.Unlock()
		}
	}
	if err := r.net.build(ctx); err != nil {
		return r.interrupted(ctx, err)
	}
	if err := r.each(r.members, 4, func(m *member) error { return r.initHome(ctx, m) }); err != nil {
		return r.interrupted(ctx, err)
	}
	// Relays first, so that peers that keep a reservation find them up.
	for _, role := range []Role{RoleRelay, RolePeer} {
		var auto []*member
		for _, m := range r.members {
			if m.plan.spec.Autostart && m.plan.spec.Role == role {
				auto = append(auto, m)
			}
		}
		if err := r.each(auto, startAtOnce, func(m *member) error { return r.start(ctx, m) }); err != nil {
			return r.interrupted(ctx, err)
		}
	}
	return nil
}

// each calls f for every member at once (at most limit at a time when
// limit > 0) and joins the errors.
func (r *runner) each(ms []*member, limit int, f func(*member) error) error {
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	var sem chan struct{}
	if limit > 0 {
		sem = make(chan struct{}, limit)
	}
	for i, m := range ms {
		wg.Go(func() {
			if sem != nil {
				sem <- struct{}{}
				defer func() { <-sem }()
			}
			errs[i] = f(m)
		})
	}
	wg.Wait()
	return joinErrs(errs)
}

// joinErrs joins errors into one, on one line.
func joinErrs(errs []error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// initHome creates the node's identity with `peercollab init`, which
// makes its peer ID known before it ever starts.
func (r *runner) initHome(ctx context.Context, m *member) error {
	res := r.exec(ctx, nil, DefaultCommandTimeout, r.opts.Binary, "--home", m.home, "init", "--name", m.plan.spec.DisplayName, "--json")
	if res.err != nil || res.status != 0 {
		return fmt.Errorf("%s: peercollab init failed: %s", m.plan.spec.Name, res.describe())
	}
	var out struct {
		PeerID string `json:"peer_id"`
	}
	if err := json.Unmarshal(res.stdout, &out); err != nil || out.PeerID == "" {
		return fmt.Errorf("%s: peercollab init --json printed no peer ID: %s", m.plan.spec.Name, short(string(res.stdout), 200))
	}
	m.id = out.PeerID
	return nil
}

// lookup resolves templates; self names the node of the step, if any.
func (r *runner) lookup(self string) func(name, field string) (string, error) {
	return func(name, field string) (string, error) {
		if name == "self" {
			name = self
		}
		if name == "run" {
			switch field {
			case "dir":
				return r.shared, nil
			case "id":
				return r.plan.prefix, nil
			}
		}
		if m := r.byName[name]; m != nil {
			switch field {
			case "id":
				return m.id, nil
			case "ip":
				return m.plan.ip.String(), nil
			case "addr":
				return fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", m.plan.ip, Port, m.id), nil
			case "home":
				return m.home, nil
			case "name":
				return m.plan.spec.DisplayName, nil
			}
		}
		if np := r.plan.net(name); np != nil {
			switch {
			case field == "subnet":
				return np.spec.Subnet.String(), nil
			case field == "gateway" && np.routerNS != "":
				return np.gateway.String(), nil
			case field == "public" && np.routerNS != "":
				return np.public.String(), nil
			}
		}
		return "", fmt.Errorf("{{%s.%s}} names nothing", name, field)
	}
}

// env is the environment of the run's processes: the harness's own, with
// a TMPDIR inside the run (so nothing a node makes there outlives it) and
// the extra variables given.
func (r *runner) env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TMPDIR=") && !strings.HasPrefix(kv, "PEERCOLLAB_HOME=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, append([]string{"TMPDIR=" + filepath.Join(r.work, "tmp"), "PATH=" + r.binDir + ":" + os.Getenv("PATH")}, extra...)...)
}

// start starts a node's process and waits until it answers.
func (r *runner) start(ctx context.Context, m *member) error {
	spec := m.plan.spec
	look := r.lookup(spec.Name)
	cmd := "daemon"
	if spec.Role == RoleRelay {
		cmd = "relay"
	}
	argv := []string{"ip", "netns", "exec", m.plan.ns, r.opts.Binary, "--home", m.home, cmd}
	if !slices.ContainsFunc(spec.Flags, func(f string) bool { return f == "--listen" || strings.HasPrefix(f, "--listen=") }) {
		argv = append(argv,
			"--listen", fmt.Sprintf("/ip4/%s/tcp/%d", m.plan.ip, Port),
			"--listen", fmt.Sprintf("/ip4/%s/udp/%d/quic-v1", m.plan.ip, Port))
	}
	for _, f := range spec.Flags {
		f, err := expand(f, look)
		if err != nil {
			return err
		}
		argv = append(argv, f)
	}
	var extra []string
	for _, kv := range spec.Env {
		kv, err := expand(kv, look)
		if err != nil {
			return err
		}
		extra = append(extra, kv)
	}
	return m.startProc(ctx, argv, r.env(extra...), &r.wg, func(msg string) {
		r.mu.Lock()
		r.unexpected = append(r.unexpected, msg)
		r.mu.Unlock()
	})
}

// teardown stops every process, removes the namespaces and the work
// directory, and waits for every goroutine of the run. It never uses the
// run's context: it must finish after an interrupt too.
//
// A node that does not exit within StopTimeout of SIGTERM is killed and
// reported in slow; the run fails for it.
func (r *runner) teardown() (slow, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout+30*time.Second)
	defer cancel()
	var errs []error
	slow = r.each(r.members, 0, func(m *member) error {
		if p := m.current(); p != nil {
			return m.stopProc(p, syscall.SIGTERM, StopTimeout)
		}
		return nil
	})
	// Anything else still inside a namespace of the run (a shell step's
	// children, say) is killed by pid, so that the namespace can go.
	r.net.mu.Lock()
	made := slices.Clone(r.net.made)
	r.net.mu.Unlock()
	for _, ns := range made {
		killNamespacePIDs(ctx, ns)
	}
	r.wg.Wait()
	for _, m := range r.members {
		m.events.close()
		m.log.Close()
	}
	errs = append(errs, r.net.remove(ctx))
	if r.work != "" {
		if err := os.RemoveAll(r.work); err != nil {
			errs = append(errs, err)
		}
	}
	return slow, joinErrs(errs)
}

// killNamespacePIDs kills, by pid, every process in namespace ns and waits
// (a bounded time) until they are gone.
func killNamespacePIDs(ctx context.Context, ns string) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	var pids []int
	for f := range strings.FieldsSeq(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		log.Warnw("killing a process left in a namespace", "pid", pid, "namespace", ns)
		kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		for i := 0; i < 200 && kill(pid, 0) == nil; i++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// tails returns the last log lines of the named nodes (all nodes for nil).
func (r *runner) tails(names []string) map[string][]string {
	out := map[string][]string{}
	for _, m := range r.members {
		if names == nil || slices.Contains(names, m.plan.spec.Name) {
			if lines := m.tail(20); len(lines) > 0 {
				out[m.plan.spec.Name] = lines
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (m *member) report() NodeReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	nr := NodeReport{
		Name: m.plan.spec.Name, Network: m.plan.spec.Network, Role: m.plan.spec.Role,
		IP: m.plan.ip.String(), PeerID: m.id, Namespace: m.plan.ns, Home: m.home,
		Log: m.logPath, Events: m.events.file.Name(), PIDs: slices.Clone(m.pids), Exits: slices.Clone(m.exits),
		Started: slices.Clone(m.started), PeakRSS: m.peakRSS,
	}
	for _, c := range m.cpu {
		nr.CPUSeconds += c
	}
	return nr
}

// cmdResult is what a command did.
type cmdResult struct {
	status         int
	stdout, stderr []byte
	// err is set when the command could not run or did not finish.
	err error
}

func (c cmdResult) describe() string {
	if c.err != nil {
		return c.err.Error()
	}
	s := fmt.Sprintf("exit status %d", c.status)
	if e := strings.TrimSpace(string(c.stderr)); e != "" {
		s += ": " + short(e, 300)
	}
	return s
}

// output is the command's output for a report.
func (c cmdResult) output() string {
	var b strings.Builder
	if o := strings.TrimSpace(string(c.stdout)); o != "" {
		fmt.Fprintf(&b, "stdout: %s\n", short(o, 2000))
	}
	if e := strings.TrimSpace(string(c.stderr)); e != "" {
		fmt.Fprintf(&b, "stderr: %s\n", short(e, 2000))
	}
	return strings.TrimSpace(b.String())
}

// exec runs argv with env (nil: the run's environment) in the shared
// directory, killing its whole process group when timeout passes or ctx
// ends.
func (r *runner) exec(ctx context.Context, env []string, timeout time.Duration, argv ...string) cmdResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if env == nil {
		env = r.env()
	}
	cmd.Env = env
	cmd.Dir = r.shared
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = childAttrs(true)
	cmd.Cancel = func() error { return kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	res := cmdResult{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.err = fmt.Errorf("the command did not finish within %s", timeout.Round(time.Millisecond))
		if errors.Is(ctx.Err(), context.Canceled) {
			res.err = errors.New("the command was stopped")
		}
	case errors.As(err, &ee) && ee.ExitCode() < 0:
		res.err = fmt.Errorf("the command ended: %s", ee.ProcessState)
	case errors.As(err, &ee):
		res.status = ee.ExitCode()
	case err != nil:
		res.err = fmt.Errorf("cannot run %s: %v", argv[0], err)
	}
	return res
}
