// Command estiba is the engine daemon (`estiba daemon`), its host-wide
// monitor (`estiba monitor`, started by the daemon), the minimal init for
// --init (when run as estiba-init), the runtime's container init, and the
// CLI client. Every component is wired here, explicitly.
package main

import (
	"os"
	"path/filepath"

	"github.com/estiba/estiba/cli"
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
		os.Exit(daemonMain(os.Args[2:]))
	case len(os.Args) > 1 && os.Args[1] == "monitor":
		os.Exit(monitorMain(os.Args[2:]))
	case len(os.Args) > 1 && os.Args[1] == "monitor-spawner":
		os.Exit(spawnerMain(os.Args[2:]))
	}
	c := &cli.CLI{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version}
	os.Exit(c.Run(os.Args[1:]))
}
