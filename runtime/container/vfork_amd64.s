#include "textflag.h"

// func rawVfork(flags uintptr) (pid uintptr, errno syscall.Errno)
//
// clone(flags, 0, 0, 0, 0) for flags with CLONE_VM|CLONE_VFORK: the child
// runs on our stack (newsp 0) while we are suspended. The child returns
// from here first and then calls other functions, whose return addresses
// overwrite the stack slot of ours: it is kept in R12 (the kernel keeps
// it, in both processes) and pushed back after the system call, as Go's
// syscall.rawVforkSyscall does. Arguments are read before the POPQ and
// results written after the PUSHQ, while FP names the right slots.
TEXT ·rawVfork(SB),NOSPLIT|NOFRAME,$0-24
	MOVQ	flags+0(FP), DI
	MOVQ	$0, SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$56, AX // SYS_clone
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$0, pid+8(FP)
	NEGQ	AX
	MOVQ	AX, errno+16(FP)
	RET
ok:
	MOVQ	AX, pid+8(FP)
	MOVQ	$0, errno+16(FP)
	RET
