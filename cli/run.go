package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	detachkeys "github.com/estiba/estiba/engine/api/detach"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// createFlags are docker create/run's flags that estiba supports.
type createFlags struct {
	detach, interactive, tty, rm, readOnly, privileged, init, publishAll bool
	sigProxy                                                             bool
	detachKeys                                                           string
	name, workdir, user, entrypoint, hostname, memory, memorySwap, cpus  string
	cpusetCpus, restart, stopSignal, network, healthCmd, userns          string
	logDriver                                                            string
	cpuShares, pidsLimit                                                 int64
	stopTimeout, healthRetries                                           int
	healthInterval, healthTimeout                                        time.Duration
	env, envFile, volumes, tmpfs, labels, ulimits, capAdd, capDrop       []string
	securityOpt, publish, logOpts, expose                                []string
	bandwidth                                                            types.Bandwidth
}

func (f *createFlags) register(fs *pflag.FlagSet) {
	fs.SetInterspersed(false)
	fs.BoolVarP(&f.detach, "detach", "d", false, "run container in background and print container ID")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVar(&f.rm, "rm", false, "automatically remove the container when it exits")
	fs.BoolVar(&f.sigProxy, "sig-proxy", true, "proxy received signals to the process (without a tty)")
	fs.StringVar(&f.detachKeys, "detach-keys", "", "override the key sequence for detaching a container (default "+detachkeys.Default+")")
	registerBandwidth(fs, &f.bandwidth)
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fs.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fs.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fs.StringVar(&f.name, "name", "", "assign a name to the container")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fs.StringVar(&f.cpus, "cpus", "", "number of CPUs")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (-1 for unlimited)")
	fs.StringVar(&f.restart, "restart", "no", "restart policy to apply when a container exits")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container")
	fs.IntVar(&f.stopTimeout, "stop-timeout", 0, "timeout (in seconds) to stop a container")
	fs.StringVar(&f.network, "network", "", "connect a container to a network (none, host, container:<name|id>)")
	fs.StringVar(&f.network, "net", "", "")
	fs.MarkHidden("net")
	fs.StringVar(&f.userns, "userns", "", "user namespace to use (auto: a private range, host)")
	fs.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check (ms|s|m|h)")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h)")
	fs.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fs.StringVar(&f.logDriver, "log-driver", "", "logging driver for the container (json-file)")
	stringArrayVarP(fs, &f.logOpts, "log-opt", "", "log driver options (max-size, max-file)")
	stringArrayVarP(fs, &f.env, "env", "e", "set environment variables")
	stringArrayVarP(fs, &f.envFile, "env-file", "", "read in a file of environment variables")
	stringArrayVarP(fs, &f.volumes, "volume", "v", "bind mount a volume (SRC:DST[:ro])")
	stringArrayVarP(fs, &f.tmpfs, "tmpfs", "", "mount a tmpfs directory (DST[:OPTS])")
	stringArrayVarP(fs, &f.labels, "label", "l", "set meta data on a container")
	stringArrayVarP(fs, &f.ulimits, "ulimit", "", "ulimit options (name=soft[:hard])")
	stringArrayVarP(fs, &f.capAdd, "cap-add", "", "add Linux capabilities")
	stringArrayVarP(fs, &f.capDrop, "cap-drop", "", "drop Linux capabilities")
	stringArrayVarP(fs, &f.securityOpt, "security-opt", "", "security options")
	stringArrayVarP(fs, &f.publish, "publish", "p", "publish a container's port(s) to the host")
	stringArrayVarP(fs, &f.expose, "expose", "", "expose a port or a range of ports")
}

// request builds the create body from the flags and IMAGE [COMMAND...].
func (f *createFlags) request(fs *pflag.FlagSet, args []string, getenv func(string) string) (*types.ContainerCreateRequest, error) {
	if len(args) == 0 {
		return nil, usageErr("requires at least 1 argument: IMAGE [COMMAND] [ARG...]")
	}
	r := &types.ContainerCreateRequest{HostConfig: &types.HostConfig{}}
	c, hc := &r.Config, r.HostConfig
	c.Image, c.Cmd = args[0], args[1:]
	c.Tty, c.OpenStdin = f.tty, f.interactive
	c.AttachStdin = f.interactive && !f.detach
	c.StdinOnce = c.AttachStdin
	c.AttachStdout, c.AttachStderr = !f.detach, !f.detach
	c.WorkingDir, c.User, c.Hostname, c.StopSignal = f.workdir, f.user, f.hostname, f.stopSignal
	if fs.Changed("entrypoint") {
		c.Entrypoint = []string{f.entrypoint}
		if f.entrypoint == "" {
			c.Entrypoint = []string{""}
		}
	}
	if fs.Changed("stop-timeout") {
		c.StopTimeout = &f.stopTimeout
	}
	env, err := envList(f.envFile, f.env, getenv)
	if err != nil {
		return nil, err
	}
	c.Env = env
	if c.Labels, err = kvMap(f.labels); err != nil {
		return nil, err
	}
	if f.healthCmd != "" {
		c.Healthcheck = &types.HealthConfig{Test: []string{"CMD-SHELL", f.healthCmd}, Interval: f.healthInterval,
			Timeout: f.healthTimeout, Retries: f.healthRetries}
	}
	hc.AutoRemove, hc.ReadonlyRootfs, hc.Privileged = f.rm, f.readOnly, f.privileged
	hc.Binds, hc.CapAdd, hc.CapDrop = f.volumes, f.capAdd, f.capDrop
	if hc.SecurityOpt, err = securityOpts(f.securityOpt); err != nil {
		return nil, err
	}
	hc.NetworkMode, hc.UsernsMode, hc.PublishAllPorts = f.network, f.userns, f.publishAll
	hc.Bandwidth = f.bandwidth
	if f.init {
		hc.Init = &f.init
	}
	if err := f.hostResources(fs, hc); err != nil {
		return nil, err
	}
	return r, f.portsAndLogs(c, hc)
}

// securityOpts inlines a seccomp=<file> profile, as the docker CLI does:
// the daemon may not see the client's files.
func securityOpts(opts []string) ([]string, error) {
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if ok && k == "seccomp" && v != "unconfined" && !strings.HasPrefix(strings.TrimSpace(v), "{") {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, b); err != nil {
				return nil, fmt.Errorf("seccomp profile %s: %w", v, err)
			}
			o = "seccomp=" + buf.String()
		}
		out = append(out, o)
	}
	return out, nil
}

func (f *createFlags) hostResources(fs *pflag.FlagSet, hc *types.HostConfig) error {
	var err error
	if len(f.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range f.tmpfs {
			dst, opts, _ := strings.Cut(t, ":")
			hc.Tmpfs[dst] = opts
		}
	}
	if f.memory != "" {
		if hc.Memory, err = parseBytes(f.memory); err != nil {
			return err
		}
	}
	if f.memorySwap == "-1" {
		hc.MemorySwap = -1
	} else if f.memorySwap != "" {
		if hc.MemorySwap, err = parseBytes(f.memorySwap); err != nil {
			return err
		}
	}
	if f.cpus != "" {
		n, err := strconv.ParseFloat(f.cpus, 64)
		if err != nil || n < 0 {
			return usageErr("invalid --cpus %q", f.cpus)
		}
		hc.NanoCPUs = int64(n * 1e9)
	}
	hc.CPUShares, hc.CpusetCpus = f.cpuShares, f.cpusetCpus
	if fs.Changed("pids-limit") {
		hc.PidsLimit = &f.pidsLimit
	}
	for _, u := range f.ulimits {
		name, val, ok := strings.Cut(u, "=")
		soft, hard, hasHard := strings.Cut(val, ":")
		s, err1 := strconv.ParseInt(soft, 10, 64)
		h := s
		var err2 error
		if hasHard {
			h, err2 = strconv.ParseInt(hard, 10, 64)
		}
		if !ok || err1 != nil || err2 != nil {
			return usageErr("invalid ulimit %q (name=soft[:hard])", u)
		}
		hc.Ulimits = append(hc.Ulimits, &types.Ulimit{Name: name, Soft: s, Hard: h})
	}
	name, max, _ := strings.Cut(f.restart, ":")
	hc.RestartPolicy.Name = name
	if max != "" {
		n, err := strconv.Atoi(max)
		if err != nil {
			return usageErr("invalid restart policy %q", f.restart)
		}
		hc.RestartPolicy.MaximumRetryCount = n
	}
	return nil
}

func (f *createFlags) portsAndLogs(c *types.Config, hc *types.HostConfig) error {
	for _, p := range f.publish {
		// [ip:][hostPort:]containerPort[/proto]; an IPv6 ip in brackets.
		var b types.PortBinding
		if rest, ok := strings.CutPrefix(p, "["); ok {
			ip, after, found := strings.Cut(rest, "]:")
			if !found {
				return fmt.Errorf("invalid publish spec %q: unterminated [IPv6 address]", p)
			}
			b.HostIP, p = ip, "x:"+after
		}
		parts := strings.Split(p, ":")
		cport := parts[len(parts)-1]
		if !strings.Contains(cport, "/") {
			cport += "/tcp"
		}
		switch len(parts) {
		case 1:
		case 2:
			if b.HostIP != "" {
				return fmt.Errorf("invalid publish spec %q: a host address needs a host port", p)
			}
			b.HostPort = parts[0]
		case 3:
			if b.HostIP == "" {
				b.HostIP = parts[0]
			}
			b.HostPort = parts[1]
		default:
			return fmt.Errorf("invalid publish spec %q (IPv6 addresses go in brackets)", p)
		}
		if hc.PortBindings == nil {
			hc.PortBindings = map[string][]types.PortBinding{}
			c.ExposedPorts = map[string]struct{}{}
		}
		hc.PortBindings[cport] = append(hc.PortBindings[cport], b)
		c.ExposedPorts[cport] = struct{}{}
	}
	for _, e := range f.expose {
		if c.ExposedPorts == nil {
			c.ExposedPorts = map[string]struct{}{}
		}
		if !strings.Contains(e, "/") {
			e += "/tcp"
		}
		c.ExposedPorts[e] = struct{}{}
	}
	hc.LogConfig.Type = f.logDriver
	opts, err := kvMap(f.logOpts)
	hc.LogConfig.Config = opts
	return err
}

func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'b':
			t = t[:n-1]
		case 'k':
			mult, t = 1<<10, t[:n-1]
		case 'm':
			mult, t = 1<<20, t[:n-1]
		case 'g':
			mult, t = 1<<30, t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 {
		return 0, usageErr("invalid size: %q", s)
	}
	return int64(f * float64(mult)), nil
}

func kvMap(list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, usageErr("invalid key=value %q", kv)
		}
		m[k] = v
	}
	return m, nil
}

// envList reads --env-file files then -e values; "-e NAME" takes NAME from
// the client's environment, as docker does.
func envList(files, env []string, getenv func(string) string) ([]string, error) {
	var out []string
	add := func(kv string) {
		if !strings.Contains(kv, "=") {
			if v := getenv(kv); v != "" {
				kv += "=" + v
			}
		}
		out = append(out, kv)
	}
	for _, file := range files {
		fh, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("env file: %w", err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") {
				add(line)
			}
		}
		fh.Close()
	}
	for _, e := range env {
		add(e)
	}
	return out, nil
}

func create(ctx context.Context, c *CLI, cl *Client, req *types.ContainerCreateRequest, name string) (string, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	body, err := createBody(req)
	if err != nil {
		return "", err
	}
	b, err := cl.callRaw(ctx, "POST", "/containers/create", q, body)
	if isNotFound(err) && strings.Contains(err.Error(), "image") {
		fmt.Fprintf(c.Stderr, "Unable to find image '%s' locally\n", req.Image)
		if perr := pull(ctx, c, cl, req.Image); perr != nil {
			return "", perr
		}
		b, err = cl.callRaw(ctx, "POST", "/containers/create", q, body)
	}
	if err != nil {
		return "", err
	}
	resp, err := parseCreateResponse(b)
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(c.Stderr, "WARNING:", w)
	}
	return resp.ID, nil
}

func cmdCreate(ctx context.Context, c *CLI, cl *Client, args []string) error {
	var f createFlags
	fs := newFlags("create", c)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	req, err := f.request(fs, fs.Args(), c.Getenv)
	if err != nil {
		return err
	}
	// create never attaches.
	req.AttachStdin, req.AttachStdout, req.AttachStderr, req.StdinOnce = false, false, false, false
	id, err := create(ctx, c, cl, req, f.name)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.Stdout, id)
	return nil
}

func cmdRun(ctx context.Context, c *CLI, cl *Client, args []string) error {
	var f createFlags
	fs := newFlags("run", c)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	req, err := f.request(fs, fs.Args(), c.Getenv)
	if err != nil {
		return err
	}
	if f.detach && f.rm && req.HostConfig.RestartPolicy.Name != "no" && req.HostConfig.RestartPolicy.Name != "" {
		return usageErr("conflicting options: cannot specify both --restart and --rm")
	}
	if _, err := detachkeys.Parse(f.detachKeys); err != nil {
		return usageErr("%v", err)
	}
	o := attachOpts{stdin: f.interactive, tty: f.tty, detachKeys: f.detachKeys, sigProxy: f.sigProxy}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var caught chan *signals
	if !f.detach {
		// os/signal's setup (a thread of its own, a handoff to it per
		// signal) goes on beside the create's round trip, not after it.
		caught = make(chan *signals, 1)
		go func() { caught <- handleSignals(cl, o, cancel) }()
	}
	id, err := create(ctx, c, cl, req, f.name)
	var sig *signals
	if caught != nil {
		sig = <-caught
		defer sig.stop()
	}
	if err != nil {
		return exitWith(c, err, 125)
	}
	if f.detach {
		if err := cl.call(ctx, "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
			return exitWith(c, err, 125)
		}
		io.WriteString(c.Stdout, id+"\n") // not fmt: its first use costs page faults
		return nil
	}
	sig.container(id)
	return runAttached(ctx, c, cl, id, o, f.rm, sig)
}

func exitWith(c *CLI, err error, code int) error {
	fmt.Fprintln(c.Stderr, err)
	return exitCode(code)
}

// attachOpts are what run (attached), start -a, attach and exec share.
type attachOpts struct {
	stdin, tty bool
	detachKeys string // "": docker's ctrl-p,ctrl-q
	// sigProxy forwards the CLI's signals to the container (only without
	// a tty, as docker: with one, ^C is a byte for the container).
	sigProxy bool
}

// runAttached is docker run without -d: attach, wait, start, stream, and
// exit with the container's status. sig handles the signals (see
// handleSignals) from before the attachment on: none is lost.
func runAttached(ctx context.Context, c *CLI, cl *Client, id string, o attachOpts, autoRemove bool, sig *signals) error {
	cond := "next-exit"
	if autoRemove {
		cond = "removed"
	}
	// The attachment and the wait request are independent round trips:
	// both sent before either answer is read, both answered before the
	// start. The wait's headers arrive before the start, so no exit is
	// missed (the body comes at exit).
	as, aerr := cl.send(ctx, attachRequest(id, o))
	ws, werr := cl.send(context.Background(), streamRequest(ctx, "POST", "/containers/"+id+"/wait", url.Values{"condition": {cond}}, nil, ""))
	var conn net.Conn
	var br *bufio.Reader
	if aerr == nil {
		conn, br, aerr = hijacked(as.recv())
	}
	var waitResp *response
	if werr == nil {
		_, _, waitResp, werr = ws.recv()
		waitResp, werr = checked(waitResp, werr)
	}
	if werr == nil {
		defer waitResp.Body.Close()
	}
	if aerr != nil {
		return exitWith(c, aerr, 125)
	}
	defer conn.Close()
	sig.attached(conn)
	if werr != nil {
		return exitWith(c, werr, 125)
	}
	if err := cl.call(ctx, "POST", "/containers/"+id+"/start", nil, nil, nil); err != nil {
		return exitWith(c, err, 125)
	}
	if detached := stream(ctx, c, cl, conn, br, id, "/containers/", o); detached {
		return nil
	}
	if code := sig.interrupted(); code != 0 {
		return exitCode(code)
	}
	b, err := io.ReadAll(waitResp.Body)
	r, perr := parseWaitResponse(b)
	if err != nil || perr != nil {
		return exitWith(c, fmt.Errorf("wait: %w", errors.Join(err, perr)), 125)
	}
	return exitIf(int(r.StatusCode))
}

// signals is the CLI's handling of its own signals while attached.
type signals struct {
	ch   chan os.Signal
	mu   sync.Mutex
	id   string   // the container, once known
	conn net.Conn // the attachment, once made
	code int      // 128+signal once one ended the attachment
}

// handleSignals forwards signals to the container (sig-proxy) once it is
// known (container) or, without the proxy, ends the attachment on
// SIGINT/SIGTERM (the container runs on), as docker does. SIGINT and
// SIGTERM also call cancel (if not nil).
func handleSignals(cl *Client, o attachOpts, cancel context.CancelFunc) *signals {
	s := &signals{ch: make(chan os.Signal, 8)}
	proxy := o.sigProxy && !o.tty
	if proxy {
		signal.Notify(s.ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	} else {
		signal.Notify(s.ch, unix.SIGINT, unix.SIGTERM)
	}
	go func() {
		for sg := range s.ch {
			n := int(sg.(unix.Signal))
			if cancel != nil && (sg == unix.SIGINT || sg == unix.SIGTERM) {
				cancel()
			}
			if proxy {
				s.mu.Lock()
				id := s.id
				s.mu.Unlock()
				if id != "" {
					// Not the command's context: SIGINT and SIGTERM cancel it.
					cl.call(context.Background(), "POST", "/containers/"+id+"/kill", url.Values{"signal": {strconv.Itoa(n)}}, nil, nil)
				}
				continue
			}
			s.mu.Lock()
			s.code = 128 + n
			if s.conn != nil {
				s.conn.Close()
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// container names the container signals go to (with the proxy).
func (s *signals) container(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id = id
}

// attached gives the attachment a signal (without the proxy) ends.
func (s *signals) attached(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = conn
	if s.code != 0 {
		conn.Close()
	}
}

func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.ch)
}

func (s *signals) interrupted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.code
}

func exitIf(code int) error {
	if code == 0 {
		return nil
	}
	return exitCode(code)
}

func attach(ctx context.Context, cl *Client, id string, o attachOpts) (net.Conn, *bufio.Reader, error) {
	return hijacked(cl.roundTrip(ctx, attachRequest(id, o)))
}

func attachRequest(id string, o attachOpts) *request {
	q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	if o.stdin {
		q.Set("stdin", "1")
	}
	if o.detachKeys != "" {
		q.Set("detachKeys", o.detachKeys)
	}
	return hijackRequest("/containers/"+id+"/attach", q, nil)
}

func startAttached(ctx context.Context, c *CLI, cl *Client, ref string, stdin bool, detachKeys string) error {
	var j types.ContainerJSON
	if err := cl.call(ctx, "GET", "/containers/"+ref+"/json", nil, nil, &j); err != nil {
		return err
	}
	o := attachOpts{stdin: stdin && j.Config.OpenStdin, tty: j.Config.Tty, detachKeys: detachKeys, sigProxy: true}
	// ctx is cancelled by SIGINT and SIGTERM already (CLI.Run).
	sig := handleSignals(cl, o, nil)
	defer sig.stop()
	sig.container(j.ID)
	return runAttached(ctx, c, cl, j.ID, o, false, sig)
}

// stream proxies the terminal or pipes to a hijacked connection: raw mode
// and resize with a tty, Docker's multiplexed frames without. With a tty
// it watches stdin for the detach keys, as docker does, and reports
// whether the user detached (the container runs on).
func stream(ctx context.Context, c *CLI, cl *Client, conn net.Conn, br *bufio.Reader, id, kind string, o attachOpts) (detached bool) {
	if o.tty {
		if f, ok := c.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			if old, err := term.MakeRaw(int(f.Fd())); err == nil {
				defer term.Restore(int(f.Fd()), old)
			}
			resize := func() {
				if w, h, err := term.GetSize(int(f.Fd())); err == nil {
					cl.call(ctx, "POST", kind+id+"/resize", url.Values{"h": {strconv.Itoa(h)}, "w": {strconv.Itoa(w)}}, nil, nil)
				}
			}
			resize()
			winch := make(chan os.Signal, 1)
			signal.Notify(winch, unix.SIGWINCH)
			defer signal.Stop(winch)
			go func() {
				for range winch {
					resize()
				}
			}()
		}
	}
	var userDetached atomic.Bool
	if o.stdin {
		in := c.Stdin
		if o.tty {
			keys, _ := detachkeys.Parse(o.detachKeys) // validated by the caller
			in = detachkeys.NewReader(in, keys)
		}
		go func() {
			_, err := io.Copy(conn, in)
			if errors.Is(err, detachkeys.ErrDetached) {
				userDetached.Store(true)
				conn.Close()
				return
			}
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	if o.tty {
		io.Copy(c.Stdout, br)
	} else {
		demux(br, c.Stdout, c.Stderr)
	}
	return userDetached.Load()
}

// demux splits Docker's multiplexed stream: 8-byte headers (stream, 0, 0,
// 0, big-endian length) before each chunk.
func demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil
			}
			return err
		}
		w := stdout
		if hdr[0] == 2 {
			w = stderr
		}
		if _, err := io.CopyN(w, r, int64(binary.BigEndian.Uint32(hdr[4:]))); err != nil {
			return err
		}
	}
}

func cmdAttach(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("attach", c)
	noStdin := fs.Bool("no-stdin", false, "do not attach STDIN")
	sigProxy := fs.Bool("sig-proxy", true, "proxy all received signals to the process (without a tty)")
	keys := fs.String("detach-keys", "", "override the key sequence for detaching a container (default "+detachkeys.Default+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("requires exactly 1 argument")
	}
	if _, err := detachkeys.Parse(*keys); err != nil {
		return usageErr("%v", err)
	}
	var j types.ContainerJSON
	if err := cl.call(ctx, "GET", "/containers/"+fs.Arg(0)+"/json", nil, nil, &j); err != nil {
		return err
	}
	if !j.State.Running {
		return fmt.Errorf("You cannot attach to a stopped container, start it first")
	}
	if j.State.Paused {
		return fmt.Errorf("You cannot attach to a paused container, unpause it first")
	}
	o := attachOpts{stdin: j.Config.OpenStdin && !*noStdin, tty: j.Config.Tty, detachKeys: *keys, sigProxy: *sigProxy}
	sig := handleSignals(cl, o, nil)
	defer sig.stop()
	sig.container(j.ID)
	conn, br, err := attach(ctx, cl, j.ID, o)
	if err != nil {
		return err
	}
	defer conn.Close()
	sig.attached(conn)
	if stream(ctx, c, cl, conn, br, j.ID, "/containers/", o) {
		// docker attach reports a detach as an error (exit 1).
		return detachkeys.ErrDetached
	}
	if code := sig.interrupted(); code != 0 {
		return exitCode(code)
	}
	// Not ctx: a proxied SIGTERM cancelled it, and the status is wanted.
	var r types.WaitResponse
	if err := cl.call(context.Background(), "POST", "/containers/"+j.ID+"/wait", nil, nil, &r); err == nil {
		return exitIf(int(r.StatusCode))
	}
	return nil
}

func cmdExec(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("exec", c)
	fs.SetInterspersed(false)
	detach := fs.BoolP("detach", "d", false, "detached mode: run command in the background")
	interactive := fs.BoolP("interactive", "i", false, "keep STDIN open even if not attached")
	tty := fs.BoolP("tty", "t", false, "allocate a pseudo-TTY")
	user := fs.StringP("user", "u", "", "username or UID")
	workdir := fs.StringP("workdir", "w", "", "working directory inside the container")
	env := fs.StringArrayP("env", "e", nil, "set environment variables")
	envFile := fs.StringArray("env-file", nil, "read in a file of environment variables")
	privileged := fs.Bool("privileged", false, "give extended privileges to the command")
	keys := fs.String("detach-keys", "", "override the key sequence for detaching a container (default "+detachkeys.Default+")")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return usageErr("requires at least 2 arguments: CONTAINER COMMAND [ARG...]")
	}
	if _, err := detachkeys.Parse(*keys); err != nil {
		return usageErr("%v", err)
	}
	envs, err := envList(*envFile, *env, c.Getenv)
	if err != nil {
		return err
	}
	cfg := types.ExecConfig{User: *user, WorkingDir: *workdir, Env: envs, Cmd: fs.Args()[1:], Tty: *tty, Privileged: *privileged,
		AttachStdin: *interactive && !*detach, AttachStdout: !*detach, AttachStderr: !*detach, Detach: *detach, DetachKeys: *keys}
	var idr types.IDResponse
	if err := cl.call(ctx, "POST", "/containers/"+fs.Arg(0)+"/exec", nil, cfg, &idr); err != nil {
		return err
	}
	if *detach {
		return cl.call(ctx, "POST", "/exec/"+idr.ID+"/start", nil, types.ExecStartConfig{Detach: true}, nil)
	}
	conn, br, err := cl.hijack(ctx, "/exec/"+idr.ID+"/start", nil, types.ExecStartConfig{Tty: *tty})
	if err != nil {
		return err
	}
	defer conn.Close()
	if stream(ctx, c, cl, conn, br, idr.ID, "/exec/", attachOpts{stdin: *interactive, tty: *tty, detachKeys: *keys}) {
		// As docker exec: a detach is reported (exit 1), the process runs on.
		return detachkeys.ErrDetached
	}
	var ei types.ExecInspect
	if err := cl.call(ctx, "GET", "/exec/"+idr.ID+"/json", nil, nil, &ei); err != nil {
		return err
	}
	return exitIf(ei.ExitCode)
}

func cmdLogs(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("logs", c)
	follow := fs.BoolP("follow", "f", false, "follow log output")
	ts := fs.BoolP("timestamps", "t", false, "show timestamps")
	tail := fs.StringP("tail", "n", "all", "number of lines to show from the end of the logs")
	since := fs.String("since", "", "show logs since timestamp (unix seconds) or relative (42m)")
	until := fs.String("until", "", "show logs before a timestamp (unix seconds) or relative (42m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("requires exactly 1 argument")
	}
	var j types.ContainerJSON
	if err := cl.call(ctx, "GET", "/containers/"+fs.Arg(0)+"/json", nil, nil, &j); err != nil {
		return err
	}
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {*tail}}
	if *follow {
		q.Set("follow", "1")
	}
	if *ts {
		q.Set("timestamps", "1")
	}
	for k, v := range map[string]string{"since": *since, "until": *until} {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err == nil {
			v = strconv.FormatInt(time.Now().Add(-d).Unix(), 10)
		}
		q.Set(k, v)
	}
	resp, err := cl.do(ctx, "GET", "/containers/"+j.ID+"/logs", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if j.Config.Tty {
		_, err = io.Copy(c.Stdout, resp.Body)
		return err
	}
	return demux(resp.Body, c.Stdout, c.Stderr)
}
