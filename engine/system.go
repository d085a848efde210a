package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/estiba/estiba/engine/api"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/engine/store"
	"golang.org/x/sys/unix"
)

func (d *Daemon) readSpec(id string) (*specT, error) {
	b, err := os.ReadFile(filepath.Join(d.containerDir(id), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("spec of %s: %w", id, err)
	}
	var s specT
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("spec of %s: %w", id, err)
	}
	return &s, nil
}

// List is docker ps.
func (d *Daemon) List(ctx context.Context, opts api.ListOptions) ([]types.ContainerSummary, error) {
	all, err := d.store.List()
	if err != nil {
		return nil, err
	}
	out := []types.ContainerSummary{}
	for _, c := range all {
		if c.Phase != store.PhaseReady {
			continue
		}
		running := c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused || c.State.Status == store.StatusRestarting
		if !opts.All && len(opts.Filters) == 0 && !running {
			continue
		}
		ok, err := matches(c, opts.Filters)
		if err != nil {
			return nil, err
		}
		if ok {
			ok, err = d.createdBetween(c, opts.Filters)
			if err != nil {
				return nil, err
			}
		}
		if !ok || (!opts.All && !running && opts.Filters["status"] == nil) {
			continue
		}
		out = append(out, summary(c))
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

// createdBetween applies docker ps's before and since filters: created
// before (after) the named container.
func (d *Daemon) createdBetween(c *store.Container, f map[string][]string) (bool, error) {
	for _, key := range []string{"before", "since"} {
		for _, v := range f[key] {
			ref, err := d.get(v)
			if err != nil {
				return false, err
			}
			if (key == "before" && !c.Created.Before(ref.Created)) || (key == "since" && !c.Created.After(ref.Created)) {
				return false, nil
			}
		}
	}
	return true, nil
}

// matches applies docker ps filters: id, name, label, status, exited,
// ancestor, health, volume, network, is-task (before and since: see
// createdBetween).
func matches(c *store.Container, f map[string][]string) (bool, error) {
	for key, vals := range f {
		ok := false
		for _, v := range vals {
			switch key {
			case "before", "since":
				ok = true
			case "health":
				h := "none"
				if c.State.Health != nil {
					h = c.State.Health.Status
				}
				switch v {
				case "starting", "healthy", "unhealthy", "none":
				default:
					return false, fmt.Errorf("invalid filter 'health=%s': %w", v, errdefs.ErrInvalid)
				}
				ok = ok || h == v
			case "volume":
				for _, b := range c.HostConfig.Binds {
					src, rest, _ := strings.Cut(b, ":")
					dst, _, _ := strings.Cut(rest, ":")
					ok = ok || src == v || dst == v
				}
			case "network":
				ok = ok || c.HostConfig.NetworkMode == v
			case "is-task":
				ok = ok || v == "false"
			case "id":
				ok = ok || strings.HasPrefix(c.ID, v)
			case "name":
				ok = ok || strings.Contains(c.Name, strings.TrimPrefix(v, "/"))
			case "status":
				switch v {
				case "created", "restarting", "running", "removing", "paused", "exited", "dead":
				default:
					return false, fmt.Errorf("invalid filter 'status=%s': %w", v, errdefs.ErrInvalid)
				}
				ok = ok || string(c.State.Status) == v
			case "exited":
				n, err := strconv.Atoi(v)
				if err != nil {
					return false, fmt.Errorf("exited filter %q: %w", v, errdefs.ErrInvalid)
				}
				ok = ok || (c.State.Status == store.StatusExited && c.State.ExitCode == n)
			case "ancestor":
				ok = ok || c.Image == v || strings.HasPrefix(c.ImageID, v) || strings.TrimPrefix(c.ImageID, "sha256:") == v
			case "label":
				k, want, hasVal := strings.Cut(v, "=")
				got, has := c.Config.Labels[k]
				ok = ok || (has && (!hasVal || got == want))
			default:
				return false, fmt.Errorf("invalid filter %q: %w", key, errdefs.ErrInvalid)
			}
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func summary(c *store.Container) types.ContainerSummary {
	s := types.ContainerSummary{ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Image, ImageID: c.ImageID,
		Command: strings.Join(append([]string{c.Path}, c.Args...), " "), Created: c.Created.Unix(), Labels: c.Config.Labels,
		State: string(c.State.Status), Status: statusText(c), Ports: []types.Port{}, Mounts: []types.MountPoint{}}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = c.HostConfig.NetworkMode
	return s
}

// statusText is docker ps's STATUS column.
func statusText(c *store.Container) string {
	switch c.State.Status {
	case store.StatusRunning, store.StatusPaused:
		s := "Up " + humanDuration(time.Since(c.State.StartedAt))
		if c.State.Status == store.StatusPaused {
			s += " (Paused)"
		}
		if h := c.State.Health; h != nil {
			s += " (" + h.Status + ")"
		}
		return s
	case store.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", c.State.ExitCode, humanDuration(time.Since(c.State.FinishedAt)))
	case store.StatusExited:
		if c.State.FinishedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, humanDuration(time.Since(c.State.FinishedAt)))
	case store.StatusCreated:
		return "Created"
	}
	return string(c.State.Status)
}

func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case s < 3600:
		if s/60 == 1 {
			return "About a minute"
		}
		return fmt.Sprintf("%d minutes", s/60)
	case s < 48*3600:
		if s/3600 == 1 {
			return "About an hour"
		}
		return fmt.Sprintf("%d hours", s/3600)
	default:
		return fmt.Sprintf("%d days", s/86400)
	}
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.Format(time.RFC3339Nano)
}

// Inspect is docker inspect.
func (d *Daemon) Inspect(ctx context.Context, ref string) (*types.ContainerJSON, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	st := c.State
	hc := c.HostConfig
	cfg := c.Config
	j := &types.ContainerJSON{ID: c.ID, Created: timeString(c.Created), Path: c.Path, Args: c.Args, Image: c.ImageID,
		LogPath: d.logPath(c.ID), Name: "/" + c.Name, RestartCount: c.RestartCount, Driver: "overlay", Platform: "linux",
		HostConfig: &hc, Config: &cfg, Mounts: []types.MountPoint{},
		NetworkSettings: &types.NetworkSettings{Ports: map[string][]types.PortBinding{}, Networks: map[string]any{}},
		State: &types.ContainerState{Status: string(st.Status), Running: st.Status == store.StatusRunning || st.Status == store.StatusPaused,
			Paused: st.Status == store.StatusPaused, Restarting: st.Status == store.StatusRestarting, Dead: st.Status == store.StatusDead,
			Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error, StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt),
			Health: st.Health}}
	if j.Args == nil {
		j.Args = []string{}
	}
	if n := st.Network; n != nil {
		j.NetworkSettings.Ports = n.Ports
		j.NetworkSettings.IPAddress, j.NetworkSettings.Gateway = n.IP, n.Gateway
		j.NetworkSettings.Networks[n.Network] = map[string]string{"IPAddress": n.IP, "Gateway": n.Gateway}
		d.addNetworks(j.NetworkSettings.Networks, c.ID)
	}
	return j, nil
}

// Top lists the container's processes with ps.
func (d *Daemon) Top(ctx context.Context, ref, psArgs string) (*types.TopResponse, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	if c.State.Status != store.StatusRunning && c.State.Status != store.StatusPaused {
		return nil, fmt.Errorf("container %s is not running: %w", c.Name, errdefs.ErrConflict)
	}
	resp, err := d.mon.Call(ctx, &monitor.Request{Op: monitor.OpPids, ID: c.ID})
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", c.Name, err)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return nil, fmt.Errorf("ps %s: %v: %w", psArgs, err, errdefs.ErrInvalid)
	}
	return parsePS(string(out), resp.Pids)
}

func parsePS(out string, pids []int) (*types.TopResponse, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return nil, fmt.Errorf("ps output has no PID column: %w", errdefs.ErrInvalid)
	}
	top := &types.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		pid, _ := strconv.Atoi(f[col])
		if !slices.Contains(pids, pid) {
			continue
		}
		// The last column (the command) may hold spaces.
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		top.Processes = append(top.Processes, row)
	}
	return top, nil
}

// Stats reports CPU, memory and pids from the container's cgroup (v1
// controllers or cgroup2, whichever holds it).
func (d *Daemon) Stats(ctx context.Context, ref string, stream bool, w io.Writer) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	var prev *statsJSON
	for {
		s := readStats(c)
		s.Networks = d.netStats(c.ID)
		if prev != nil {
			s.PreCPUStats = prev.CPUStats
			s.PreRead = prev.Read
		}
		if err := enc.Encode(s); err != nil || !stream {
			return nil
		}
		prev = s
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
		if c, err = d.store.Get(c.ID); err != nil {
			return nil
		}
	}
}

type cpuStats struct {
	CPUUsage struct {
		TotalUsage  uint64   `json:"total_usage"`
		PercpuUsage []uint64 `json:"percpu_usage,omitempty"`
	} `json:"cpu_usage"`
	SystemUsage uint64 `json:"system_cpu_usage"`
	OnlineCPUs  uint32 `json:"online_cpus"`
}

type statsJSON struct {
	Read        string   `json:"read"`
	PreRead     string   `json:"preread"`
	Name        string   `json:"name"`
	ID          string   `json:"id"`
	CPUStats    cpuStats `json:"cpu_stats"`
	PreCPUStats cpuStats `json:"precpu_stats"`
	MemoryStats struct {
		Usage uint64            `json:"usage"`
		Limit uint64            `json:"limit"`
		Stats map[string]uint64 `json:"stats"`
	} `json:"memory_stats"`
	PidsStats struct {
		Current uint64 `json:"current"`
	} `json:"pids_stats"`
	BlkioStats struct{}       `json:"blkio_stats"`
	Networks   map[string]any `json:"networks,omitempty"`
}

func readStats(c *store.Container) *statsJSON {
	s := &statsJSON{Read: time.Now().UTC().Format(time.RFC3339Nano), PreRead: "0001-01-01T00:00:00Z", Name: "/" + c.Name, ID: c.ID}
	s.MemoryStats.Stats = map[string]uint64{}
	running := c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused
	s.CPUStats.OnlineCPUs = uint32(runtime.NumCPU())
	s.CPUStats.SystemUsage = systemCPU()
	if !running {
		return s
	}
	rel := "estiba/" + c.ID
	v1 := func(ctl, file string) uint64 { return readUint(filepath.Join("/sys/fs/cgroup", ctl, rel, file)) }
	v2 := filepath.Join("/sys/fs/cgroup", rel)
	if fileExists(filepath.Join(v2, "cgroup.procs")) && fileExists(filepath.Join(v2, "memory.current")) {
		s.MemoryStats.Usage = readUint(filepath.Join(v2, "memory.current"))
		s.MemoryStats.Limit = readUint(filepath.Join(v2, "memory.max"))
		s.PidsStats.Current = readUint(filepath.Join(v2, "pids.current"))
		s.CPUStats.CPUUsage.TotalUsage = readKey(filepath.Join(v2, "cpu.stat"), "usage_usec") * 1000
	} else {
		s.MemoryStats.Usage = v1("memory", "memory.usage_in_bytes")
		s.MemoryStats.Limit = v1("memory", "memory.limit_in_bytes")
		s.PidsStats.Current = v1("pids", "pids.current")
		s.CPUStats.CPUUsage.TotalUsage = v1("cpu,cpuacct", "cpuacct.usage")
	}
	if s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > 1<<62 {
		s.MemoryStats.Limit = memTotal()
	}
	return s
}

func readUint(p string) uint64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func readKey(p, key string) uint64 {
	f, err := os.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// systemCPU is the host's CPU time in nanoseconds, from /proc/stat.
func systemCPU() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	var total uint64
	for _, v := range strings.Fields(sc.Text())[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
	}
	return total * 1e9 / 100 // USER_HZ is 100 on Linux
}

func memTotal() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// Info is docker info.
func (d *Daemon) Info(ctx context.Context) (*types.Info, error) {
	list, err := d.store.List()
	if err != nil {
		return nil, err
	}
	info := &types.Info{ID: "estiba", Driver: "overlay", DockerRootDir: d.cfg.Root, LoggingDriver: "json-file",
		CgroupDriver: "cgroupfs", CgroupVersion: cgroupVersion(), OSType: "linux", Architecture: runtime.GOARCH,
		NCPU: runtime.NumCPU(), MemTotal: int64(memTotal()), ServerVersion: d.cfg.Version, DefaultRuntime: "estiba",
		Runtimes:        map[string]struct{ Path string }{"estiba": {Path: "in-process"}},
		SecurityOptions: []string{"name=seccomp,profile=builtin", "name=userns", "name=cgroupns", "name=no-new-privileges"},
		Warnings:        []string{}}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
		info.Name = unix.ByteSliceToString(uts.Nodename[:])
	}
	info.OperatingSystem = osName()
	for _, c := range list {
		info.Containers++
		switch c.State.Status {
		case store.StatusRunning:
			info.ContainersRunning++
		case store.StatusPaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
	}
	if imgs, err := d.images.List(ctx); err == nil {
		info.Images = len(imgs)
	}
	if d.networks == nil {
		info.Warnings = append(info.Warnings, "WARNING: networking is not wired in this build: containers get a private network namespace with loopback only")
	}
	return info, nil
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	return "1"
}

func osName() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// DiskUsage is docker system df.
func (d *Daemon) DiskUsage(ctx context.Context) (*types.DiskUsage, error) {
	du := &types.DiskUsage{Images: []types.ImageSummary{}, Containers: []types.ContainerSummary{}, Volumes: []any{}, BuildCache: []any{}}
	imgs, err := d.images.List(ctx)
	if err == nil {
		du.Images = imgs
		for _, i := range imgs {
			du.LayersSize += i.Size
		}
	}
	list, err := d.store.List()
	if err != nil {
		return nil, err
	}
	for _, c := range list {
		du.Containers = append(du.Containers, summary(c))
	}
	return du, nil
}

// eventBus fans events out to /events clients and keeps the last 1024
// for since=.
type eventBus struct {
	mu     sync.Mutex
	recent []types.Event
	subs   map[chan types.Event]struct{}
}

func newEventBus() *eventBus { return &eventBus{subs: map[chan types.Event]struct{}{}} }

func (b *eventBus) publish(ev types.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recent = append(b.recent, ev)
	if len(b.recent) > 1024 {
		b.recent = b.recent[1:]
	}
	for ch := range b.subs {
		select {
		case ch <- ev:
		default: // a stalled client loses events rather than stall us
		}
	}
}

func (b *eventBus) container(action string, c *store.Container) {
	b.containerAttrs(action, c, nil)
}

func (b *eventBus) containerExit(c *store.Container, code int) {
	b.containerAttrs("die", c, map[string]string{"exitCode": strconv.Itoa(code)})
}

func (b *eventBus) containerAttrs(action string, c *store.Container, extra map[string]string) {
	now := time.Now()
	ev := types.Event{Type: "container", Action: action, Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
		Status: action, ID: c.ID, From: c.Image}
	ev.Actor.ID = c.ID
	ev.Actor.Attributes = map[string]string{"name": c.Name, "image": c.Image}
	for k, v := range c.Config.Labels {
		ev.Actor.Attributes[k] = v
	}
	for k, v := range extra {
		ev.Actor.Attributes[k] = v
	}
	b.publish(ev)
}

// Events streams events (past ones from since, then live until until).
func (d *Daemon) Events(ctx context.Context, since, until time.Time, filters map[string][]string) (<-chan types.Event, error) {
	out := make(chan types.Event, 256)
	live := make(chan types.Event, 256)
	b := d.events
	b.mu.Lock()
	var past []types.Event
	if !since.IsZero() {
		for _, ev := range b.recent {
			if ev.TimeNano >= since.UnixNano() && (until.IsZero() || ev.TimeNano <= until.UnixNano()) {
				past = append(past, ev)
			}
		}
	}
	b.subs[live] = struct{}{}
	b.mu.Unlock()
	go func() {
		defer close(out)
		defer func() { b.mu.Lock(); delete(b.subs, live); b.mu.Unlock() }()
		for _, ev := range past {
			if eventMatches(ev, filters) {
				out <- ev
			}
		}
		var deadline <-chan time.Time
		if !until.IsZero() {
			deadline = time.After(time.Until(until))
		}
		for {
			select {
			case ev := <-live:
				if eventMatches(ev, filters) {
					out <- ev
				}
			case <-deadline:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func eventMatches(ev types.Event, f map[string][]string) bool {
	for key, vals := range f {
		ok := false
		for _, v := range vals {
			switch key {
			case "type":
				ok = ok || ev.Type == v
			case "event":
				ok = ok || ev.Action == v || strings.HasPrefix(ev.Action, v+":")
			case "container":
				ok = ok || strings.HasPrefix(ev.Actor.ID, v) || ev.Actor.Attributes["name"] == v
			case "image":
				ok = ok || ev.Actor.Attributes["image"] == v
			case "label":
				k, want, hasVal := strings.Cut(v, "=")
				got, has := ev.Actor.Attributes[k]
				ok = ok || (has && (!hasVal || got == want))
			default:
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

var _ api.System = (*Daemon)(nil)
