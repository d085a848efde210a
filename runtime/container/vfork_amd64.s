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

// func rawClone3(args *cloneArgs, size uintptr) (pid uintptr, errno syscall.Errno)
//
// clone3(args, size), for args with CLONE_VM|CLONE_VFORK and no stack: the
// child runs on our stack, as with rawVfork above (same return address
// dance).
TEXT ·rawClone3(SB),NOSPLIT|NOFRAME,$0-32
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVQ	$0, DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	$435, AX // SYS_clone3
	POPQ	R12
	SYSCALL
	PUSHQ	R12
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok3
	MOVQ	$0, pid+16(FP)
	NEGQ	AX
	MOVQ	AX, errno+24(FP)
	RET
ok3:
	MOVQ	AX, pid+16(FP)
	MOVQ	$0, errno+24(FP)
	RET
