package monitor

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller waits on many descriptors with one epoll instance, so that a
// supervised container costs no goroutine while it is quiet: its output
// pipes and its pidfd sit in the set, and their watcher runs when one is
// ready. Three parked goroutines per container (a waiter and two pumps)
// were ~8 KiB of stack each time, the largest share of the monitor's
// memory per container. The epoll descriptor sits in Go's netpoller in
// turn, so no thread blocks in epoll_wait either.
//
// Watchers run one at a time on the poller's goroutine: they must not
// block (a pipe read that would block returns EAGAIN; a write to a client
// that may stall is handed to a goroutine of its own, see outStream).
type poller struct {
	start sync.Once
	err   error // from start
	epfd  int   // for epoll_ctl (os.File.Fd would make it blocking)
	ep    *os.File
	rc    syscall.RawConn

	buf []byte // the watchers' read buffer: they run one at a time

	mu      sync.Mutex // guards next and watches
	next    uint64
	watches map[uint64]watcher
}

// watcher is what a ready descriptor's event runs.
type watcher interface{ ready() }

// open makes the epoll instance and starts the loop, once.
func (l *poller) open() error {
	l.start.Do(func() {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			l.err = fmt.Errorf("epoll_create1: %w", err)
			return
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			l.err = fmt.Errorf("epoll: %w", err)
			return
		}
		l.epfd, l.ep = fd, os.NewFile(uintptr(fd), "epoll")
		if l.rc, l.err = l.ep.SyscallConn(); l.err != nil {
			return
		}
		l.watches = map[uint64]watcher{}
		l.buf = make([]byte, 32*1024)
		go l.run()
	})
	return l.err
}

// reserve returns a token for add: the watcher keeps it (to remove
// itself) before its first event can come.
func (l *poller) reserve() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.next++
	return l.next
}

// add watches fd for input (level-triggered: a watcher that leaves data
// unread is called again).
func (l *poller) add(fd int, tok uint64, w watcher) error {
	if err := l.open(); err != nil {
		return err
	}
	l.mu.Lock()
	l.watches[tok] = w
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.mu.Lock()
		delete(l.watches, tok)
		l.mu.Unlock()
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// del stops watching fd. The caller must hold fd open (the number could
// name another file once it is closed): it runs inside the file's
// RawConn.Control, or before its own close. An event already fetched for
// tok is dropped.
func (l *poller) del(fd int, tok uint64) {
	l.mu.Lock()
	delete(l.watches, tok)
	l.mu.Unlock()
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
}

func (l *poller) run() {
	events := make([]unix.EpollEvent, 128)
	for {
		var n int
		var werr error
		// Go's netpoller wakes us when the epoll descriptor has events;
		// epoll_wait with no timeout then takes them.
		err := l.rc.Read(func(fd uintptr) bool {
			for {
				n, werr = unix.EpollWait(int(fd), events, 0)
				if werr != unix.EINTR {
					return werr != nil || n > 0
				}
			}
		})
		if err != nil || werr != nil {
			// Not expected while the process lives: the descriptor
			// is never closed.
			panic(fmt.Sprintf("monitor poller: %v %v", err, werr))
		}
		for _, ev := range events[:n] {
			tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			l.mu.Lock()
			w := l.watches[tok]
			l.mu.Unlock()
			if w != nil {
				w.ready()
			}
		}
	}
}
