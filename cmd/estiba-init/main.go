// Command estiba-init is the container's init: the runtime (estiba-runtime,
// or the engine's in-process runtime) execs it inside the new namespaces,
// from a read-only clone of this file, and it sets the container up until
// the execve of the container's process (runtime/initproc). It is a binary
// of its own, installed beside them (see container.InitBeside), so that
// each container start pays the Go start-up of runtime/initproc's
// dependencies only, not the package initializers and page faults of the
// whole runtime or engine.
package main

import (
	"fmt"
	"os"

	"github.com/estiba/estiba/runtime/initproc"
)

var version = "dev"

// init runs the container's init before main: see initproc.MainInInit,
// which never returns.
func init() {
	if len(os.Args) > 1 && os.Args[1] == initproc.Arg {
		initproc.MainInInit(version)
	}
}

func main() {
	fmt.Fprintln(os.Stderr, "estiba-init: the container init of estiba's runtime; not to be run by hand")
	os.Exit(2)
}
