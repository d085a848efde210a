package security

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hunter is a container process for CVE-2019-5736: until /tmp/stop exists
// it tries to open every /proc/*/exe for writing, directly and by
// re-opening a held read-only fd through /proc/self/fd, and records each
// success in /out/opened and each exe target seen in /out/seen.
const hunter = `
n=0
while [ ! -e /tmp/stop ]; do
  for f in /proc/[0-9]*/exe; do
    readlink "$f" >> /tmp/seen 2>/dev/null
    if { true >> "$f"; } 2>/dev/null; then echo "direct $f $(readlink $f)" >> /out/opened; fi
    if command exec 3< "$f" 2>/dev/null; then
      if { true >> /proc/self/fd/3; } 2>/dev/null; then echo "reopen $f $(readlink $f)" >> /out/opened; fi
      exec 3<&-
    fi
  done
  n=$((n+1))
done
sort -u /tmp/seen > /out/seen
echo $n > /out/rounds
`

// TestExeOverwriteDuringExec (CVE-2019-5736): while the host runs
// `estiba-runtime exec` again and again — including of a script whose
// interpreter is #!/proc/self/exe, which makes the kernel run whatever
// binary the runtime's init executes from — a container process tries to
// open every /proc/<pid>/exe for writing. Every open must fail and the
// runtime binary on the host must be unchanged (checked by newEnv).
func TestExeOverwriteDuringExec(t *testing.T) {
	e := newEnv(t, "sh", "-c", hunter)
	e.addTmpfs("/tmp")
	out := e.addOut()
	if err := os.WriteFile(filepath.Join(e.rootfs, "bin/evil"), []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.create()
	e.run(nil, "start", e.id)
	for i := 0; i < 15; i++ {
		// Both are expected to fail or succeed harmlessly; the hunter is
		// the judge.
		_, _ = e.exec("/bin/evil")
		_, _ = e.exec("sleep", "0.05")
	}
	e.run(nil, "exec", e.id, "touch", "/tmp/stop")
	waitFile(t, filepath.Join(out, "rounds"), 20*time.Second)
	e.delete()
	rounds, _ := os.ReadFile(filepath.Join(out, "rounds"))
	seen, _ := os.ReadFile(filepath.Join(out, "seen"))
	t.Logf("hunter rounds: %s; exe targets seen:\n%s", strings.TrimSpace(string(rounds)), seen)
	if b, err := os.ReadFile(filepath.Join(out, "opened")); err == nil {
		t.Errorf("CVE-2019-5736: the container opened an executable for writing:\n%s", b)
	}
}

// TestExeOfInitBeforeStart (CVE-2019-5736, created state): between create
// and start the container's PID 1 is the runtime's own init. A process
// exec'd into the created container must not be able to open /proc/1/exe
// for writing, directly or by re-opening a read-only fd.
func TestExeOfInitBeforeStart(t *testing.T) {
	e := newEnv(t, "sleep", "30")
	e.create()
	r, err := e.exec("sh", "-c", `
ls -l /proc/1/exe 2>&1
if { true >> /proc/1/exe; } 2>/dev/null; then echo OPENED-DIRECT; fi
if command exec 3< /proc/1/exe 2>/dev/null; then
  echo HELD-RDONLY
  if { true >> /proc/self/fd/3; } 2>/dev/null; then echo OPENED-REOPEN; fi
fi
true`)
	e.delete()
	if err != nil {
		// Refusing exec into a created container is also safe.
		t.Logf("exec into created container refused: %s", r)
		return
	}
	t.Logf("probe output:\n%s", r.stdout)
	if strings.Contains(r.stdout, "OPENED") {
		t.Errorf("CVE-2019-5736: /proc/1/exe of the runtime's init opened for writing:\n%s", r)
	}
}

// waitFile waits until path exists.
func waitFile(t testing.TB, path string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
