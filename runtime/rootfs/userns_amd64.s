#include "textflag.h"

// func cloneUserNS(flags, pidfd, ppid uintptr) (pid, errno uintptr)
//
// clone(flags, 0, pidfd, 0, 0). The parent returns the pid or the errno.
// The child shares the parent's memory (CLONE_VM) and, with newsp 0, even
// its stack pointer: it must not write to memory at all, so it lives in
// registers only: PR_SET_PDEATHSIG(SIGKILL); exit if its parent is already
// gone (ppid differs); then pause(2) forever. Every signal is blocked (the
// caller's mask), so only SIGKILL ends it.
TEXT ·cloneUserNS(SB),NOSPLIT,$0-40
	MOVQ	flags+0(FP), DI
	MOVQ	$0, SI
	MOVQ	pidfd+8(FP), DX
	MOVQ	$0, R10
	MOVQ	$0, R8
	MOVQ	ppid+16(FP), R12
	MOVQ	$56, AX // SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	MOVQ	$0, pid+24(FP)
	NEGQ	AX
	MOVQ	AX, errno+32(FP)
	RET
ok:
	MOVQ	AX, pid+24(FP)
	MOVQ	$0, errno+32(FP)
	RET
child:
	MOVQ	$157, AX // SYS_prctl
	MOVQ	$1, DI // PR_SET_PDEATHSIG
	MOVQ	$9, SI // SIGKILL
	SYSCALL
	MOVQ	$110, AX // SYS_getppid
	SYSCALL
	CMPQ	AX, R12
	JNE	exit
pause:
	MOVQ	$34, AX // SYS_pause
	SYSCALL
	JMP	pause
exit:
	MOVQ	$0, DI
	MOVQ	$60, AX // SYS_exit
	SYSCALL
	JMP	exit
