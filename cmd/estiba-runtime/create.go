package main

import (
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/estiba/estiba/runtime/container"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle, pidFile, console string
	noPivot, noNewKeyring    bool
	preserveFDs              int
}

func (c *createFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&c.bundle, "b", ".", "bundle directory")
	fs.StringVar(&c.pidFile, "pid-file", "", "write the init pid here")
	fs.StringVar(&c.console, "console-socket", "", "unix socket receiving the pty master")
	fs.BoolVar(&c.noPivot, "no-pivot", false, "use MS_MOVE+chroot instead of pivot_root")
	fs.BoolVar(&c.noNewKeyring, "no-new-keyring", false, "keep the runtime's session keyring")
	fs.IntVar(&c.preserveFDs, "preserve-fds", 0, "pass this many fds from 3 on")
}

func (c *createFlags) options() container.CreateOptions {
	return container.CreateOptions{
		Stdio:         container.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr},
		PidFile:       c.pidFile,
		ConsoleSocket: c.console,
		NoPivot:       c.noPivot,
		NoNewKeyring:  c.noNewKeyring,
		PreserveFDs:   c.preserveFDs,
	}
}

func (a *app) create(args []string) error {
	fs := flags("create")
	var cf createFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	_, err = a.rt.Create(id, cf.bundle, cf.options())
	return err
}

func (a *app) runCmd(args []string) error {
	fs := flags("run")
	var cf createFlags
	cf.register(fs)
	detach := fs.Bool("detach", false, "do not wait for the container")
	fs.BoolVar(detach, "d", false, "do not wait for the container")
	keep := fs.Bool("keep", false, "keep the container's state after it exits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	var relay chan<- *os.Process
	if !*detach {
		relay = forwardSignals()
	}
	c, err := a.rt.Run(id, cf.bundle, cf.options())
	if err != nil {
		return err
	}
	if *detach {
		return nil
	}
	relay <- c.Process
	code, err := c.Wait()
	if !*keep {
		if derr := c.Delete(true); derr != nil && err == nil {
			err = derr
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCodeError(code)
	}
	return nil
}

func (a *app) start(args []string) error {
	fs := flags("start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return a.rt.Start(id)
}

func (a *app) state(args []string) error {
	fs := flags("state")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	st, err := a.rt.State(id)
	if err != nil {
		return err
	}
	return printJSON(st)
}

func (a *app) kill(args []string) error {
	fs := flags("kill")
	all := fs.Bool("all", false, "signal every process of the container")
	fs.BoolVar(all, "a", false, "signal every process of the container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return errUsage("kill [--all] <id> [signal]")
	}
	sigName := "SIGTERM"
	if fs.NArg() == 2 {
		sigName = fs.Arg(1)
	}
	sig, err := container.ParseSignal(sigName)
	if err != nil {
		return err
	}
	return a.rt.Kill(fs.Arg(0), sig, *all)
}

func (a *app) delete(args []string) error {
	fs := flags("delete")
	force := fs.Bool("force", false, "kill a running container first")
	fs.BoolVar(force, "f", false, "kill a running container first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return a.rt.Delete(id, *force)
}

func (a *app) pause(args []string) error {
	fs := flags("pause")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return a.rt.Pause(id)
}

func (a *app) resume(args []string) error {
	fs := flags("resume")
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := oneID(fs)
	if err != nil {
		return err
	}
	return a.rt.Resume(id)
}

// forwardSignals relays the signals a foreground run or exec receives to
// the container's process, as runc does (Ctrl-C reaches the container):
// call it before the container is made, then send its process on the
// returned channel. Like runc's, the handler is in place before the
// container exists, so that a signal cannot reach us instead of it; one
// that comes meanwhile is relayed once it runs.
//
// Notify is set up in a goroutine, which runs while the container is
// made: the runtime hands each signal it enables to a thread of its own,
// and on one P every hand-over is two thread switches (~1 ms for these
// nine here). Nothing undoes it (signal.Stop costs the same): the
// command exits after the process does.
func forwardSignals() chan<- *os.Process {
	proc := make(chan *os.Process, 1)
	go func() {
		ch := make(chan os.Signal, 16)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
			syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT, syscall.SIGTSTP)
		p := <-proc
		for s := range ch {
			p.Signal(s)
		}
	}()
	return proc
}
