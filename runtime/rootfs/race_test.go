package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestSymlinkSwapRace is CVE-2021-30465 as it was exploited: while Setup
// runs, a process sharing the rootfs keeps swapping a directory of it with a
// symlink to a host directory. Whatever Setup then does (mount, or fail with
// an error), nothing may be mounted or created in the host directory. Each
// round runs Setup on a throwaway thread in its own mount namespace, inside
// this process, so the check sees the round's mount table.
func TestSymlinkSwapRace(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNewMounts(t)
	bundle := newBundle(t)
	root := filepath.Join(bundle, "rootfs")
	host := t.TempDir() // the host directory the attacker aims at
	if err := os.Mkdir(filepath.Join(root, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{Root: &specs.Root{Path: root}, Mounts: []specs.Mount{
		{Destination: "/race/x", Type: "tmpfs", Source: "tmpfs"},
	}}

	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // the attacker
		defer close(done)
		race, real := filepath.Join(root, "race"), filepath.Join(root, "real")
		for !stop.Load() {
			os.Rename(real, race)
			os.Rename(race, real)
			os.Symlink(host, race)
			os.Remove(race)
		}
	}()
	defer func() { stop.Store(true); <-done }()

	const rounds = 100
	mounted := 0
	for i := 0; i < rounds; i++ {
		err := onThrowawayThread(func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return err
			}
			r, err := Setup(spec, bundle, Options{})
			if err == nil {
				mounted++
				r.Close()
			}
			// Did anything land on the host directory, in this
			// round's namespace (mountPoints reads thread-self)?
			var st, hst unix.Stat_t
			if unix.Stat(filepath.Join(host, "x"), &st) == nil {
				return errors.New("x created in the host directory")
			}
			if err := unix.Stat(host, &hst); err != nil {
				return err
			}
			points, err := mountPoints()
			if err != nil {
				return err
			}
			for _, p := range points {
				if p == host || filepath.Dir(p) == host {
					return errors.New("mount on the host directory: " + p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	t.Logf("%d of %d rounds mounted (the rest failed cleanly)", mounted, rounds)
}
