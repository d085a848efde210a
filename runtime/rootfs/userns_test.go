package rootfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestNewUserNS: the namespace has exactly the maps asked for, and the
// process that made it is gone (killed and reaped).
func TestNewUserNS(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "nsenter")
	uids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	gids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 1}}
	for i := 0; i < 3; i++ { // more than one: nothing of the first is in the way
		ns, err := NewUserNS(uids, gids)
		if err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string][]string{"uid_map": {"0 100000 65536"}, "gid_map": {"0 200000 1000", "1000 300000 1"}} {
			// ExtraFiles: the namespace is fd 3 in nsenter.
			cmd := exec.Command("nsenter", "--user=/proc/self/fd/3", "cat", "/proc/self/"+file)
			cmd.ExtraFiles = []*os.File{ns}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(strings.Fields(strings.Join(want, " ")), " ") {
				t.Errorf("%s = %q, want %q", file, out, want)
			}
		}
		ns.Close()
	}
	kids, _ := filepath.Glob("/proc/self/task/*/children")
	for _, k := range kids {
		if b, _ := os.ReadFile(k); len(strings.TrimSpace(string(b))) > 0 {
			t.Errorf("%s: children left: %s", k, b)
		}
	}
}

func TestNewUserNSNeedsMaps(t *testing.T) {
	if _, err := NewUserNS(nil, []specs.LinuxIDMapping{{Size: 1}}); err == nil {
		t.Fatal("no uid maps: no error")
	}
}

func BenchmarkNewUserNS(b *testing.B) {
	testutil.RequiresRoot(b)
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	for b.Loop() {
		ns, err := NewUserNS(m, m)
		if err != nil {
			b.Fatal(err)
		}
		ns.Close()
	}
}
