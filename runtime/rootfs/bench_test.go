package rootfs

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// BenchmarkSetupPivot measures Setup+Pivot, each iteration on a fresh OS
// thread given its own mount namespace (unshare(CLONE_NEWNS) unshares the
// thread's root and cwd too); the thread exits with its goroutine and takes
// the namespace along. No fork: what is timed is what a container start pays
// here, plus unshare. "unshare-only" is that floor; the other cases show what
// each part of the runc spec costs.
func BenchmarkSetupPivot(b *testing.B) {
	testutil.RequiresRoot(b) // leaks are the tests' job (TestFeatures)
	bundle := newBundle(b)
	noCgroup := runcSpec()
	noCgroup.Mounts = noCgroup.Mounts[:len(noCgroup.Mounts)-1]
	cases := []struct {
		name string
		spec *specs.Spec
	}{
		{"unshare-only", nil},
		{"bare-root", &specs.Spec{Root: &specs.Root{Path: "rootfs"}}},
		{"runc-spec-without-cgroup", noCgroup},
		{"runc-spec", runcSpec()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if c.spec != nil {
				c.spec.Root.Path = filepath.Join(bundle, "rootfs")
			}
			var inside time.Duration
			for i := 0; i < b.N; i++ {
				d, err := setupPivotOnThread(c.spec, bundle)
				if err != nil {
					b.Fatal(err)
				}
				inside += d
			}
			// ns/op also counts the thread's creation and the namespace's
			// teardown (after exit, not on the start path); this is the
			// time of Setup+Pivot alone.
			b.ReportMetric(float64(inside.Nanoseconds())/float64(b.N), "setup+pivot-ns/op")
		})
	}
}

func setupPivotOnThread(spec *specs.Spec, bundle string) (time.Duration, error) {
	var d time.Duration
	err := onThrowawayThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil || spec == nil {
			return err
		}
		start := time.Now()
		r, err := Setup(spec, bundle, Options{})
		if err == nil {
			err = r.Pivot()
			r.Close()
		}
		d = time.Since(start)
		return err
	})
	return d, err
}

// onThrowawayThread runs fn on an OS thread that exits afterwards, with
// whatever namespaces and root fn gave it. Never the main thread: Go keeps
// that one alive, and /proc/self names it, so it must stay in the test's
// namespaces.
func onThrowawayThread(fn func() error) error {
	for {
		errc := make(chan error, 1)
		mainThread := errors.New("main thread")
		go func() {
			runtime.LockOSThread()
			if unix.Gettid() == unix.Getpid() {
				runtime.UnlockOSThread()
				errc <- mainThread
				return
			}
			errc <- fn() // never unlocked: the thread exits with the goroutine
		}()
		if err := <-errc; err != mainThread {
			return err
		}
	}
}
