package container

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/estiba/estiba/runtime/initproc"
)

// ExecOptions are exec's choices besides the process.
type ExecOptions struct {
	Stdio
	PidFile       string
	ConsoleSocket string
	PreserveFDs   int
}

// procNS names each namespace type under /proc/<pid>/ns.
var procNS = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// Exec starts p in a running (or created) container: in its namespaces and
// cgroup, with its seccomp profile. The caller waits with Container.Wait.
func (r *Runtime) Exec(id string, p *specs.Process, o ExecOptions) (c *Container, err error) {
	rec, err := r.load(id)
	if err != nil {
		return nil, err
	}
	switch st := r.status(rec); st {
	case string(specs.StateRunning), string(specs.StateCreated):
	default:
		return nil, fmt.Errorf("container %q is %s: cannot exec: %w", id, st, ErrState)
	}
	if err := validateProcess(p); err != nil {
		return nil, err
	}
	if p.Terminal && o.ConsoleSocket == "" {
		return nil, fmt.Errorf("terminal is set: --console-socket is required: %w", ErrInvalid)
	}
	spec, err := r.fullSpec(rec)
	if err != nil {
		return nil, err
	}
	plan := &nsPlan{}
	mntNS := ""
	for _, ns := range spec.Linux.Namespaces {
		path := fmt.Sprintf("/proc/%d/ns/%s", rec.Pid, procNS[ns.Type])
		if ns.Type == specs.MountNamespace {
			// Joined by the child after its exec: the runtime binary
			// (and, if dynamic, its ELF interpreter) must be found in
			// the host's mount namespace, never by a path the
			// container controls.
			mntNS = path
			continue
		}
		// User and time namespaces make plan.start go through the
		// raw-fork trampoline (trampoline.go), which joins the user
		// namespace after the others and becomes its root.
		plan.join = append(plan.join, nsJoin{ns.Type, path, int(nsFlags[ns.Type])})
	}
	cg, err := r.cgroupManager(rec)
	if err != nil {
		return nil, err
	}
	var undo undoChain
	done := false
	defer func() {
		if !done {
			undo.run()
		}
	}()
	parentSock, childSock, err := socketPair(unix.SOCK_STREAM)
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()
	cmd, console, releaseExe, err := r.execCmd(p, o, childSock)
	if err != nil {
		return nil, err
	}
	defer releaseExe()
	if console != nil {
		defer console.Close()
	}
	if mntNS != "" && plan.needsTrampoline() && staticELF(cmd.Path) {
		// The trampoline execs init by fd: a static runtime binary (as
		// `make build` makes it) needs nothing from the host's mount
		// namespace, so the trampoline joins the container's too, and
		// init, dumpable as the container's root until initproc.Main
		// clears it, never runs in the host's mount namespace.
		plan.join = append(plan.join, nsJoin{specs.MountNamespace, mntNS, unix.CLONE_NEWNS})
		mntNS = ""
	}
	mntFD := 0
	if mntNS != "" {
		f, err := os.Open(mntNS)
		if err != nil {
			return nil, fmt.Errorf("container %q: mount namespace: %w", id, err)
		}
		defer f.Close()
		mntFD = 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	if !rec.alive() {
		return nil, fmt.Errorf("container %q exited: %w", id, ErrState)
	}
	if err := plan.start(cmd); err != nil {
		return nil, fmt.Errorf("start exec process: %w", err)
	}
	undo.add(func() { cmd.Process.Kill(); cmd.Wait() })
	childSock.Close()
	if err := cg.Apply(cmd.Process.Pid); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	cfg := &initproc.Config{
		ID: id, Bundle: rec.Bundle, Spec: spec, Exec: true, Process: p,
		State:       *r.specState(rec),
		PreserveFDs: o.PreserveFDs,
		MountNSFD:   mntFD,
		TimerSlack:  r.TimerSlack,
	}
	if console != nil {
		cfg.ConsoleFD = 3 + o.PreserveFDs + 1
	}
	if err := r.converse(cmd, parentSock, cfg, nil); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	done = true
	return &Container{ID: id, Process: cmd.Process, cmd: cmd}, nil
}

func (r *Runtime) execCmd(p *specs.Process, o ExecOptions, sync *osFile) (*execCmdT, *osFile, func(), error) {
	var console *osFile
	if p.Terminal {
		var err error
		if console, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, nil, nil, err
		}
	}
	stdio, closeNull, err := devNullStdio(o.Stdio)
	if err != nil {
		if console != nil {
			console.Close()
		}
		return nil, nil, nil, err
	}
	exe, releaseExe, err := r.initExe(r.Exe, exeFloor(stdio, o.PreserveFDs, []*os.File{sync, console}))
	if err != nil {
		closeNull()
		if console != nil {
			console.Close()
		}
		return nil, nil, nil, err
	}
	cmd := initCmd(exe, r.Version, stdio, o.PreserveFDs, sync, console)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: p.Terminal}
	return cmd, console, func() { releaseExe(); closeNull() }, nil
}

// staticELF reports whether the binary at path has no ELF interpreter
// (PT_INTERP), which would be looked up in the mount namespace of its
// execve. It reads the program headers itself: debug/elf would link
// compress/zlib, debug/dwarf and internal/zstd into every runtime command
// for this one check, with their package initializers.
func staticELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var h [64]byte
	if _, err := f.ReadAt(h[:], 0); err != nil || string(h[:4]) != "\x7fELF" {
		return false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 { // EI_DATA: ELFDATA2MSB
		bo = binary.BigEndian
	}
	var off int64
	var size, n int
	switch h[4] { // EI_CLASS
	case 1:
		off, size, n = int64(bo.Uint32(h[28:])), int(bo.Uint16(h[42:])), int(bo.Uint16(h[44:]))
	case 2:
		off, size, n = int64(bo.Uint64(h[32:])), int(bo.Uint16(h[54:])), int(bo.Uint16(h[56:]))
	default:
		return false
	}
	if size < 4 || n > 4096 {
		return false
	}
	ph := make([]byte, size*n)
	if _, err := f.ReadAt(ph, off); err != nil {
		return false
	}
	for i := 0; i < n; i++ {
		if bo.Uint32(ph[i*size:]) == 3 { // p_type PT_INTERP
			return false
		}
	}
	return true
}
