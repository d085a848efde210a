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
	"runtime/debug"

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
		smallHeap(50)
		os.Exit(daemonMain(os.Args[2:]))
	case len(os.Args) > 1 && os.Args[1] == "monitor":
		smallHeap(25)
		os.Exit(monitorMain(os.Args[2:]))
	case len(os.Args) > 1 && os.Args[1] == "monitor-spawner":
		// Not the spawner: its heap does not grow with the containers,
		// and a smaller one cost ~2.5 ms of CPU per start (pages given
		// back and faulted in again at every start, ~15 µs each here).
		os.Exit(spawnerMain(os.Args[2:]))
	}
	smallHeap(50)
	os.Exit(daemonMain(os.Args[1:]))
}

// smallHeap sets the collector's target (GOGC) of a long-lived process
// whose live heap is small but which makes short-lived garbage with every
// container start (requests, JSON). At GOGC=100 Go lets any heap grow to
// 4 MiB before it collects, and to twice the live heap after that: 300
// starts grew the daemon by ~3 MiB and the monitor by ~4 MiB, for live
// heaps of ~1 MiB and less. At 50 and 25 they grew by ~0.4 and ~2.8 MiB,
// at no CPU cost measurable in two runs of 300 starts. An explicit GOGC
// still wins.
func smallHeap(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}
