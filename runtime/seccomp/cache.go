package seccomp

import (
	"encoding/json"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// maxCached bounds a Cache: past it, the cache starts over. A host's
// containers share a handful of profiles (Docker's default, per set of
// capabilities); more than this means per-container ones, not worth
// keeping.
const maxCached = 32

// Cache keeps compiled programs by profile, for a process that creates many
// containers with the same few profiles (the engine's spawner): compiling
// Docker's default profile takes ~0.5 ms, encoding it as a key ~20 µs.
// The key is the profile's whole JSON encoding, so two profiles share a
// program only if every field agrees. A nil *Cache compiles every time.
// Callers must not modify a returned Program. Safe for concurrent use.
type Cache struct {
	mu    sync.Mutex
	progs map[string]*Program
}

// Compile is the package's Compile, through the cache.
func (c *Cache) Compile(p *specs.LinuxSeccomp) (*Program, error) {
	if c == nil || p == nil {
		return Compile(p)
	}
	key, err := json.Marshal(p)
	if err != nil {
		return Compile(p)
	}
	c.mu.Lock()
	prog := c.progs[string(key)]
	c.mu.Unlock()
	if prog != nil {
		return prog, nil
	}
	if prog, err = Compile(p); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.progs == nil || len(c.progs) >= maxCached {
		c.progs = map[string]*Program{}
	}
	c.progs[string(key)] = prog
	c.mu.Unlock()
	return prog, nil
}
