package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/estiba/estiba/engine/api"
	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/errdefs"
	"github.com/estiba/estiba/engine/monitor"
	"github.com/estiba/estiba/engine/restart"
	"github.com/estiba/estiba/engine/specgen"
	"github.com/estiba/estiba/engine/store"
	"github.com/estiba/estiba/runtime/cgroups"
	"golang.org/x/sys/unix"
)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// recordCreator is the store's Create.
type recordCreator interface {
	Create(c *store.Container, userns bool, firstID, maxID uint32) error
}

// createRecord stores c's record. A generated name that another container
// has is drawn again from c's id (randomName), a few times.
func createRecord(s recordCreator, c *store.Container, generated, userns bool, firstID, maxID uint32) error {
	err := s.Create(c, userns, firstID, maxID)
	for try := 1; generated && errors.Is(err, store.ErrNameInUse) && try < 8; try++ {
		c.Name = randomName(c.ID, try)
		err = s.Create(c, userns, firstID, maxID)
	}
	return err
}

// Create records a container: validated config, image resolved, rootfs
// snapshot prepared. Nothing runs yet.
func (d *Daemon) Create(ctx context.Context, name string, req *types.ContainerCreateRequest) (*types.ContainerCreateResponse, error) {
	hc := req.HostConfig
	if hc == nil {
		hc = &types.HostConfig{}
	}
	if err := d.validate(name, &req.Config, hc); err != nil {
		return nil, err
	}
	imageID, imgCfg, err := d.images.Resolve(ctx, req.Image)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", req.Image, err)
	}
	id := newID()
	generated := name == ""
	if generated {
		name = randomName(id, 0)
	}
	args, err := specgen.Args(&req.Config, imgCfg)
	if err != nil {
		return nil, err
	}
	c := &store.Container{ID: id, Name: strings.TrimPrefix(name, "/"), Created: time.Now().UTC(), Image: req.Image, ImageID: imageID,
		Config: req.Config, HostConfig: *hc, Path: args[0], Args: args[1:], Phase: store.PhaseReady,
		State: store.State{Status: store.StatusCreated}}
	mergeImageDefaults(&c.Config, imgCfg)
	userns := !hc.Privileged && hc.UsernsMode != "host"
	// The directory and rootfs, and the record, complete, in one commit
	// each, side by side: the two stores' fdatasyncs overlap (a record
	// written before them and marked ready after cost a second commit of
	// its own). The answer waits for the record only: the disk serializes
	// the two stores' flushes, and the snapshot's commit ended ~0.4 ms
	// after the record's here, which a `run` spent waiting. Whatever needs
	// the snapshot waits for it instead (rootfsReady), and an error of it
	// is a start's. A crash before the record is committed leaves a
	// directory or a snapshot without a record, which the sweep at the
	// next start removes (sweepOrphans); one after it, a record without
	// its snapshot, which repair prepares again (see cutShort).
	p := &pendingRootfs{done: make(chan struct{})}
	go func() {
		// Not the request's context: the commit may outlive the answer.
		p.err = d.prepare(context.WithoutCancel(ctx), c) // reads c.ID and c.ImageID only
		close(p.done)
	}()
	err = createRecord(d.store, c, generated, userns, d.cfg.UsernsFirstID, d.cfg.UsernsMaxID)
	if err != nil {
		<-p.done
	} else {
		select {
		case <-p.done:
			err = p.err
		default:
			d.mu.Lock()
			d.rootfsPending[c.ID] = p
			d.mu.Unlock()
		}
	}
	if err != nil {
		d.destroy(context.Background(), c)
		return nil, err
	}
	if c.UsernsBase != 0 {
		// The start that usually follows at once then finds the range's
		// namespace made (~0.5 ms of its idmapped mount).
		d.images.WarmIDMap(IDRange{HostID: c.UsernsBase, Size: store.UsernsSize})
	}
	d.events.container("create", c)
	return &types.ContainerCreateResponse{ID: id, Warnings: []string{}}, nil
}

func (d *Daemon) validate(name string, cfg *types.Config, hc *types.HostConfig) error {
	if name != "" && !validName.MatchString(name) {
		return fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalid)
	}
	if cfg.Image == "" {
		return fmt.Errorf("no image specified: %w", errdefs.ErrInvalid)
	}
	if err := d.checkBandwidth(hc); err != nil {
		return err
	}
	if _, err := restart.Validate(hc.RestartPolicy.Name, hc.RestartPolicy.MaximumRetryCount); err != nil {
		return err
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != "no" {
		return fmt.Errorf("can't create 'AutoRemove' container with restart policy: %w", errdefs.ErrInvalid)
	}
	if hc.UsernsMode != "" && hc.UsernsMode != "host" && hc.UsernsMode != "auto" {
		return fmt.Errorf("userns mode %q is not supported (auto or host): %w", hc.UsernsMode, errdefs.ErrInvalid)
	}
	if cfg.StopSignal != "" {
		if _, err := parseSignal(cfg.StopSignal); err != nil {
			return err
		}
	}
	if err := d.checkNetwork(hc); err != nil {
		return err
	}
	if hc.LogConfig.Type != "" && hc.LogConfig.Type != "json-file" {
		return fmt.Errorf("log driver %q is not supported (json-file only): %w", hc.LogConfig.Type, errdefs.ErrInvalid)
	}
	// The spec generator is the judge of everything else: run it once on
	// a dry input so bad flags fail at create, as with Docker.
	_, err := specgen.Generate(&specgen.Input{ID: "validate", Config: &types.Config{Cmd: append(append([]string{"x"}, cfg.Entrypoint...), cfg.Cmd...), Env: cfg.Env, Hostname: cfg.Hostname, Domainname: cfg.Domainname, User: userIfNumeric(cfg.User), WorkingDir: cfg.WorkingDir},
		HostConfig: dryHostConfig(hc)}, &specgen.Defaults{PidsLimit: d.cfg.PidsLimit, InitPath: d.cfg.InitPath, VolumesDir: filepath.Join(d.cfg.Root, "volumes"),
		Seccomp: &d.seccomp})
	return err
}

func userIfNumeric(u string) string {
	if u == "" || strings.Trim(u, "0123456789:") == "" {
		return u
	}
	return ""
}

// dryHostConfig drops binds (their volumes are made at start, not at a
// validation).
func dryHostConfig(hc *types.HostConfig) *types.HostConfig {
	c := *hc
	c.Binds, c.Mounts = nil, nil
	return &c
}

func (d *Daemon) checkNetwork(hc *types.HostConfig) error {
	mode := hc.NetworkMode
	switch {
	case mode == "host" || mode == "none":
		if len(hc.PortBindings) > 0 {
			return fmt.Errorf("published ports are discarded with network mode %q: %w", mode, errdefs.ErrInvalid)
		}
		return nil
	case strings.HasPrefix(mode, "container:"):
		return nil
	case d.networks != nil:
		if hc.PublishAllPorts {
			return fmt.Errorf("-P is not supported, publish ports with -p: %w", errdefs.ErrNotImplemented)
		}
		return nil
	case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
		return fmt.Errorf("publishing ports (-p) needs the network layer, which is not wired in this build: %w", errdefs.ErrNotImplemented)
	case mode == "" || mode == "default":
		return nil // a private network namespace with loopback only
	default:
		return fmt.Errorf("network %q needs the network layer, which is not wired in this build (use --network none or host): %w", mode, errdefs.ErrNotImplemented)
	}
}

func mergeImageDefaults(c *types.Config, img imageConfig) {
	if c.WorkingDir == "" {
		c.WorkingDir = img.WorkingDir
	}
	if c.User == "" {
		c.User = img.User
	}
	if c.StopSignal == "" {
		c.StopSignal = img.StopSignal
	}
	if len(c.Entrypoint) == 0 && c.Entrypoint == nil {
		c.Entrypoint = img.Entrypoint
		if len(c.Cmd) == 0 {
			c.Cmd = img.Cmd
		}
	}
	c.Env = specgen.MergeEnv(img.Env, c.Env)
	for k, v := range img.Labels {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		if _, ok := c.Labels[k]; !ok {
			c.Labels[k] = v
		}
	}
}

// prepare makes the container's directory and rootfs snapshot.
func (d *Daemon) prepare(ctx context.Context, c *store.Container) error {
	// 0711: the container's init runs as the container's root, a host id
	// of its own with a user namespace, and must reach its rootfs mount
	// point and /etc files here; it must not list or read the rest.
	for _, dir := range []string{d.containerDir(c.ID), d.rootfsDir(c.ID)} {
		if err := os.Mkdir(dir, 0o711); err != nil && !os.IsExist(err) {
			return fmt.Errorf("container dir: %w", err)
		}
	}
	if err := d.images.PrepareRootfs(ctx, c.ImageID, c.ID); err != nil {
		return fmt.Errorf("rootfs of %s: %w", c.Image, err)
	}
	return nil
}

// pendingRootfs is a create's rootfs snapshot whose commit may outlive the
// create's answer (see Create).
type pendingRootfs struct {
	done chan struct{}
	err  error // set before done is closed
}

// rootfsReady waits for container id's rootfs snapshot if its create
// answered before the snapshot was committed, and returns the error of
// that (the container then has no rootfs: every start fails with it until
// the container is removed).
func (d *Daemon) rootfsReady(id string) error {
	d.mu.Lock()
	p := d.rootfsPending[id]
	d.mu.Unlock()
	if p == nil {
		return nil
	}
	<-p.done
	if p.err == nil {
		d.mu.Lock()
		delete(d.rootfsPending, id)
		d.mu.Unlock()
	}
	return p.err
}

// destroy removes everything of a container that is not running.
func (d *Daemon) destroy(ctx context.Context, c *store.Container) error {
	return d.destroyWith(ctx, c, d.removeFiles(ctx, c.ID), false)
}

// destroyWith finishes a destruction whose files are going (r). The
// record goes once they are gone, so a removal cut short is found and
// finished by repair; gone says it went already, in the commit that
// decided the removal (the sweep at start then finishes a removal cut
// short: see goesWithExit). The monitor's runtime delete (cgroups) needs
// no such order, since the monitor finishes it on its own (or redoes it
// when it starts again): it only has to be over before the caller returns.
func (d *Daemon) destroyWith(ctx context.Context, c *store.Container, r *removal, gone bool) error {
	if r.monDone == nil {
		r.deleteInMonitor(ctx, d, c.ID)
	}
	err := r.wait()
	if !gone {
		if derr := d.store.Delete(c.ID); derr != nil && !errors.Is(derr, errdefs.ErrNotFound) {
			err = errors.Join(err, derr)
		}
	}
	<-r.monDone
	return err
}

// removal is a container's files going, side by side (see removeFiles),
// and the monitor's delete, once started (monDone).
type removal struct {
	wg      sync.WaitGroup
	errs    [3]error
	monDone chan struct{}
}

// deleteInMonitor starts the monitor's delete (monitorDelete) beside the
// removal of the files.
func (r *removal) deleteInMonitor(ctx context.Context, d *Daemon, id string) {
	r.monDone = make(chan struct{})
	go func() {
		defer close(r.monDone)
		d.monitorDelete(ctx, id)
	}()
}

// removeFiles unmounts the container's rootfs, then starts removing its
// snapshot (a commit of the image store) and its directory, which are
// independent: the removal costs the longer of the two, not their sum.
func (d *Daemon) removeFiles(ctx context.Context, id string) *removal {
	// A snapshot still being committed would come back after its removal,
	// and its directory after ours. A failed one is forgotten here (a
	// made one, by rootfsReady).
	if d.rootfsReady(id) != nil {
		d.mu.Lock()
		delete(d.rootfsPending, id)
		d.mu.Unlock()
	}
	r := &removal{}
	r.errs[0] = d.images.UnmountRootfs(d.rootfsDir(id))
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		if err := d.images.RemoveRootfs(ctx, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			r.errs[1] = err
		}
	}()
	go func() {
		defer r.wg.Done()
		r.errs[2] = os.RemoveAll(d.containerDir(id))
	}()
	return r
}

// wait returns once the files are gone.
func (r *removal) wait() error {
	r.wg.Wait()
	return errors.Join(r.errs[:]...)
}

// monitorDelete waits for the monitor's runtime delete of the container's
// last run (its cgroup) and drops the monitor's record of it: a removal
// leaves nothing behind. A monitor from before OpDelete deleted before it
// announced the exit: forgetting is enough there.
func (d *Daemon) monitorDelete(ctx context.Context, id string) {
	_, err := d.mon.Call(ctx, &monitor.Request{Op: monitor.OpDelete, ID: id})
	if err != nil && strings.Contains(err.Error(), "unknown op") {
		d.mon.Call(ctx, &monitor.Request{Op: monitor.OpForget, ID: id})
	}
}

func (d *Daemon) get(ref string) (*store.Container, error) {
	id, err := d.store.Resolve(ref)
	if err != nil {
		return nil, err
	}
	return d.store.Get(id)
}

// Start runs the container.
func (d *Daemon) Start(ctx context.Context, ref string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	switch c.State.Status {
	case store.StatusRunning, store.StatusPaused:
		return fmt.Errorf("container %s is already running: %w", c.Name, errdefs.ErrNotModified)
	case store.StatusRemoving, store.StatusDead:
		return fmt.Errorf("container %s is %s: %w", c.Name, c.State.Status, errdefs.ErrConflict)
	}
	if c.Phase != store.PhaseReady {
		return fmt.Errorf("container %s is still being created: %w", c.Name, errdefs.ErrConflict)
	}
	d.cancelRestart(c.ID)
	err = d.start(ctx, c, false)
	if err != nil && c.HostConfig.AutoRemove {
		// --rm: a container that cannot start is not left behind (Docker).
		d.remove(context.Background(), c.ID)
	}
	return err
}

func (d *Daemon) start(ctx context.Context, c *store.Container, isRestart bool) (err error) {
	d.mu.Lock()
	if d.starting[c.ID] {
		d.mu.Unlock()
		return fmt.Errorf("container %s is starting: %w", c.Name, errdefs.ErrConflict)
	}
	d.starting[c.ID] = true
	d.mu.Unlock()
	if isRestart {
		// A stop may have come between the restart timer and here.
		if cur, err := d.store.Get(c.ID); err != nil || cur.State.Status != store.StatusRestarting {
			d.mu.Lock()
			delete(d.starting, c.ID)
			d.mu.Unlock()
			return nil
		}
	}
	// done is set when the run's exit was recorded with the run itself:
	// what follows that exit runs once the start is over, as an exit
	// applied after it would (a restart it schedules must not find the
	// container still starting).
	var done func()
	defer func() {
		d.mu.Lock()
		delete(d.starting, c.ID)
		st, early := d.early[c.ID]
		delete(d.early, c.ID)
		d.mu.Unlock()
		if done != nil {
			done()
		}
		if early {
			d.applyExit(context.Background(), st)
		}
	}()
	if err := d.rootfsReady(c.ID); err != nil {
		return err
	}
	if err := d.mountRootfs(ctx, c); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			d.images.UnmountRootfs(d.rootfsDir(c.ID))
			d.setError(c.ID, err)
		}
	}()
	spec, err := d.generate(ctx, c)
	if err != nil {
		return err
	}
	if err := ensureMountTargets(d.rootfsDir(c.ID), spec.Mounts, c.UsernsBase); err != nil {
		return err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.containerDir(c.ID), "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	size, files := d.logOpts(c)
	network := d.networkOf(c)
	joins := d.hasNetworks(c)
	// Without a hold, the run is recorded while the runtime finishes the
	// start (~4 ms here: the rootfs, the cgroups, the last program), from
	// the moment the init exists: the commit (two fdatasyncs) leaves the
	// start's critical path. A start that fails after it undoes it.
	var pre *runCommit
	resp, err := d.mon.Start(ctx, &monitor.Request{Op: monitor.OpStart, ID: c.ID, Bundle: d.containerDir(c.ID), LogPath: d.logPath(c.ID),
		LogMaxSize: size, LogMaxFiles: files, Tty: c.Config.Tty, OpenStdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce,
		Hold: joins, AutoRemove: c.HostConfig.AutoRemove}, func(pid int) { pre = d.commitRun(c.ID, pid, isRestart) })
	if err != nil {
		if pre != nil {
			d.undoRun(c.ID, pre, isRestart)
		}
		return fmt.Errorf("start container %s: %w", c.Name, err)
	}
	var net *store.NetState
	if joins {
		// The init waits (created, not started) while its namespace is
		// plumbed: the user's process never runs without its network.
		// Endpoints of a run whose end the daemon missed (a crash) would
		// make the attaches conflict: they go first.
		d.networks.Teardown(ctx, c.ID)
		if network != "" {
			net, err = d.setupNetwork(ctx, c, spec, network, resp.Pid)
		}
		if err == nil {
			err = d.rejoin(ctx, c, resp.Pid)
		}
		if err == nil {
			_, err = d.mon.Call(ctx, &monitor.Request{Op: monitor.OpRelease, ID: c.ID})
		}
		if err != nil {
			d.mon.Call(ctx, &monitor.Request{Op: monitor.OpKill, ID: c.ID, Signal: int(unix.SIGKILL), All: true})
			d.networks.Teardown(ctx, c.ID)
			return err
		}
	}
	// The init has pivoted into its own copy of the rootfs mount (the
	// network's /etc files were written through the host's). The host's
	// copy would only lengthen the host's mount table, which every later
	// start copies (CLONE_NEWNS), unmounts again (the old root) and reads
	// (mountinfo): each start got slower with every running container.
	// The container's copy goes with its mount namespace.
	if err := d.images.UnmountRootfs(d.rootfsDir(c.ID)); err != nil {
		d.log.Warn("unmount rootfs on the host", "id", c.ID, "err", err)
	}
	if pre != nil {
		// An exit that came in meanwhile waits in d.early: the deferred
		// call above applies it once the start is over.
		<-pre.done
		if pre.err != nil {
			return pre.err
		}
		d.events.container("start", pre.rec)
		d.startHealth(pre.rec)
		return nil
	}
	// With a hold (the network is in the record), or a monitor without
	// the early answer, the run is recorded now. A run as short as
	// `run --rm true` has often ended already: its exit goes into the same
	// commit as the run (two fdatasyncs less), and the record never says
	// running.
	st, early := d.takeEarly(c.ID)
	var ex exitRecord
	// rec, not c: the deferred calls above need c even when this fails.
	rec, gone, err := d.store.UpdateOrDelete(c.ID, func(c *store.Container) (bool, error) {
		c.State = store.State{Status: store.StatusRunning, Pid: resp.Pid, StartedAt: time.Now().UTC(), Health: healthStarting(c), Network: net}
		if isRestart {
			c.RestartCount++
		}
		ex = exitRecord{}
		if early {
			ex = recordExit(c, st)
		}
		return ex.applied && goesWithExit(c), nil
	})
	if err != nil {
		if early {
			d.putEarly(st) // applied on its own once the start is over
		}
		return err
	}
	d.events.container("start", rec)
	if early {
		done = func() { d.afterExit(context.Background(), rec, st, ex, nil, nil, gone) }
		return nil
	}
	d.startHealth(rec)
	return nil
}

// runCommit is the commit of a run's record (running, its pid), made
// while the runtime finishes the start.
type runCommit struct {
	done chan struct{} // closed when the commit is over
	pid  int
	prev store.State // the state it replaced, for undoRun
	rec  *store.Container
	err  error
}

// commitRun starts recording that container id runs as pid.
func (d *Daemon) commitRun(id string, pid int, isRestart bool) *runCommit {
	r := &runCommit{done: make(chan struct{}), pid: pid}
	go func() {
		defer close(r.done)
		r.rec, r.err = d.store.Update(id, func(c *store.Container) error {
			r.prev = c.State
			c.State = store.State{Status: store.StatusRunning, Pid: pid, StartedAt: time.Now().UTC(), Health: healthStarting(c)}
			if isRestart {
				c.RestartCount++
			}
			return nil
		})
	}()
	return r
}

// undoRun puts back the state that commitRun r replaced, after a start
// that failed once the init existed (the caller then records the error).
func (d *Daemon) undoRun(id string, r *runCommit, isRestart bool) {
	<-r.done
	if r.err != nil {
		return
	}
	d.store.Update(id, func(c *store.Container) error {
		if c.State.Status != store.StatusRunning || c.State.Pid != r.pid {
			return nil // an exit of that init was recorded already
		}
		c.State = r.prev
		if isRestart {
			c.RestartCount--
		}
		return nil
	})
}

// takeEarly takes the exit of container id that came in during its start,
// if any.
func (d *Daemon) takeEarly(id string) (monitor.Status, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.early[id]
	delete(d.early, id)
	return st, ok
}

// putEarly gives back an exit takeEarly took.
func (d *Daemon) putEarly(st monitor.Status) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.early[st.ID] = st
}

// networkOf is the network a run attaches to ("" for none): an explicit
// --network, or else Docker's default bridge, as `docker run` users expect
// (egress through NAT, published ports). --network none gives a private
// namespace with loopback only.
func (d *Daemon) networkOf(c *store.Container) string {
	mode := c.HostConfig.NetworkMode
	switch {
	case d.networks == nil || mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:"):
		return ""
	case c.PrimaryDisconnected:
		return ""
	case mode == "" || mode == "default":
		return "bridge"
	}
	return mode
}

func (d *Daemon) setupNetwork(ctx context.Context, c *store.Container, spec *specT, network string, pid int) (*store.NetState, error) {
	info, err := d.networks.Setup(ctx, c.ID, c.Name, pid, network, c.HostConfig.PortBindings)
	if err != nil {
		return nil, fmt.Errorf("network of %s: %w", c.Name, err)
	}
	if err := d.applyBandwidth(ctx, c.ID, c.HostConfig.Bandwidth); err != nil {
		return nil, fmt.Errorf("network of %s: %w", c.Name, err)
	}
	// The init has not run the user's process yet: it reads the network's
	// /etc/hosts and /etc/resolv.conf from its first instruction.
	files := map[string][]byte{}
	for name, b := range map[string][]byte{"hosts": info.Hosts, "resolv.conf": info.ResolvConf} {
		if len(b) > 0 {
			files[name] = b
		}
	}
	if err := specgen.WriteEtcFiles(spec, d.containerDir(c.ID), files, c.UsernsBase); err != nil {
		return nil, fmt.Errorf("network of %s: %w", c.Name, err)
	}
	return &store.NetState{Network: info.Network, IP: info.IP, Gateway: info.Gateway, Ports: info.Ports}, nil
}

func (d *Daemon) setError(id string, err error) {
	d.store.Update(id, func(c *store.Container) error {
		c.State.Error = err.Error()
		if c.State.Status == store.StatusRestarting {
			c.State.Status = store.StatusExited
		}
		return nil
	})
}

func (d *Daemon) mountRootfs(ctx context.Context, c *store.Container) error {
	// A rootfs left mounted by a crash is unmounted first: mounting twice
	// would stack overlays.
	d.images.UnmountRootfs(d.rootfsDir(c.ID))
	var ids *IDRange
	if c.UsernsBase != 0 {
		ids = &IDRange{HostID: c.UsernsBase, Size: store.UsernsSize}
	}
	if err := d.images.MountRootfs(ctx, c.ID, d.rootfsDir(c.ID), ids); err != nil {
		return fmt.Errorf("rootfs of %s: %w", c.Name, err)
	}
	return nil
}

func (d *Daemon) generate(ctx context.Context, c *store.Container) (*specT, error) {
	// The image's config went into c.Config at create (entrypoint, cmd,
	// env, user, workdir), so the spec takes no image defaults again.
	in := &specgen.Input{ID: c.ID, Config: &c.Config, HostConfig: &c.HostConfig, Rootfs: d.rootfsDir(c.ID),
		ContainerDir: d.containerDir(c.ID), UsernsBase: c.UsernsBase, CgroupsPath: path.Join(cgroups.EngineParent, c.ID)}
	if mode := c.HostConfig.NetworkMode; strings.HasPrefix(mode, "container:") {
		other, err := d.get(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, err
		}
		if other.State.Status != store.StatusRunning {
			return nil, fmt.Errorf("container %s is not running: %w", other.Name, errdefs.ErrConflict)
		}
		in.NetNSPath = fmt.Sprintf("/proc/%d/ns/net", other.State.Pid)
	}
	return specgen.Generate(in, d.specDefaults())
}

// Stop signals the container with its stop signal, then SIGKILL after the
// timeout, and waits for its exit.
func (d *Daemon) Stop(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	d.cancelRestart(c.ID)
	if c, err = d.settle(ctx, c.ID); err != nil {
		return err
	}
	if c.State.Status != store.StatusRunning && c.State.Status != store.StatusPaused {
		if c.State.Status == store.StatusRestarting {
			return nil
		}
		return fmt.Errorf("container %s is not running: %w", c.Name, errdefs.ErrNotModified)
	}
	return d.stop(ctx, c, timeout, signal)
}

// settle marks the container stopped by the user once no start is in
// flight, so a restart its policy already began either finishes first (and
// is then stopped as a running container) or sees the mark and gives up
// (see start). A container waiting to restart is exited from here on.
func (d *Daemon) settle(ctx context.Context, id string) (*store.Container, error) {
	for {
		d.mu.Lock()
		if !d.starting[id] {
			c, err := d.store.Update(id, func(c *store.Container) error {
				c.State.StoppedByUser = true
				if c.State.Status == store.StatusRestarting {
					c.State.Status = store.StatusExited
				}
				return nil
			})
			d.mu.Unlock()
			return c, err
		}
		d.mu.Unlock()
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (d *Daemon) stop(ctx context.Context, c *store.Container, timeout *int, signal string) error {
	if signal == "" {
		signal = c.Config.StopSignal
	}
	sig, err := parseSignal(signal)
	if err != nil {
		return err
	}
	t := 10
	if c.Config.StopTimeout != nil {
		t = *c.Config.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	exited := d.waitFor(c.ID, "not-running")
	defer d.dropWaiter(c.ID, exited)
	if _, err := d.store.Update(c.ID, func(c *store.Container) error { c.State.StoppedByUser = true; return nil }); err != nil {
		return err
	}
	if c.State.Status == store.StatusPaused {
		d.mon.Call(ctx, &monitor.Request{Op: monitor.OpResume, ID: c.ID})
	}
	if err := d.signal(ctx, c.ID, sig); err != nil {
		// It may have died on its own an instant ago, its exit not applied
		// yet (the runtime then no longer knows it): wait for that exit.
		select {
		case <-exited.ch:
			return nil
		case <-time.After(2 * time.Second):
			return err
		}
	}
	var grace <-chan time.Time
	if t >= 0 {
		grace = time.After(time.Duration(t) * time.Second)
	}
	select {
	case <-exited.ch:
		d.events.container("stop", c)
		return nil
	case <-grace:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := d.signal(ctx, c.ID, unix.SIGKILL); err != nil {
		select {
		case <-exited.ch:
			return nil
		case <-time.After(2 * time.Second):
			return err
		}
	}
	select {
	case <-exited.ch:
		d.events.container("stop", c)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Daemon) signal(ctx context.Context, id string, sig unix.Signal) error {
	if _, err := d.mon.Call(ctx, &monitor.Request{Op: monitor.OpKill, ID: id, Signal: int(sig), All: sig == unix.SIGKILL}); err != nil {
		return fmt.Errorf("signal %d to %s: %w", sig, id, err)
	}
	return nil
}

// Kill sends a signal (SIGKILL by default).
func (d *Daemon) Kill(ctx context.Context, ref, signal string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if signal == "" {
		signal = "KILL"
	}
	sig, err := parseSignal(signal)
	if err != nil {
		return err
	}
	if c.State.Status != store.StatusRunning && c.State.Status != store.StatusPaused {
		return fmt.Errorf("cannot kill container: %s: container %s is not running: %w", ref, c.ID, errdefs.ErrConflict)
	}
	stopSig, _ := parseSignal(c.Config.StopSignal)
	if sig == unix.SIGKILL || sig == stopSig {
		// A kill that ends the container is a user stop: policies other
		// than on-failure's count do not bring it back.
		d.store.Update(c.ID, func(c *store.Container) error { c.State.StoppedByUser = true; return nil })
	}
	if err := d.signal(ctx, c.ID, sig); err != nil {
		return err
	}
	d.events.container("kill", c)
	return nil
}

// Restart is stop then start.
func (d *Daemon) Restart(ctx context.Context, ref string, timeout *int) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	d.cancelRestart(c.ID)
	if c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused {
		if err := d.stop(ctx, c, timeout, ""); err != nil {
			return err
		}
	}
	if c, err = d.store.Get(c.ID); err != nil {
		return err
	}
	if err := d.start(ctx, c, false); err != nil {
		return err
	}
	d.events.container("restart", c)
	return nil
}

// Remove deletes a container; a running one only with force (SIGKILL).
func (d *Daemon) Remove(ctx context.Context, ref string, force bool) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	d.cancelRestart(c.ID)
	if c.State.Status == store.StatusRunning || c.State.Status == store.StatusPaused {
		if !force {
			return fmt.Errorf("cannot remove container %q: container is %s: stop the container before removing or force remove: %w", "/"+c.Name, c.State.Status, errdefs.ErrConflict)
		}
		zero := 0
		if err := d.stop(ctx, c, &zero, "KILL"); err != nil {
			return err
		}
	}
	return d.remove(ctx, c.ID)
}

// remove deletes a container that does not run. Its record goes first,
// in one commit, then its files (the record's commit and the snapshot's
// overlap): a kill -9 in between leaves files without a record, which the
// sweep at the next start removes (sweepOrphans). Its network endpoints
// went with its exit.
func (d *Daemon) remove(ctx context.Context, id string) error {
	c, gone, err := d.store.UpdateOrDelete(id, func(c *store.Container) (bool, error) {
		switch c.State.Status {
		case store.StatusRemoving:
			return false, fmt.Errorf("removal of container %s is already in progress: %w", c.Name, errdefs.ErrConflict)
		case store.StatusRunning, store.StatusPaused:
			// Not expected (callers stop it first); the record stays
			// until the files are gone, for repair to find.
			c.State.Status = store.StatusRemoving
			return false, nil
		}
		c.State.Status = store.StatusRemoving
		return true, nil
	})
	if err != nil {
		return err
	}
	return d.finishRemove(ctx, c, d.removeFiles(ctx, c.ID), gone)
}

// finishRemove destroys a container whose record says StatusRemoving (or
// is gone already) and whose files are going (r).
func (d *Daemon) finishRemove(ctx context.Context, c *store.Container, r *removal, gone bool) error {
	if err := d.destroyWith(ctx, c, r, gone); err != nil {
		return fmt.Errorf("remove %s: %w", c.Name, err)
	}
	d.events.container("destroy", c)
	d.notify(c.ID, "removed", c.State.ExitCode)
	return nil
}

// Pause freezes the container.
func (d *Daemon) Pause(ctx context.Context, ref string) error {
	return d.freeze(ctx, ref, monitor.OpPause, store.StatusRunning, store.StatusPaused, "pause")
}

// Unpause thaws it.
func (d *Daemon) Unpause(ctx context.Context, ref string) error {
	return d.freeze(ctx, ref, monitor.OpResume, store.StatusPaused, store.StatusRunning, "unpause")
}

func (d *Daemon) freeze(ctx context.Context, ref, op string, from, to store.Status, event string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if c.State.Status != from {
		return fmt.Errorf("container %s is %s, not %s: %w", c.Name, c.State.Status, from, errdefs.ErrConflict)
	}
	if _, err := d.mon.Call(ctx, &monitor.Request{Op: op, ID: c.ID}); err != nil {
		return fmt.Errorf("%s %s: %w", event, c.Name, err)
	}
	c, err = d.store.Update(c.ID, func(c *store.Container) error {
		if c.State.Status == from {
			c.State.Status = to
		}
		return nil
	})
	if err == nil {
		d.events.container(event, c)
	}
	return err
}

// Prune removes every stopped container.
func (d *Daemon) Prune(ctx context.Context) (*types.PruneReport, error) {
	list, err := d.store.List()
	if err != nil {
		return nil, err
	}
	rep := &types.PruneReport{}
	for _, c := range list {
		if c.State.Status == store.StatusExited || c.State.Status == store.StatusCreated || c.State.Status == store.StatusDead {
			if err := d.remove(ctx, c.ID); err == nil {
				rep.ContainersDeleted = append(rep.ContainersDeleted, c.ID)
			}
		}
	}
	return rep, nil
}

var _ api.Containers = (*Daemon)(nil)
