package engine_test

import (
	"strings"
	"testing"
)

// TestPsFilters: docker ps's filters beyond the basic ones (before, since,
// health, volume, is-task) and the validation of status and health values.
func TestPsFilters(t *testing.T) {
	e := startEnv(t)
	e.mustCLI("create", "--name", "f1", "fake", "true")
	e.mustCLI("create", "--name", "f2", "-v", "/tmp:/data", "fake", "true")
	e.mustCLI("create", "--name", "f3", "fake", "true")
	for _, tc := range []struct {
		filters []string
		want    string // names, in ps order (newest first)
		err     string
	}{
		{filters: []string{"before=f3"}, want: "f2 f1"},
		{filters: []string{"since=f1"}, want: "f3 f2"},
		{filters: []string{"since=f1", "before=f3"}, want: "f2"},
		{filters: []string{"health=none"}, want: "f3 f2 f1"},
		{filters: []string{"health=healthy"}, want: ""},
		{filters: []string{"volume=/data"}, want: "f2"},
		{filters: []string{"volume=/tmp"}, want: "f2"},
		{filters: []string{"is-task=false"}, want: "f3 f2 f1"},
		{filters: []string{"status=created", "name=f1"}, want: "f1"},
		{filters: []string{"health=sick"}, err: "invalid filter 'health=sick'"},
		{filters: []string{"status=sleeping"}, err: "invalid filter 'status=sleeping'"},
		{filters: []string{"before=nope"}, err: "nope"},
	} {
		args := []string{"ps", "-a"}
		for _, f := range tc.filters {
			args = append(args, "--filter", f)
		}
		out, errs, code := e.cli(args...)
		if tc.err != "" {
			if code == 0 || !strings.Contains(errs, tc.err) {
				t.Errorf("%v: exit %d %q, want error %q", tc.filters, code, errs, tc.err)
			}
			continue
		}
		var names []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			f := strings.Fields(line)
			names = append(names, f[len(f)-1])
		}
		if got := strings.Join(names, " "); code != 0 || got != tc.want {
			t.Errorf("%v: %q (exit %d %s), want %q", tc.filters, got, code, errs, tc.want)
		}
	}
}
