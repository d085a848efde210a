package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecurityOpts: seccomp=<file> travels inline (compacted JSON), as the
// docker CLI sends it; the other options pass as they are.
func TestSecurityOpts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(file, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o644)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{nope"), 0o644)
	for _, tc := range []struct {
		in   string
		want string
		err  string
	}{
		{in: "seccomp=" + file, want: `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`},
		{in: "seccomp:" + file, want: `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`},
		{in: "seccomp=unconfined", want: "seccomp=unconfined"},
		{in: `seccomp={"defaultAction":"SCMP_ACT_LOG"}`, want: `seccomp={"defaultAction":"SCMP_ACT_LOG"}`},
		{in: "no-new-privileges", want: "no-new-privileges"},
		{in: "seccomp=/nonexistent.json", err: "opening seccomp profile"},
		{in: "seccomp=" + bad, err: "seccomp profile"},
	} {
		got, err := securityOpts([]string{tc.in})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.in, got, err, tc.want)
		}
	}
}
