// Command estiba is the CLI, a client of the engine's API. It links only
// the cli package: a client starts for every `estiba run`, and each package
// linked in costs page faults and init time at every start. The daemon, its
// monitor and the container inits are the estibad binary installed beside
// this one; `estiba daemon ...` execs it (as `docker` and `dockerd`, but
// with the old command line kept working).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/estiba/estiba/cli"
)

var version = "dev"

// daemonBinary is the daemon's file name, looked up beside this binary.
const daemonBinary = "estibad"

func main() {
	if daemonCommand(os.Args) {
		os.Exit(execDaemon(os.Args))
	}
	// No prefault.Heap: the CLI uses little of what it would map ahead,
	// and on these VMs a page fault now costs ~2 µs against ~1.3 µs a page
	// populated (internal/prefault): `estiba version` took 3.1-3.4 ms
	// without it, 3.6-3.8 ms with it (hyperfine, 3 pairs of 400 runs). No
	// runtime.GOMAXPROCS(1): the stop-the-world it takes cost ~0.8 ms at
	// the CLI's start, more than the spinning of a second P it spared
	// (farm-bench, 60 pairs of `run -d`: 0.95x the CPU and 0.97x the wall
	// time without it).
	c := &cli.CLI{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version}
	os.Exit(c.Run(os.Args[1:]))
}

// daemonCommand tells the command lines that belong to estibad: the
// daemon, and (for a daemon still running from an older, single binary at
// this path) its monitor, spawner and inits.
func daemonCommand(args []string) bool {
	if filepath.Base(args[0]) == "estiba-init" {
		return true
	}
	if len(args) < 2 {
		return false
	}
	switch args[1] {
	case "daemon", "monitor", "monitor-spawner", "init":
		return true
	}
	return false
}

// execDaemon replaces this process by estibad with the same argv, so the
// pid (`estiba daemon & kill $!`) and /proc/PID/cmdline stay what the
// caller started. It returns only on failure.
func execDaemon(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "estiba:", err)
		return 1
	}
	bin := filepath.Join(filepath.Dir(self), daemonBinary)
	err = syscall.Exec(bin, args, os.Environ())
	fmt.Fprintf(os.Stderr, "estiba: %s must be installed beside %s (make build): %v\n", daemonBinary, self, err)
	return 1
}
