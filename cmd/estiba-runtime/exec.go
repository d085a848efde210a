package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/estiba/estiba/runtime/container"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (a *app) exec(args []string) error {
	fs := flags("exec")
	process := fs.String("process", "", "process.json describing the process")
	fs.StringVar(process, "p", "", "process.json describing the process")
	tty := fs.Bool("tty", false, "allocate a pty")
	fs.BoolVar(tty, "t", false, "allocate a pty")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process")
	pidFile := fs.String("pid-file", "", "write the process pid here")
	console := fs.String("console-socket", "", "unix socket receiving the pty master")
	cwd := fs.String("cwd", "", "working directory")
	user := fs.String("user", "", "uid[:gid]")
	fs.StringVar(user, "u", "", "uid[:gid]")
	var env, capsAdd, groups stringList
	fs.Var(&env, "env", "KEY=value (repeatable)")
	fs.Var(&env, "e", "KEY=value (repeatable)")
	fs.Var(&capsAdd, "cap", "add a capability (repeatable)")
	fs.Var(&capsAdd, "c", "add a capability (repeatable)")
	fs.Var(&groups, "additional-gids", "additional gid (repeatable)")
	fs.Var(&groups, "g", "additional gid (repeatable)")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	label := fs.String("process-label", "", "SELinux label (unsupported)")
	apparmor := fs.String("apparmor", "", "AppArmor profile")
	preserve := fs.Int("preserve-fds", 0, "pass this many fds from 3 on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return errUsage("exec [flags] <id> [command...]")
	}
	id := fs.Arg(0)
	var p *specs.Process
	var err error
	if *process != "" {
		if p, err = readProcess(*process); err != nil {
			return err
		}
	} else {
		if fs.NArg() < 2 {
			return fmt.Errorf("exec: no command: give one or --process")
		}
		if p, err = a.baseProcess(id); err != nil {
			return err
		}
		p.Args = fs.Args()[1:]
		p.Terminal = *tty
	}
	if *cwd != "" {
		p.Cwd = *cwd
	}
	p.Env = append(p.Env, env...)
	if *user != "" {
		if err := parseUser(*user, &p.User); err != nil {
			return err
		}
	}
	for _, g := range groups {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return fmt.Errorf("--additional-gids %q: %w", g, err)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
	}
	if len(capsAdd) > 0 {
		addCaps(p, capsAdd)
	}
	if *noNewPrivs {
		p.NoNewPrivileges = true
	}
	if *label != "" {
		p.SelinuxLabel = *label
	}
	if *apparmor != "" {
		p.ApparmorProfile = *apparmor
	}
	var relay chan<- *os.Process
	if !*detach {
		relay = forwardSignals()
	}
	c, err := a.rt.Exec(id, p, container.ExecOptions{
		Stdio:         container.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
		PidFile:       *pidFile,
		ConsoleSocket: *console,
		PreserveFDs:   *preserve,
	})
	if err != nil {
		return err
	}
	if *detach {
		return nil
	}
	relay <- c.Process
	code, err := c.Wait()
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCodeError(code)
	}
	return nil
}

func readProcess(path string) (*specs.Process, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read process: %w", err)
	}
	var p specs.Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &p, nil
}

// baseProcess starts an exec'd process from the container's own process
// settings, as runc does: same env, user, capabilities, rlimits.
func (a *app) baseProcess(id string) (*specs.Process, error) {
	spec, err := a.rt.Spec(id)
	if err != nil {
		return nil, err
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("container %q has no process to base exec on: use --process", id)
	}
	p := *spec.Process
	p.Args = nil
	p.Env = append([]string(nil), p.Env...)
	return &p, nil
}

func parseUser(s string, u *specs.User) error {
	uidS, gidS, hasGid := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidS, 10, 32)
	if err != nil {
		return fmt.Errorf("--user %q: uid must be numeric: %w", s, err)
	}
	u.UID = uint32(uid)
	if hasGid {
		gid, err := strconv.ParseUint(gidS, 10, 32)
		if err != nil {
			return fmt.Errorf("--user %q: gid must be numeric: %w", s, err)
		}
		u.GID = uint32(gid)
	}
	return nil
}

func addCaps(p *specs.Process, add []string) {
	if p.Capabilities == nil {
		p.Capabilities = &specs.LinuxCapabilities{}
	}
	c := p.Capabilities
	for _, n := range add {
		n = strings.ToUpper(n)
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		c.Bounding = append(c.Bounding, n)
		c.Effective = append(c.Effective, n)
		c.Permitted = append(c.Permitted, n)
		c.Inheritable = append(c.Inheritable, n)
		c.Ambient = append(c.Ambient, n)
	}
}
