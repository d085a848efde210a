package initproc

import "unsafe"

func uintptrOf(p *uint32) uintptr { return uintptr(unsafe.Pointer(p)) }

// heapPrefault is how much of the Go heap init maps ahead (see
// internal/prefault): about what init's own work (config, rootfs, stack
// growth) touches after the Go runtime's start (~15 page faults of its
// ~240, measured with perf).
const heapPrefault = 128 << 10
