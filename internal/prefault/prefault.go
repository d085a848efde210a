// Package prefault maps memory a short-lived process is about to touch in
// one system call instead of one page fault per page. It pays where the
// process uses most of what it maps: a populated page costs ~1.3 µs on
// this project's VMs and a page fault ~2 µs (a C program touching 256
// fresh pages, 2026-11; under the shadow paging of earlier VMs a fault
// was ~15 µs). The Go init keeps it; the CLI and estiba-runtime, which
// touch less of what it maps, were faster without it.
package prefault

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mark is Heap's allocation, kept so that the collector never hands its
// pages out again below the prefaulted range.
var mark []byte

// Heap maps the Go heap from 768 KiB below its frontier to n bytes past it
// with madvise(MADV_POPULATE_WRITE), instead of one fault per page as the
// process first writes them. Go's page allocator hands out the lowest free
// pages of its arena, so a new large object (its fresh pages need no
// zeroing, so nothing touches them) lands on the heap's frontier, and the
// spans and stacks allocated next land right above it; below it are pages
// the runtime's start reserved and has not written yet, which small objects
// fill later (in estiba-runtime's `run`, faults came up to ~700 KiB below).
// Go maps its heap in 4 MiB chunks (pallocChunkBytes): the range below
// stops at the chunk's start. Pages the process then does not use cost
// ~0.7 µs each and count in its RSS. A hint only: an error (a kernel
// before 5.14, a range past what Go has mapped) is ignored.
func Heap(n uintptr) {
	mark = make([]byte, 64<<10+1)
	const page, chunk, below = 4096, 4 << 20, 768 << 10
	start := (uintptr(unsafe.Pointer(unsafe.SliceData(mark))) + uintptr(cap(mark)) + page - 1) &^ (page - 1)
	// Two calls: the range above may run past the mapped chunks, and the
	// kernel stops at the first hole.
	base := max(start&^(chunk-1), start-below)
	unix.Syscall(unix.SYS_MADVISE, base, start-base, unix.MADV_POPULATE_WRITE)
	unix.Syscall(unix.SYS_MADVISE, start, n, unix.MADV_POPULATE_WRITE)
}
