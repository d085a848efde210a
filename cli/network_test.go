package cli

import "testing"

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 100: "100B", 1536: "1.5KiB", 1 << 20: "1MiB", 10 << 30: "10GiB", 1234567: "1.18MiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
