// Package specgen turns a Docker create request plus the image's defaults
// into an OCI runtime spec, with estiba's secure defaults: Docker's 14
// capabilities, masked and read-only /proc and /sys paths, Docker's seccomp
// profile, private cgroup namespace, a pids limit, no_new_privs, and a
// private 65536-id user namespace per container.
package specgen

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	mobyseccomp "github.com/moby/profiles/seccomp"
	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Defaults are the daemon's settings that apply to every container.
type Defaults struct {
	PidsLimit int64 // 0: unlimited
	// InitPath is the binary bind-mounted as /sbin/estiba-init for --init.
	InitPath string
	// VolumesDir holds named volumes (<dir>/<name>/_data).
	VolumesDir string
	// HostCaps are the capabilities the daemon itself can grant (its
	// bounding set); nil means all. --privileged and --cap-add ALL grant
	// these, as Docker does: a host whose root lacks one (CAP_SYS_RESOURCE
	// on some VMs) still runs privileged containers.
	HostCaps []string
	// Seccomp remembers Docker's default profile per capability set (nil:
	// built anew each time, which costs ~1 ms of CPU: hundreds of syscall
	// names matched against the capabilities and kernel version).
	Seccomp *SeccompCache
}

// Input is one container's request.
type Input struct {
	ID         string
	Config     *types.Config
	HostConfig *types.HostConfig
	Image      imagespec.ImageConfig
	// Rootfs is the container's mounted root; user names are looked up in
	// its /etc/passwd and /etc/group.
	Rootfs string
	// ContainerDir holds the files bind-mounted into the container
	// (hostname, hosts).
	ContainerDir string
	// UsernsBase is the first host id of the container's range; 0 with
	// UsernsMode "host".
	UsernsBase uint32
	// NetNSPath joins an existing network namespace ("" = a new one, unless
	// NetworkMode is host).
	NetNSPath   string
	CgroupsPath string
}

// DefaultCaps are Docker's default capabilities.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// MaskedPaths and ReadonlyPaths are Docker's.
var (
	MaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	ReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// InitDest is where --init's binary appears in the container.
const InitDest = "/sbin/estiba-init"

// Generate builds the spec.
func Generate(in *Input, d *Defaults) (*specs.Spec, error) {
	hc := in.HostConfig
	if hc == nil {
		hc = &types.HostConfig{}
	}
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	if err := checkHostname(in.Config.Hostname, in.Config.Domainname); err != nil {
		return nil, err
	}
	proc, err := process(in, hc, d, sec)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Process:  proc,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: hc.ReadonlyRootfs},
		Hostname: hostname(in),
		Mounts:   defaultMounts(hc.Privileged),
		Linux: &specs.Linux{
			CgroupsPath: in.CgroupsPath,
			Resources:   &specs.LinuxResources{},
		},
	}
	s.Domainname = in.Config.Domainname
	if err := namespaces(s, in, hc); err != nil {
		return nil, err
	}
	if !hc.Privileged {
		s.Linux.MaskedPaths = append([]string(nil), MaskedPaths...)
		s.Linux.ReadonlyPaths = append([]string(nil), ReadonlyPaths...)
	}
	if err := resources(s.Linux.Resources, &hc.Resources, d); err != nil {
		return nil, err
	}
	if err := userMounts(s, in, hc, d); err != nil {
		return nil, err
	}
	if err := seccomp(s, hc, sec, d.Seccomp); err != nil {
		return nil, err
	}
	return s, nil
}

func hostname(in *Input) string {
	if in.HostConfig != nil && in.HostConfig.NetworkMode == "host" {
		h, _ := os.Hostname()
		return h
	}
	if in.Config.Hostname != "" {
		return in.Config.Hostname
	}
	if len(in.ID) > 12 {
		return in.ID[:12]
	}
	return in.ID
}

// hostnameRE is RFC 1123's host name, as Docker checks it: the name goes
// into /etc/hosts, where a newline would add entries of the caller's
// choosing.
var hostnameRE = regexp.MustCompile(`^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$`)

// checkHostname refuses what sethostname(2) and setdomainname(2) would
// (over 64 bytes) and what is not a host name.
func checkHostname(host, domain string) error {
	for _, n := range []struct{ what, v string }{{"hostname", host}, {"domainname", domain}} {
		if n.v == "" {
			continue
		}
		if len(n.v) > 64 || !hostnameRE.MatchString(n.v) {
			return fmt.Errorf("invalid %s %q: want an RFC 1123 name of at most 64 bytes: %w", n.what, n.v, errdefs.ErrInvalid)
		}
	}
	return nil
}

type securityOpts struct {
	// seccompFile is "" (default), "unconfined", the profile's JSON (as
	// the docker CLI sends it: it reads the file itself) or a path on the
	// daemon's host.
	seccompFile string
	noNewPrivs  *bool
}

func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		switch {
		case k == "seccomp" && ok && v != "":
			s.seccompFile = v
		case k == "no-new-privileges":
			on := true
			if ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return s, fmt.Errorf("security-opt %q: %w", o, errdefs.ErrInvalid)
				}
				on = b
			}
			s.noNewPrivs = &on
		case k == "apparmor" || k == "label":
			return s, fmt.Errorf("security-opt %q: this host has no AppArmor or SELinux: %w", o, errdefs.ErrInvalid)
		default:
			return s, fmt.Errorf("unknown security-opt %q: %w", o, errdefs.ErrInvalid)
		}
	}
	return s, nil
}

func process(in *Input, hc *types.HostConfig, d *Defaults, sec securityOpts) (*specs.Process, error) {
	args, err := Args(in.Config, in.Image)
	if err != nil {
		return nil, err
	}
	if hc.Init != nil && *hc.Init {
		if d.InitPath == "" {
			return nil, fmt.Errorf("--init: no init binary configured: %w", errdefs.ErrInvalid)
		}
		args = append([]string{InitDest, "--"}, args...)
	}
	user, err := ResolveUser(in.Rootfs, firstNonEmpty(in.Config.User, in.Image.User))
	if err != nil {
		return nil, err
	}
	if !hc.Privileged && hc.UsernsMode != "host" && (user.UID >= usernsSize || user.GID >= usernsSize) {
		return nil, fmt.Errorf("user %d:%d is outside the %d ids of the container's user namespace: %w", user.UID, user.GID, usernsSize, errdefs.ErrInvalid)
	}
	caps, err := Capabilities(hc.Privileged, hc.CapAdd, hc.CapDrop)
	if err != nil {
		return nil, err
	}
	if d.HostCaps != nil && (hc.Privileged || hasAll(hc.CapAdd)) {
		caps = intersect(caps, d.HostCaps)
	}
	nnp := !hc.Privileged
	if sec.noNewPrivs != nil {
		nnp = *sec.noNewPrivs
	}
	p := &specs.Process{
		Terminal: in.Config.Tty,
		User:     user,
		Args:     args,
		Env:      Env(in.Image.Env, in.Config.Env, hostname(in), in.Config.Tty),
		Cwd:      firstNonEmpty(in.Config.WorkingDir, in.Image.WorkingDir, "/"),
		Capabilities: &specs.LinuxCapabilities{
			Bounding: caps, Effective: caps, Permitted: caps,
		},
		NoNewPrivileges: nnp,
		// Always written: the container's init is a child of the monitor
		// and would otherwise inherit its score (an operator protecting
		// the monitor with a negative one would protect every tenant).
		OOMScoreAdj: new(int),
	}
	if user.UID != 0 {
		// A non-root user keeps no effective or permitted capabilities
		// (exec drops them), as with Docker.
		p.Capabilities.Effective, p.Capabilities.Permitted = nil, nil
	}
	if err := checkExecSize(p.Args, p.Env, hc.Ulimits); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(p.Cwd) {
		return nil, fmt.Errorf("working directory %q is not absolute: %w", p.Cwd, errdefs.ErrInvalid)
	}
	for _, u := range hc.Ulimits {
		name := "RLIMIT_" + strings.ToUpper(u.Name)
		if !knownRlimits[name] {
			return nil, fmt.Errorf("unknown ulimit %q: %w", u.Name, errdefs.ErrInvalid)
		}
		if u.Soft > u.Hard {
			return nil, fmt.Errorf("ulimit %s: soft %d above hard %d: %w", u.Name, u.Soft, u.Hard, errdefs.ErrInvalid)
		}
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: name, Hard: uint64(u.Hard), Soft: uint64(u.Soft)})
	}
	return p, nil
}

// maxArgStrlen is the kernel's MAX_ARG_STRLEN (32 pages, with the NUL):
// execve refuses any longer argument or environment string.
const maxArgStrlen = 32 * 4096

// checkExecSize refuses, at create rather than as an E2BIG at start, a
// command line or environment execve would refuse: a string over
// MAX_ARG_STRLEN, or a total over a quarter of the stack limit (8 MiB
// unless --ulimit stack says otherwise; the kernel caps it at 6 MiB).
func checkExecSize(args, env []string, ulimits []*types.Ulimit) error {
	stack := int64(8 << 20)
	for _, u := range ulimits {
		if strings.EqualFold(u.Name, "stack") {
			stack = u.Soft
			if stack < 0 { // unlimited
				stack = 1 << 62
			}
		}
	}
	limit := min(max(stack/4, maxArgStrlen), 6<<20)
	total := int64(0)
	for _, set := range []struct {
		what string
		s    []string
	}{{"argument", args}, {"environment variable", env}} {
		for _, v := range set.s {
			if len(v)+1 > maxArgStrlen {
				name, _, _ := strings.Cut(v, "=")
				if set.what == "argument" || len(name) > 64 {
					name = name[:min(len(name), 64)] + "…"
				}
				return fmt.Errorf("%s %s is %d bytes, over the kernel's limit of %d: %w", set.what, name, len(v), maxArgStrlen-1, errdefs.ErrInvalid)
			}
			total += int64(len(v)) + 1 + 8 // the string and its pointer
		}
	}
	if total > limit {
		return fmt.Errorf("command line and environment total %d bytes, over the kernel's limit of %d: %w", total, limit, errdefs.ErrInvalid)
	}
	return nil
}

var knownRlimits = map[string]bool{
	"RLIMIT_AS": true, "RLIMIT_CORE": true, "RLIMIT_CPU": true, "RLIMIT_DATA": true, "RLIMIT_FSIZE": true,
	"RLIMIT_LOCKS": true, "RLIMIT_MEMLOCK": true, "RLIMIT_MSGQUEUE": true, "RLIMIT_NICE": true,
	"RLIMIT_NOFILE": true, "RLIMIT_NPROC": true, "RLIMIT_RSS": true, "RLIMIT_RTPRIO": true,
	"RLIMIT_RTTIME": true, "RLIMIT_SIGPENDING": true, "RLIMIT_STACK": true,
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Args is the process's command line: Docker's rules for merging the
// request's entrypoint and cmd with the image's.
func Args(c *types.Config, img imagespec.ImageConfig) ([]string, error) {
	var args []string
	if c.Entrypoint != nil {
		// An explicit entrypoint (even "") drops the image's cmd.
		args = append(args, c.Entrypoint...)
		if len(args) == 1 && args[0] == "" {
			args = nil
		}
		args = append(args, c.Cmd...)
	} else {
		args = append(args, img.Entrypoint...)
		if len(c.Cmd) > 0 {
			args = append(args, c.Cmd...)
		} else {
			args = append(args, img.Cmd...)
		}
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalid)
	}
	return args, nil
}

// Env merges the image's environment with the request's (request wins),
// adding PATH, HOSTNAME and TERM as Docker does.
func Env(image, request []string, hostname string, tty bool) []string {
	base := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + hostname}
	if tty {
		base = append(base, "TERM=xterm")
	}
	return MergeEnv(MergeEnv(base, image), request)
}

// MergeEnv returns base with over's variables set (over wins, order kept).
// An entry without "=" ("-e NAME" with NAME unset in the client) is dropped,
// as Docker does.
func MergeEnv(base, over []string) []string {
	var order []string
	vals := map[string]string{}
	for _, kv := range append(append([]string(nil), base...), over...) {
		if !strings.Contains(kv, "=") {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = kv
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, vals[k])
	}
	return out
}

// AllCaps are the capabilities --privileged and "ALL" grant.
var AllCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

func normCap(c string) (string, error) {
	c = strings.ToUpper(c)
	if c == "ALL" {
		return c, nil
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	for _, k := range AllCaps {
		if k == c {
			return c, nil
		}
	}
	return "", fmt.Errorf("unknown capability %q: %w", c, errdefs.ErrInvalid)
}

// Capabilities applies --cap-add/--cap-drop to Docker's defaults (drop
// first, then add, as Docker; "ALL" works on both sides).
func Capabilities(privileged bool, add, drop []string) ([]string, error) {
	if privileged {
		return append([]string(nil), AllCaps...), nil
	}
	set := map[string]bool{}
	for _, c := range DefaultCaps {
		set[c] = true
	}
	for _, c := range drop {
		n, err := normCap(c)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			set = map[string]bool{}
		}
		delete(set, n)
	}
	for _, c := range add {
		n, err := normCap(c)
		if err != nil {
			return nil, err
		}
		if n == "ALL" {
			for _, k := range AllCaps {
				set[k] = true
			}
		}
		if n != "ALL" {
			set[n] = true
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

func hasAll(list []string) bool {
	for _, c := range list {
		if strings.EqualFold(c, "ALL") {
			return true
		}
	}
	return false
}

func intersect(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	out := []string{}
	for _, x := range a {
		if in[x] {
			out = append(out, x)
		}
	}
	return out
}

// ownNetSysctls are Docker's (20.10+) for a container with a network
// namespace of its own: any user may bind ports below 1024 there, which
// images that run a server as a non-root user rely on. The namespace is
// the container's alone, so the host's ports are not concerned.
func ownNetSysctls(s *specs.Spec) {
	if s.Linux.Sysctl == nil {
		s.Linux.Sysctl = map[string]string{}
	}
	s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
}

// usernsSize is the number of ids --userns=auto maps.
const usernsSize = 65536

func namespaces(s *specs.Spec, in *Input, hc *types.HostConfig) error {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
	}
	switch mode := hc.NetworkMode; {
	case mode == "host":
		// No network namespace. The UTS namespace stays private, holding
		// the host's name (see hostname).
	case in.NetNSPath != "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.NetNSPath})
		ownNetSysctls(s)
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		ownNetSysctls(s)
	}
	if in.UsernsBase != 0 {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: in.UsernsBase, Size: usernsSize}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	}
	s.Linux.Namespaces = ns
	return nil
}

func resources(r *specs.LinuxResources, req *types.Resources, d *Defaults) error {
	if req.Memory < 0 || req.NanoCPUs < 0 || req.CPUShares < 0 {
		return fmt.Errorf("negative resource limit: %w", errdefs.ErrInvalid)
	}
	if req.Memory > 0 || req.MemorySwap != 0 {
		r.Memory = &specs.LinuxMemory{}
		if req.Memory > 0 {
			r.Memory.Limit = &req.Memory
		}
		switch {
		case req.MemorySwap == -1:
			unlimited := int64(-1)
			r.Memory.Swap = &unlimited
		case req.MemorySwap > 0:
			if req.Memory == 0 {
				return fmt.Errorf("--memory-swap needs --memory: %w", errdefs.ErrInvalid)
			}
			if req.MemorySwap < req.Memory {
				return fmt.Errorf("--memory-swap %d is below --memory %d: %w", req.MemorySwap, req.Memory, errdefs.ErrInvalid)
			}
			swap := req.MemorySwap
			r.Memory.Swap = &swap
		case req.Memory > 0:
			// Docker's default: as much swap as memory.
			swap := 2 * req.Memory
			r.Memory.Swap = &swap
		}
	}
	if req.NanoCPUs > 0 || req.CPUShares > 0 || req.CpusetCpus != "" || req.CPUQuota > 0 {
		r.CPU = &specs.LinuxCPU{Cpus: req.CpusetCpus}
		if req.CPUShares > 0 {
			sh := uint64(req.CPUShares)
			r.CPU.Shares = &sh
		}
		if req.NanoCPUs > 0 {
			if req.CPUQuota > 0 {
				return fmt.Errorf("--cpus and --cpu-quota conflict: %w", errdefs.ErrInvalid)
			}
			period := uint64(100000)
			quota := req.NanoCPUs * int64(period) / 1e9
			r.CPU.Period, r.CPU.Quota = &period, &quota
		} else if req.CPUQuota > 0 {
			period := uint64(req.CPUPeriod)
			if period == 0 {
				period = 100000
			}
			r.CPU.Period, r.CPU.Quota = &period, &req.CPUQuota
		}
	}
	limit := d.PidsLimit
	if req.PidsLimit != nil {
		limit = *req.PidsLimit
	}
	if limit > 0 {
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	return nil
}

func seccomp(s *specs.Spec, hc *types.HostConfig, sec securityOpts, cache *SeccompCache) error {
	switch {
	case hc.Privileged || sec.seccompFile == "unconfined":
		return nil
	case sec.seccompFile != "":
		body, name := []byte(sec.seccompFile), "(inline)"
		if !strings.HasPrefix(strings.TrimSpace(sec.seccompFile), "{") {
			var err error
			if body, err = os.ReadFile(sec.seccompFile); err != nil {
				return fmt.Errorf("seccomp profile: %v: %w", err, errdefs.ErrInvalid)
			}
			name = sec.seccompFile
		}
		p, err := mobyseccomp.LoadProfile(string(body), s)
		if err != nil {
			return fmt.Errorf("seccomp profile %s: %v: %w", name, err, errdefs.ErrInvalid)
		}
		s.Linux.Seccomp = p
	default:
		// Docker's default profile, conditioned on the capabilities just
		// computed (CAP_SYS_ADMIN opens more syscalls, and so on).
		p, err := cache.defaultProfile(s)
		if err != nil {
			return fmt.Errorf("default seccomp profile: %w", err)
		}
		s.Linux.Seccomp = p
	}
	return nil
}

// SeccompCache holds Docker's default seccomp profile as built for each
// bounding capability set, the only part of the spec it depends on (beside
// the kernel version, which does not change under a running daemon). The
// profiles it returns are shared: read only.
type SeccompCache struct {
	mu       sync.Mutex
	profiles map[string]*specs.LinuxSeccomp // by sorted bounding set
}

func (c *SeccompCache) defaultProfile(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	if c == nil {
		return mobyseccomp.GetDefaultProfile(s)
	}
	var caps []string
	if s.Process != nil && s.Process.Capabilities != nil {
		caps = slices.Clone(s.Process.Capabilities.Bounding)
	}
	slices.Sort(caps)
	key := strings.Join(caps, ",")
	c.mu.Lock()
	p, ok := c.profiles[key]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := mobyseccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.profiles == nil {
		c.profiles = make(map[string]*specs.LinuxSeccomp)
	}
	c.profiles[key] = p
	c.mu.Unlock()
	return p, nil
}
