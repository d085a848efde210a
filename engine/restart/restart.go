// Package restart decides whether and when an exited container restarts:
// Docker's policies (no, on-failure[:N], always, unless-stopped) and its
// backoff (100ms doubling to 1 minute, reset after 10s of healthy run).
package restart

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/estiba/estiba/engine/errdefs"
)

// Policy is a parsed --restart.
type Policy struct {
	Name       string // "no", "on-failure", "always", "unless-stopped"
	MaxRetries int    // on-failure only; 0 = unlimited
}

// Parse reads Docker's --restart syntax.
func Parse(s string) (Policy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := Policy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return p, fmt.Errorf("invalid restart policy %q: %w", s, errdefs.ErrInvalid)
			}
			p.MaxRetries = v
		}
		return p, nil
	default:
		return p, fmt.Errorf("invalid restart policy %q: %w", s, errdefs.ErrInvalid)
	}
	if hasN {
		return p, fmt.Errorf("maximum retry count cannot be used with restart policy %q: %w", name, errdefs.ErrInvalid)
	}
	return p, nil
}

// Validate checks an API-form policy.
func Validate(name string, max int) (Policy, error) {
	if max < 0 || (max > 0 && name != "on-failure") {
		return Policy{}, fmt.Errorf("invalid restart policy %s:%d: %w", name, max, errdefs.ErrInvalid)
	}
	p, err := Parse(name)
	p.MaxRetries = max
	return p, err
}

// Exit is what the policy looks at.
type Exit struct {
	Code          int
	StoppedByUser bool          // docker stop/kill: no restart
	Ran           time.Duration // how long this run lasted
	Restarts      int           // restarts so far (on-failure's count)
	DaemonStart   bool          // evaluated at daemon start for a container left running
}

const (
	minDelay   = 100 * time.Millisecond
	maxDelay   = time.Minute
	resetAfter = 10 * time.Second
)

// Decide says whether to restart and the delay to use, given the delay
// used last time (0 for none).
func (p Policy) Decide(e Exit, lastDelay time.Duration) (bool, time.Duration) {
	restart := false
	switch p.Name {
	case "always", "unless-stopped":
		restart = !e.StoppedByUser
	case "on-failure":
		restart = !e.StoppedByUser && e.Code != 0 && (p.MaxRetries == 0 || e.Restarts < p.MaxRetries)
	}
	if !restart {
		return false, 0
	}
	delay := lastDelay * 2
	if lastDelay == 0 || e.Ran >= resetAfter {
		delay = minDelay
	}
	return true, min(delay, maxDelay)
}
