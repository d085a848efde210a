// Command estiba-runtime is estiba's OCI runtime with runc's command line,
// so that podman, conmon and containerd can drive it. Each subcommand is a
// thin layer over runtime/container.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/estiba/estiba/internal/timerslack"

	"github.com/estiba/estiba/runtime/cgroups"
	"github.com/estiba/estiba/runtime/container"
	"github.com/estiba/estiba/runtime/initproc"
)

var version = "dev"

// app is one invocation: global flags and where errors are reported.
type app struct {
	rt        *container.Runtime
	log       io.Writer
	logFormat string
	debug     bool
}

type command struct {
	usage string
	run   func(a *app, args []string) error
}

var commands = map[string]command{
	"create":   {"create [flags] <id>", (*app).create},
	"start":    {"start <id>", (*app).start},
	"run":      {"run [flags] <id>", (*app).runCmd},
	"state":    {"state <id>", (*app).state},
	"kill":     {"kill [--all] <id> [signal]", (*app).kill},
	"delete":   {"delete [--force] <id>", (*app).delete},
	"exec":     {"exec [flags] <id> [command...]", (*app).exec},
	"list":     {"list [--format table|json] [--quiet]", (*app).list},
	"ps":       {"ps [--format table|json] <id> [ps args...]", (*app).ps},
	"pause":    {"pause <id>", (*app).pause},
	"resume":   {"resume <id>", (*app).resume},
	"update":   {"update [flags] <id>", (*app).update},
	"events":   {"events [--stats] [--interval d] <id>", (*app).events},
	"features": {"features", (*app).features},
	"spec":     {"spec [--rootless] [--bundle dir]", (*app).spec},
	"checkpoint": {"checkpoint <id>", func(*app, []string) error {
		return errors.New("checkpoint is not implemented (no CRIU support)")
	}},
	"restore": {"restore <id>", func(*app, []string) error {
		return errors.New("restore is not implemented (no CRIU support)")
	}},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == initproc.Arg {
		initproc.Main(version)
		return
	}
	// Two Ps at most: a create sets up the rootfs on one thread (in the
	// init stub's namespaces) while another makes the state directory and
	// the cgroup, and each mostly waits in system calls: with one P the
	// second waited for the first to block long enough for sysmon to hand
	// the P over, and the two ran one after the other. More Ps would only
	// add threads woken to spin for work. (With the Go init, one P was
	// ~13% less CPU; with the stub, two cost no more CPU and ~2 ms less
	// per `run`.)
	runtime.GOMAXPROCS(2)
	// No prefault.Heap any more: it mapped ~1.75 MiB ahead (0.6 ms) when
	// a page fault cost ~15 µs (shadow paging); at ~2 µs a fault against
	// ~1.3 µs a page populated, the pages `run` never touches cost more
	// than the faults saved: `run` of `true` took 9.75 -> 9.17 and
	// 11.43 -> 10.74 ms without it (two interleaved A/Bs of 10 batches of
	// 20, CPU 9.80 -> 9.36 and 11.60 -> 11.27 ms).
	// Containers get the caller's slack back (see internal/timerslack).
	slack := timerslack.Widen()
	os.Exit(realMain(os.Args[1:], slack))
}

// realMain runs the command in argv; timerSlack is the caller's timer
// slack, for the container processes (0: theirs is left as it is).
func realMain(argv []string, timerSlack uint64) int {
	a := &app{rt: &container.Runtime{TimerSlack: timerSlack}, logFormat: "text"}
	fs := flag.NewFlagSet("estiba-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	root := fs.String("root", "/run/estiba-runtime", "state directory")
	logPath := fs.String("log", "", "log file (default stderr)")
	fs.StringVar(&a.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&a.debug, "debug", false, "debug output")
	systemd := fs.Bool("systemd-cgroup", false, "use systemd for cgroups (unsupported)")
	rootless := fs.String("rootless", "auto", "rootless mode: true, false or auto")
	fs.String("criu", "", "path to criu (unsupported)")
	showVersion := fs.Bool("version", false, "print the version")
	fs.BoolVar(showVersion, "v", false, "print the version")
	help := fs.Bool("help", false, "usage")
	fs.BoolVar(help, "h", false, "usage")
	if err := fs.Parse(argv); err != nil {
		return a.fail(err)
	}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return a.fail(fmt.Errorf("open log: %w", err))
		}
		defer f.Close()
		a.log = f
	}
	if a.logFormat != "text" && a.logFormat != "json" {
		return a.fail(fmt.Errorf("--log-format %q: must be text or json", a.logFormat))
	}
	a.rt.Root = *root
	a.rt.Warn = a.warn
	if *showVersion {
		fmt.Printf("estiba-runtime version %s\nspec: 1.3.0\n", version)
		return 0
	}
	args := fs.Args()
	if len(args) > 0 && args[0] == "exec" {
		// It places a process in cgroups through cgroup.procs, which
		// waits for the kernel's cgroup attach lock: start its switch
		// now (cgroups.PrimeAttach). A create's init joins its cgroups
		// without that lock (cgroups.Entry); a primer would only hold
		// up its cgroup mkdirs, on the cgroup mutex it keeps meanwhile.
		cgroups.PrimeAttach()
	}
	if *help || len(args) == 0 {
		usage()
		return map[bool]int{true: 0, false: 1}[*help]
	}
	// Init runs from estiba-init when it is installed beside us (cheaper
	// to start than this binary), else from this binary.
	a.rt.Exe, a.rt.Stub, a.rt.Version = container.InitBeside(), container.StubBeside(), version
	if *systemd {
		return a.fail(errors.New("--systemd-cgroup is not supported: use the cgroupfs cgroup manager"))
	}
	switch *rootless {
	case "auto":
		// runc's auto: rootless when not root.
		a.rt.Rootless = os.Geteuid() != 0
	case "true", "false":
		a.rt.Rootless = *rootless == "true"
	default:
		return a.fail(fmt.Errorf("--rootless %q: must be true, false or auto", *rootless))
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" && !rootSet(fs) && os.Geteuid() != 0 {
		// An unprivileged caller cannot write /run: as runc, keep state
		// under $XDG_RUNTIME_DIR.
		a.rt.Root = filepath.Join(dir, "estiba-runtime")
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return a.fail(fmt.Errorf("unknown command %q (see --help)", args[0]))
	}
	if a.debug {
		a.logLine("debug", fmt.Sprintf("%s %s (root %s)", args[0], strings.Join(args[1:], " "), *root))
	}
	if err := cmd.run(a, args[1:]); err != nil {
		var ec exitCodeError
		if errors.As(err, &ec) {
			return int(ec)
		}
		return a.fail(fmt.Errorf("%s: %w", args[0], err))
	}
	return 0
}

// rootSet reports whether --root was given.
func rootSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "root" })
	return set
}

// exitCodeError carries a container's exit code out of run and exec.
type exitCodeError int

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: estiba-runtime [--root dir] [--log file] [--log-format text|json] [--debug] <command>\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %s\n", commands[n].usage)
	}
}

// fail reports err on stderr and, if --log is set, in the log (runc's JSON
// form when --log-format=json: podman reads the last error line from it).
func (a *app) fail(err error) int {
	a.logLine("error", err.Error())
	fmt.Fprintf(os.Stderr, "estiba-runtime: %v\n", err)
	return 1
}

func (a *app) warn(msg string) {
	a.logLine("warning", msg)
	fmt.Fprintf(os.Stderr, "estiba-runtime: warning: %s\n", msg)
}

// logLine writes to --log; debug lines go to stderr when there is none.
func (a *app) logLine(level, msg string) {
	if a.log == nil {
		if level == "debug" {
			fmt.Fprintf(os.Stderr, "estiba-runtime: debug: %s\n", msg)
		}
		return
	}
	now := time.Now().Format(time.RFC3339Nano)
	if a.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(a.log, "%s\n", b)
		return
	}
	fmt.Fprintf(a.log, "time=%q level=%s msg=%q\n", now, level, msg)
}

// flags returns a FlagSet for a subcommand; parse errors are returned, not
// printed.
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// oneID checks that exactly one container ID remains after the flags.
func oneID(fs *flag.FlagSet) (string, error) {
	if fs.NArg() != 1 {
		return "", fmt.Errorf("expected exactly one container id, got %d arguments (%s)", fs.NArg(), strings.Join(fs.Args(), " "))
	}
	return fs.Arg(0), nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
