package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/estiba/estiba/engine"
	"github.com/estiba/estiba/engine/imagesvc"
	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/engine/netsvc"
	"github.com/estiba/estiba/engine/ocirt"
	"github.com/estiba/estiba/image/registry"
	"github.com/estiba/estiba/image/service"
	"github.com/estiba/estiba/internal/timerslack"
	"github.com/estiba/estiba/internal/topdir"
	"github.com/estiba/estiba/network"
	"github.com/estiba/estiba/runtime/cgroups"
	"github.com/estiba/estiba/runtime/container"
	"github.com/estiba/estiba/runtime/procfs"
	"github.com/estiba/estiba/runtime/rootfs"
	"github.com/estiba/estiba/runtime/seccomp"
	"github.com/spf13/pflag"
)

// defaultHost is the socket served without -H: the CLI's cli.DefaultHost
// (not imported: this binary is also every container's init, and the CLI
// has no business in it).
const defaultHost = "unix:///run/estiba/estiba.sock"

// daemonConfig is daemon.json; flags given on the command line win.
type daemonConfig struct {
	Hosts            []string          `json:"hosts"`
	DataRoot         string            `json:"data-root"`
	ExecRoot         string            `json:"exec-root"`
	LogLevel         string            `json:"log-level"`
	DefaultPidsLimit *int64            `json:"default-pids-limit"`
	LogOpts          map[string]string `json:"log-opts"`
	IPv6             bool              `json:"ipv6"`
	FixedCIDRv6      string            `json:"fixed-cidr-v6"`
}

func daemonMain(args []string) int {
	fs := pflag.NewFlagSet("estiba daemon", pflag.ContinueOnError)
	host := fs.StringP("host", "H", defaultHost, "unix socket to listen on")
	dataRoot := fs.String("data-root", "/var/lib/estiba", "root of persisted state")
	execRoot := fs.String("exec-root", "/run/estiba", "root of runtime state (sockets, runtime state)")
	logLevel := fs.StringP("log-level", "l", "info", "log level: debug, info, warn, error")
	configFile := fs.String("config-file", "/etc/estiba/daemon.json", "daemon configuration file")
	pids := fs.Int64("default-pids-limit", 4096, "default pids limit of containers (0: none)")
	ipv6 := fs.Bool("ipv6", false, "give the default network IPv6 (needs --fixed-cidr-v6)")
	cidr6 := fs.String("fixed-cidr-v6", "", "IPv6 subnet of the default network")
	nftTable := fs.String("nft-table", network.TableName, "nftables table (family inet) of the network layer; another name only to run several daemons on one host")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var cfg daemonConfig
	if b, err := os.ReadFile(*configFile); err == nil {
		if len(strings.TrimSpace(string(b))) == 0 {
			b = []byte("{}")
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			fmt.Fprintf(os.Stderr, "estiba daemon: %s: %v\n", *configFile, err)
			return 1
		}
	} else if fs.Changed("config-file") {
		fmt.Fprintf(os.Stderr, "estiba daemon: %v\n", err)
		return 1
	}
	pick := func(flag string, val *string, conf string) {
		if !fs.Changed(flag) && conf != "" {
			*val = conf
		}
	}
	if len(cfg.Hosts) > 0 {
		pick("host", host, cfg.Hosts[0])
	}
	pick("data-root", dataRoot, cfg.DataRoot)
	pick("exec-root", execRoot, cfg.ExecRoot)
	pick("log-level", logLevel, cfg.LogLevel)
	if !fs.Changed("default-pids-limit") && cfg.DefaultPidsLimit != nil {
		*pids = *cfg.DefaultPidsLimit
	}
	if !fs.Changed("ipv6") {
		*ipv6 = cfg.IPv6
	}
	pick("fixed-cidr-v6", cidr6, cfg.FixedCIDRv6)
	netCfg, err := defaultNetwork(*ipv6, *cidr6)
	if err != nil {
		fmt.Fprintln(os.Stderr, "estiba daemon:", err)
		return 2
	}
	log, err := logger(*logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "estiba daemon:", err)
		return 2
	}
	socket := strings.TrimPrefix(*host, "unix://")
	if strings.Contains(socket, "://") {
		fmt.Fprintf(os.Stderr, "estiba daemon: -H %s: only unix:// sockets are served\n", *host)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "estiba daemon:", err)
		return 1
	}
	o := engine.Options{
		Config: engine.Config{Root: *dataRoot, MonitorSocket: filepath.Join(*execRoot, "monitor.sock"), PidsLimit: *pids,
			UsernsFirstID: 1 << 20, UsernsMaxID: 1<<32 - 2, LogMaxSize: 0, LogMaxFiles: 1, InitPath: self, Version: version},
		Socket: socket,
		Log:    log,
	}
	if v, ok := cfg.LogOpts["max-size"]; ok {
		if o.LogMaxSize, err = engine.ParseSize(v); err != nil {
			fmt.Fprintf(os.Stderr, "estiba daemon: log-opts max-size: %v\n", err)
			return 2
		}
	}
	if v, ok := cfg.LogOpts["max-file"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "estiba daemon: log-opts max-file %q: want a positive number\n", v)
			return 2
		}
		o.LogMaxFiles = n
	}
	// The monitor, and through it the containers, learn the slack we
	// were started with (see internal/timerslack).
	slack := timerslack.Widen()
	o.StartMonitor = func() error { return startMonitor(self, *execRoot, *logLevel, slack) }
	if err := os.MkdirAll(*dataRoot, 0o711); err != nil {
		log.Error("daemon", "err", err)
		return 1
	}
	images, err := openImages(filepath.Join(*dataRoot, "images"))
	if err != nil {
		log.Error("daemon", "err", err)
		return 1
	}
	defer images.S.Close()
	images.Log = log
	o.Images = images
	// The network layer is opened on the first container that asks for a
	// network (--network NAME, or -p): others get a loopback-only netns.
	netCfg.Store = network.FileStore{Dir: filepath.Join(*dataRoot, "network")}
	netCfg.Table = *nftTable
	networks := &netsvc.Networks{Config: netCfg}
	defer networks.Close()
	o.Networks = networks
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := engine.Serve(ctx, o); err != nil {
		log.Error("daemon", "err", err)
		return 1
	}
	return 0
}

// defaultNetwork reads --ipv6 and --fixed-cidr-v6 as dockerd does: IPv6
// on the default network needs both.
func defaultNetwork(ipv6 bool, cidr6 string) (network.Config, error) {
	var cfg network.Config
	switch {
	case !ipv6 && cidr6 != "":
		return cfg, fmt.Errorf("--fixed-cidr-v6 needs --ipv6")
	case ipv6 && cidr6 == "":
		return cfg, fmt.Errorf("--ipv6 needs --fixed-cidr-v6 (the default network's IPv6 subnet)")
	case ipv6:
		p, err := netip.ParsePrefix(cidr6)
		if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
			return cfg, fmt.Errorf("--fixed-cidr-v6 %q: not an IPv6 subnet", cidr6)
		}
		cfg.DefaultSubnet6 = p
	}
	return cfg, nil
}

// openImages opens the image store with a registry client that uses the
// docker CLI's credentials (~/.docker/config.json) when there are some.
func openImages(root string) (*imagesvc.Images, error) {
	ropts := registry.Options{UserAgent: "estiba/" + version}
	if path, err := registry.DockerConfigPath(); err == nil {
		if dc, err := registry.LoadDockerConfig(path); err == nil {
			ropts.Credentials = dc
		}
	}
	reg := imagesvc.Registry{C: registry.New(ropts)}
	s, err := service.Open(root, service.Options{Registry: reg, Pusher: reg})
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	return &imagesvc.Images{S: s, Registry: reg, RegistryOptions: ropts}, nil
}

func logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// startMonitor launches `estiba monitor` in its own session, detached from
// the daemon: it must outlive a kill -9 of the daemon. Its output goes to
// exec-root/monitor.log.
func startMonitor(self, execRoot, logLevel string, timerSlack uint64) error {
	if err := os.MkdirAll(execRoot, 0o711); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(execRoot, "monitor.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "monitor", "--exec-root", execRoot, "--log-level", logLevel, "--timer-slack", strconv.FormatUint(timerSlack, 10))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	// Reap it if it dies while we live; after our death init does.
	go cmd.Wait()
	return nil
}

// helperFlags are the command line of the daemon's helpers (monitor,
// monitor-spawner).
type helperFlags struct {
	execRoot, logLevel string
	// timerSlack is the daemon's caller's timer slack, which containers
	// get; the helpers run with a wider one (internal/timerslack).
	timerSlack uint64
	log        *slog.Logger
}

// setUpHelper parses a helper's command line and widens its timer slack
// (internal/timerslack), keeping the slack it was started with for the
// containers unless --timer-slack names the daemon's.
func setUpHelper(name string, args []string) (helperFlags, bool) {
	var h helperFlags
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.StringVar(&h.execRoot, "exec-root", "/run/estiba", "root of runtime state")
	fs.StringVar(&h.logLevel, "log-level", "info", "log level")
	fs.Uint64Var(&h.timerSlack, "timer-slack", 0, "timer slack (ns) of container processes (default: ours)")
	if err := fs.Parse(args); err != nil {
		return h, false
	}
	if prev := timerslack.Widen(); h.timerSlack == 0 {
		h.timerSlack = prev
	}
	var err error
	if h.log, err = logger(h.logLevel); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return h, false
	}
	return h, true
}

func monitorMain(args []string) int {
	h, ok := setUpHelper("estiba monitor", args)
	if !ok {
		return 2
	}
	log := h.log
	// The pid file lets scripts and tests stop the monitor (SIGTERM: it
	// exits once no container runs).
	pidFile := filepath.Join(h.execRoot, "monitor.pid")
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		log.Error("monitor", "err", err)
		return 1
	}
	defer os.Remove(pidFile)
	if err := monitor.BecomeSubreaper(); err != nil {
		log.Error("monitor", "err", err)
		return 1
	}
	// Inits are forked by a small helper (see ocirt.Spawner), as our
	// children: a fork of this process would cost more with every
	// container it supervises.
	rt := &ocirt.Spawner{Runtime: monitorRuntime(h, log), Command: func() *exec.Cmd {
		cmd := exec.Command("/proc/self/exe", "monitor-spawner", "--exec-root", h.execRoot, "--log-level", h.logLevel,
			"--timer-slack", strconv.FormatUint(h.timerSlack, 10))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd
	}}
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	err := monitor.Run(ctx, rt, filepath.Join(h.execRoot, "monitor"), filepath.Join(h.execRoot, "monitor.sock"), log)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("monitor", "err", err)
		return 1
	}
	return 0
}

func monitorRuntime(h helperFlags, log *slog.Logger) *ocirt.Runtime {
	// The host's cgroup layout, read once rather than at every start and
	// delete (nil, each reads it, if it cannot be read now).
	cg, err := cgroups.ReadHost("")
	if err != nil {
		log.Warn("read the host's cgroups", "err", err)
	}
	root := filepath.Join(h.execRoot, "runtime")
	// The runtime marks the root it creates (see topdir); one made by an
	// older version is marked here.
	if err := topdir.Mark(root); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("runtime root", "err", err)
	}
	// One read-only tmpfs for their masked directories and cgroup mount
	// points: a superblock or two fewer a container.
	shared, err := rootfs.NewSharedDirs()
	if err != nil {
		log.Warn("shared mask and cgroup directories (each container gets tmpfs of its own)", "err", err)
	}
	return &ocirt.Runtime{
		RT: &container.Runtime{
			Root: root, Warn: func(m string) { log.Warn(m) },
			Cgroups: cg,
			// Container inits run from estiba-init when it is installed
			// beside us: ~half the start-up cost of this binary.
			Exe: container.InitBeside(), Version: version,
			// Containers that need no Go init get the stub (lean.go),
			// from one sealed copy kept for the spawner's life.
			Stub: container.StubBeside(), StubCache: &container.StubCache{},
			// and one procfs instance for their sysctls.
			Procfs:     &procfs.Shared{},
			Shared:     shared,
			TimerSlack: h.timerSlack,
			// The spawner creates every container: Docker's profile
			// is compiled once per set of capabilities.
			Seccomp: &seccomp.Cache{},
			// A start's answer does not wait for the container's
			// execve (docker's neither reports nor needs it).
			NoExecWait: true,
			// The daemon writes config.json before each create and not
			// again while the container exists: the state directory
			// under /run keeps no copy of it.
			BundleSpec: true,
		},
		ConsoleDir: filepath.Join(h.execRoot, "console"),
	}
}

// spawnerMain is the monitor's helper that forks container inits (see
// ocirt.Spawner), serving the monitor on fd 3 until the monitor goes away.
func spawnerMain(args []string) int {
	h, ok := setUpHelper("estiba monitor-spawner", args)
	if !ok {
		return 2
	}
	log := h.log
	// Two Ps, as in estiba-runtime: a create mounts the rootfs on one
	// thread (in the stub's namespaces) while another makes the state
	// directory and the cgroup. Their syscalls are short: with one P the
	// mount thread waited until the other blocked for good, and the two
	// ran one after the other (~2 ms more per start here). More Ps would
	// only add threads woken to spin for work.
	runtime.GOMAXPROCS(2)
	// Signals meant for the monitor's session are not ours: we end when
	// the monitor does (EOF on fd 3).
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGTERM, syscall.SIGINT)
	if err := ocirt.ServeSpawner(os.NewFile(3, "spawner"), monitorRuntime(h, log)); err != nil {
		log.Error("monitor-spawner", "err", err)
		return 1
	}
	return 0
}
