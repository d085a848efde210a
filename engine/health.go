package engine

import (
	"context"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/engine/store"
)

// Health checks run as execs from the daemon (Docker's way): one timer
// goroutine per container with a check, none otherwise.

func healthTest(c *store.Container) []string {
	h := c.Config.Healthcheck
	if h == nil || len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		return append([]string{"/bin/sh", "-c"}, h.Test[1:]...)
	}
	return h.Test
}

func healthStarting(c *store.Container) *types.Health {
	if healthTest(c) == nil {
		return nil
	}
	return &types.Health{Status: "starting", Log: []types.HealthResult{}}
}

func (d *Daemon) startHealth(c *store.Container) {
	test := healthTest(c)
	if test == nil {
		return
	}
	h := *c.Config.Healthcheck
	interval, timeout, retries := h.Interval, h.Timeout, h.Retries
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if retries <= 0 {
		retries = 3
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.mu.Lock()
	if old := d.health[c.ID]; old != nil {
		old()
	}
	d.health[c.ID] = cancel
	d.mu.Unlock()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
			d.probe(ctx, c.ID, test, timeout, retries)
		}
	}()
}

func (d *Daemon) stopHealth(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cancel := d.health[id]; cancel != nil {
		cancel()
		delete(d.health, id)
	}
}

func (d *Daemon) probe(ctx context.Context, id string, test []string, timeout time.Duration, retries int) {
	start := time.Now()
	code := -1
	execID, err := d.ExecCreate(ctx, id, &types.ExecConfig{Cmd: test})
	if err == nil {
		if err = d.ExecStart(ctx, execID, true, nil); err == nil {
			e, _ := d.exec(execID)
			select {
			case <-e.done:
				e.mu.Lock()
				code = e.exitCode
				e.mu.Unlock()
			case <-time.After(timeout):
			case <-ctx.Done():
				return
			}
		}
	}
	res := types.HealthResult{Start: start, End: time.Now(), ExitCode: code}
	if err != nil {
		res.Output = err.Error()
	}
	d.store.Update(id, func(c *store.Container) error {
		h := c.State.Health
		if h == nil || c.State.Status != store.StatusRunning {
			return nil
		}
		h.Log = append(h.Log, res)
		if len(h.Log) > 5 {
			h.Log = h.Log[1:]
		}
		if code == 0 {
			h.Status, h.FailingStreak = "healthy", 0
		} else if h.FailingStreak++; h.FailingStreak >= retries {
			h.Status = "unhealthy"
		}
		return nil
	})
}
