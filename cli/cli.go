// Package cli is the estiba command line: docker's commands and flags for
// containers and images, as a client of the engine's API.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// DefaultHost is the daemon's default socket.
const DefaultHost = "unix:///run/estiba/estiba.sock"

// CLI holds the process's streams and environment (passed in, for tests).
type CLI struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Version        string
}

type command struct {
	usage string
	run   func(ctx context.Context, c *CLI, cl *Client, args []string) error
}

func (c *CLI) commands() map[string]command {
	return map[string]command{
		"version":         {"Show the estiba version", cmdVersion},
		"info":            {"Display system-wide information", cmdInfo},
		"ps":              {"List containers", cmdPs},
		"run":             {"Create and run a new container from an image", cmdRun},
		"create":          {"Create a new container", cmdCreate},
		"start":           {"Start one or more stopped containers", cmdStart},
		"stop":            {"Stop one or more running containers", cmdStop},
		"restart":         {"Restart one or more containers", cmdRestart},
		"kill":            {"Kill one or more running containers", cmdKill},
		"rm":              {"Remove one or more containers", cmdRm},
		"logs":            {"Fetch the logs of a container", cmdLogs},
		"attach":          {"Attach to a running container", cmdAttach},
		"exec":            {"Execute a command in a running container", cmdExec},
		"inspect":         {"Return low-level information on containers or images", cmdInspect},
		"wait":            {"Block until containers stop, then print their exit codes", cmdWait},
		"top":             {"Display the running processes of a container", cmdTop},
		"stats":           {"Display a live stream of container resource usage", cmdStats},
		"pause":           {"Pause all processes within one or more containers", cmdPause},
		"unpause":         {"Unpause all processes within one or more containers", cmdUnpause},
		"port":            {"List port mappings of a container", cmdPort},
		"events":          {"Get real time events from the server", cmdEvents},
		"images":          {"List images", cmdImages},
		"pull":            {"Download an image from a registry", cmdPull},
		"rmi":             {"Remove one or more images", cmdRmi},
		"tag":             {"Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", cmdTag},
		"import":          {"Import the contents from a tarball to create a filesystem image", cmdImport},
		"load":            {"Load an image from a tar archive or STDIN", cmdLoad},
		"push":            {"Upload an image to a registry", cmdPush},
		"login":           {"Log in to a registry", cmdLogin},
		"logout":          {"Log out from a registry", cmdLogout},
		"save":            {"Save one or more images to a tar archive (streamed to STDOUT by default)", cmdSave},
		"history":         {"Show the history of an image", cmdHistory},
		"image-prune":     {"Remove unused images", cmdImagePrune},
		"system":          {"Manage estiba (df, prune)", cmdSystem},
		"update":          {"Update the network rate limits of one or more containers", cmdUpdate},
		"network":         {"Manage networks (create, ls, inspect, rm, connect, disconnect, prune)", cmdNetwork},
		"container-prune": {"Remove all stopped containers", cmdContainerPrune},
		"container":       {"Manage containers (ls, prune, and the container commands)", nil},
		"image":           {"Manage images (ls, rm, pull, tag, inspect)", nil},
	}
}

// Run executes one command line (without the program name) and returns the
// process exit code.
func (c *CLI) Run(args []string) int {
	fs := pflag.NewFlagSet("estiba", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(c.Stderr)
	host := fs.StringP("host", "H", "", "daemon socket to connect to (default $ESTIBA_HOST or "+DefaultHost+")")
	help := fs.BoolP("help", "h", false, "print usage")
	if err := fs.Parse(args); err != nil {
		return 125
	}
	rest := fs.Args()
	if *help || len(rest) == 0 {
		c.usage()
		return 0
	}
	name, rest := rest[0], rest[1:]
	// "container ls", "image rm" and friends map onto the short forms.
	if alias, ok := aliases[name]; ok && len(rest) > 0 {
		if short, ok := alias[rest[0]]; ok {
			name, rest = short, rest[1:]
		}
	}
	cmd, ok := c.commands()[name]
	if !ok || cmd.run == nil {
		fmt.Fprintf(c.Stderr, "estiba: '%s' is not an estiba command.\nSee 'estiba --help'\n", strings.Join(append([]string{name}, rest...), " "))
		return 125
	}
	h := *host
	if h == "" {
		h = c.Getenv("ESTIBA_HOST")
	}
	if h == "" {
		h = DefaultHost
	}
	cl, err := NewClient(h)
	if err != nil {
		fmt.Fprintln(c.Stderr, err)
		return 125
	}
	ctx, cancel := context.WithCancel(context.Background())
	if !ownSignals(name) {
		ctx, cancel = signal.NotifyContext(ctx, os.Interrupt, unix.SIGTERM)
	}
	defer cancel()
	err = cmd.run(ctx, c, cl, rest)
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	case errors.Is(err, pflag.ErrHelp):
		return 0
	}
	fmt.Fprintln(c.Stderr, err)
	if errors.Is(err, errUsage) {
		return 125
	}
	return 1
}

// ownSignals tells the commands that do without the context's
// cancellation by SIGINT and SIGTERM: os/signal costs the process a
// thread of its own (the runtime's signal mask keeper) and a handoff to
// it per signal, on every start. create and a detached run are two short
// round trips, which a signal simply ends; an attached run handles the
// signals itself (handleSignals), from its create on.
func ownSignals(name string) bool { return name == "run" || name == "create" }

var aliases = map[string]map[string]string{
	"container": {"ls": "ps", "list": "ps", "run": "run", "create": "create", "start": "start", "stop": "stop", "restart": "restart",
		"kill": "kill", "rm": "rm", "logs": "logs", "attach": "attach", "exec": "exec", "inspect": "inspect", "wait": "wait",
		"top": "top", "stats": "stats", "pause": "pause", "unpause": "unpause", "port": "port", "prune": "container-prune"},
	"image": {"ls": "images", "list": "images", "rm": "rmi", "pull": "pull", "tag": "tag", "inspect": "inspect", "import": "import", "load": "load",
		"push": "push", "save": "save", "history": "history", "prune": "image-prune"},
}

func (c *CLI) usage() {
	fmt.Fprintln(c.Stdout, "Usage:  estiba [-H HOST] COMMAND\n\nA container engine speaking the Docker Engine API.\n\nCommands:")
	cmds := c.commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(c.Stdout, "  %-10s %s\n", "daemon", "Run the estiba daemon")
	for _, n := range names {
		fmt.Fprintf(c.Stdout, "  %-10s %s\n", n, cmds[n].usage)
	}
}

// exitCode carries a container's exit status out of run/start -a/wait.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

// stringsValue is pflag's stringArray (each use of the flag adds one value)
// without its CSV formatting: pflag formats every flag's default as the flag
// is defined, and a stringArray's goes through a CSV writer with a 4 KiB
// buffer — page faults on every `estiba run`, for a help text.
type stringsValue struct{ p *[]string }

func (v stringsValue) Set(s string) error { *v.p = append(*v.p, s); return nil }
func (v stringsValue) Type() string       { return "stringArray" }

// String is "" when empty: the help shows no default.
func (v stringsValue) String() string {
	if len(*v.p) == 0 {
		return ""
	}
	return "[" + strings.Join(*v.p, ",") + "]"
}

// stringArrayVarP defines a repeatable string flag (a stringsValue).
func stringArrayVarP(fs *pflag.FlagSet, p *[]string, name, short, usage string) {
	fs.VarP(stringsValue{p}, name, short, usage)
}

func newFlags(name string, c *CLI) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	return fs
}
