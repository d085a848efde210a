package imagesvc

import (
	"strings"
	"testing"
	"time"
)

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"": "docker.io", "https://index.docker.io/v1/": "docker.io", "registry-1.docker.io": "docker.io",
		"127.0.0.1:5000": "127.0.0.1:5000", "http://localhost:5000/v2/": "localhost:5000",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		cur, total int64
		eq         int
		tail       string
	}{
		{0, 100, 0, "0B/100B"},
		{50, 100, 25, "50B/100B"},
		{2_500_000, 2_500_000, 50, "2.5MB/2.5MB"},
		{200, 100, 50, "200B/100B"},
	} {
		got := ProgressBar(tc.cur, tc.total)
		if n := strings.Count(got, "="); n != tc.eq || !strings.HasSuffix(got, tc.tail) || !strings.HasPrefix(got, "[") {
			t.Errorf("ProgressBar(%d, %d) = %q", tc.cur, tc.total, got)
		}
	}
}

func TestThrottle(t *testing.T) {
	th := newThrottle(time.Hour)
	if !th.due("a") || th.due("a") || !th.due("b") {
		t.Error("throttle: first tick per key passes, the next within the period does not")
	}
}
