package container

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ParseSignal accepts "KILL", "SIGKILL", "sigkill", "9", and "RTMIN+3".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range: %w", n, ErrInvalid)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	for base, num := range map[string]int{"SIGRTMIN": 34, "SIGRTMAX": 64} {
		rest, ok := strings.CutPrefix(name, base)
		if !ok {
			continue
		}
		off := 0
		if rest != "" {
			n, err := strconv.Atoi(rest)
			if err != nil {
				break
			}
			off = n
		}
		if n := num + off; n >= 34 && n <= 64 {
			return unix.Signal(n), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q: %w", s, ErrInvalid)
}
