// Command estibad is the engine daemon (`estibad`, or `estiba daemon`, which
// execs it), its host-wide monitor (`estibad monitor`, started by the
// daemon), the monitor's spawner, the runtime's container init and the
// minimal init for --init (when run as estiba-init). Every component is
// wired here, explicitly. The CLI is the separate, small `estiba` binary:
// a client starts often and should not pay for the daemon's packages.
package main

import (
	"os"
	"path/filepath"

	"github.com/estiba/estiba/engine/tinit"
	"github.com/estiba/estiba/runtime/initproc"
)

var version = "dev"

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == initproc.Arg:
		// Re-exec'd by the in-process runtime as a container's init.
		initproc.Main(version)
		return
	case filepath.Base(os.Args[0]) == "estiba-init":
		os.Exit(tinit.Run(os.Args[1:]))
	case len(os.Args) > 1 && os.Args[1] == "daemon":
		// `estiba daemon ARGS` execs us with its argv unchanged.
		os.Exit(daemonMain(os.Args[2:]))
	case len(os.Args) > 1 && os.Args[1] == "monitor":
		os.Exit(monitorMain(os.Args[2:]))
	case len(os.Args) > 1 && os.Args[1] == "monitor-spawner":
		os.Exit(spawnerMain(os.Args[2:]))
	}
	os.Exit(daemonMain(os.Args[1:]))
}
