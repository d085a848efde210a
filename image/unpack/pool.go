package unpack

import (
	"archive/tar"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// job is one small regular file for the pool: its content is in memory and
// pfd is the pool's own (dup'd) fd of the verified parent directory.
type job struct {
	pfd  int
	name string
	base string
	hdr  *tar.Header
	data []byte
}

// pool creates files in parallel. Only files whose names are new in the
// layer are submitted, so jobs never depend on each other; barrier waits
// for all of them before an entry that might.
type pool struct {
	a       *applier
	jobs    chan job
	pending sync.WaitGroup
	workers sync.WaitGroup
	mu      sync.Mutex
	err     error
}

func newPool(a *applier, n int) *pool {
	p := &pool{a: a, jobs: make(chan job, 32)}
	for range n {
		p.workers.Add(1)
		go p.work()
	}
	return p
}

func (p *pool) work() {
	defer p.workers.Done()
	for j := range p.jobs {
		if p.failed() == nil {
			if err := p.a.writeFile(j.pfd, j.base, j.hdr, nil, j.data, false); err != nil {
				p.fail(fmt.Errorf("entry %q: %w", j.name, err))
			}
		}
		unix.Close(j.pfd)
		p.pending.Done()
	}
}

func (p *pool) submit(j job) error {
	if err := p.failed(); err != nil {
		unix.Close(j.pfd)
		return err
	}
	p.pending.Add(1)
	p.jobs <- j
	return nil
}

func (p *pool) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// failed returns the first error of a job; nil-safe for pool-less appliers.
func (p *pool) failed() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pool) stop() {
	close(p.jobs)
	p.workers.Wait()
}

// barrier waits until every submitted file is written.
func (a *applier) barrier() error {
	if a.pool == nil {
		return nil
	}
	a.pool.pending.Wait()
	return a.pool.failed()
}
