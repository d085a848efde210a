package restart

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Policy
		ok   bool
	}{
		{"", Policy{Name: "no"}, true},
		{"no", Policy{Name: "no"}, true},
		{"always", Policy{Name: "always"}, true},
		{"unless-stopped", Policy{Name: "unless-stopped"}, true},
		{"on-failure", Policy{Name: "on-failure"}, true},
		{"on-failure:3", Policy{Name: "on-failure", MaxRetries: 3}, true},
		{"on-failure:x", Policy{}, false},
		{"always:3", Policy{}, false},
		{"sometimes", Policy{}, false},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("Parse(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		p         Policy
		e         Exit
		last      time.Duration
		restart   bool
		wantDelay time.Duration
	}{
		{"no", Policy{Name: "no"}, Exit{Code: 1}, 0, false, 0},
		{"always first", Policy{Name: "always"}, Exit{Code: 0}, 0, true, minDelay},
		{"always doubles", Policy{Name: "always"}, Exit{Code: 0, Ran: time.Second}, 400 * time.Millisecond, true, 800 * time.Millisecond},
		{"backoff capped", Policy{Name: "always"}, Exit{}, 50 * time.Second, true, time.Minute},
		{"reset after healthy run", Policy{Name: "always"}, Exit{Ran: time.Minute}, 30 * time.Second, true, minDelay},
		{"always not after stop", Policy{Name: "always"}, Exit{StoppedByUser: true}, 0, false, 0},
		{"unless-stopped after stop", Policy{Name: "unless-stopped"}, Exit{StoppedByUser: true}, 0, false, 0},
		{"on-failure success", Policy{Name: "on-failure"}, Exit{Code: 0}, 0, false, 0},
		{"on-failure failure", Policy{Name: "on-failure"}, Exit{Code: 2}, 0, true, minDelay},
		{"on-failure exhausted", Policy{Name: "on-failure", MaxRetries: 2}, Exit{Code: 2, Restarts: 2}, 0, false, 0},
		{"on-failure within max", Policy{Name: "on-failure", MaxRetries: 2}, Exit{Code: 2, Restarts: 1}, 0, true, minDelay},
	}
	for _, tc := range tests {
		r, d := tc.p.Decide(tc.e, tc.last)
		if r != tc.restart || d != tc.wantDelay {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, r, d, tc.restart, tc.wantDelay)
		}
	}
}
