package cgroups

import (
	"fmt"
	"strings"
	"time"
)

// freezeTimeout bounds the wait for the kernel to stop every task: a task
// in uninterruptible sleep delays freezing until it wakes.
const freezeTimeout = 10 * time.Second

func (m *manager) Freeze() error { return m.setFrozen(true) }
func (m *manager) Thaw() error   { return m.setFrozen(false) }

func (m *manager) setFrozen(frozen bool) error {
	if dir, ok := m.v1["freezer"]; ok {
		return freezeV1(dir, frozen)
	}
	if m.v2 != "" {
		return freezeV2(m.v2, frozen)
	}
	return fmt.Errorf("cgroups: no freezer on this %s host", m.layout.mode)
}

// freezeV1 writes freezer.state and waits until it reads back the target:
// FROZEN passes through FREEZING while tasks are being stopped. Writing
// FROZEN again re-kicks tasks that were busy the first time.
func freezeV1(dir string, frozen bool) error {
	want := "THAWED"
	if frozen {
		want = "FROZEN"
	}
	deadline := time.Now().Add(freezeTimeout)
	for i := 0; ; i++ {
		if i%10 == 0 {
			if err := writeFile(dir, "freezer.state", want); err != nil {
				return fmt.Errorf("cgroups: %w", err)
			}
		}
		state, err := readFile(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if state == want {
			return nil
		}
		if time.Now().After(deadline) {
			if frozen {
				_ = writeFile(dir, "freezer.state", "THAWED") // do not leave it half-frozen
			}
			return fmt.Errorf("cgroups: freezer.state stuck at %s, want %s", state, want)
		}
		time.Sleep(time.Millisecond * time.Duration(1+min(i, 10)))
	}
}

// freezeV2 writes cgroup.freeze and waits for cgroup.events to report
// "frozen 1" (or 0): the write only requests the change.
func freezeV2(dir string, frozen bool) error {
	want := boolDigit(frozen)
	if err := writeFile(dir, "cgroup.freeze", want); err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	deadline := time.Now().Add(freezeTimeout)
	for i := 0; ; i++ {
		ev, err := readFile(dir, "cgroup.events")
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		for _, line := range strings.Split(ev, "\n") {
			if line == "frozen "+want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if frozen {
				_ = writeFile(dir, "cgroup.freeze", "0")
			}
			return fmt.Errorf("cgroups: %s/cgroup.events never reported frozen %s", dir, want)
		}
		time.Sleep(time.Millisecond * time.Duration(1+min(i, 10)))
	}
}
