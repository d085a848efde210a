package initproc

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func uintptrOf(p *uint32) uintptr { return uintptr(unsafe.Pointer(p)) }

// heapPrefault is how much of the Go heap prefaultHeap maps ahead: about
// what init's own work (config, rootfs, stack growth) touches after the Go
// runtime's start (~15 page faults of its ~240, measured with perf).
const heapPrefault = 128 << 10

// heapMark is prefaultHeap's allocation, kept so that the collector never
// hands its pages out again below the prefaulted range.
var heapMark []byte

// prefaultHeap maps the next heapPrefault bytes of the Go heap with one
// madvise(MADV_POPULATE_WRITE) instead of one page fault per page as init
// first writes them: on a VM with shadow paging a fault costs ~15 µs, a
// populated page ~0.7 µs. Go's page allocator hands out the lowest free
// pages of its arena, so a new large object (above the stack limit for
// implicit variables, so on the heap; its fresh pages need no zeroing, so
// nothing touches them) lands on the heap's frontier, and the spans and
// stacks init allocates next land right above it. A hint only: an error
// (a kernel before 5.14, a page beyond what Go has mapped) is ignored.
func prefaultHeap() {
	heapMark = make([]byte, 64<<10+1)
	const page = 4096
	start := (uintptr(unsafe.Pointer(unsafe.SliceData(heapMark))) + uintptr(cap(heapMark)) + page - 1) &^ (page - 1)
	unix.Syscall(unix.SYS_MADVISE, start, heapPrefault, unix.MADV_POPULATE_WRITE)
}
