/*
 * estiba-init-stub: the container's first process in the common case. A
 * freestanding static program (no libc, a few pages) that runs programs of
 * raw syscalls the runtime sends it, until one of them execs the container's
 * process. Starting it costs ~0.7 ms of CPU here (mostly its execve), a Go
 * init ~5 ms more.
 *
 * Usage: estiba-init-stub <syncfd>. syncfd is a SOCK_SEQPACKET unix socket to
 * the runtime; the environment is ignored. Loop: receive a program, check all
 * of it, run its ops in order, reply OK (unless a REPLY op did already). A
 * failure before a REPLY is replied (FAILED, op, errno) and ends the stub with
 * exit status 1; after a REPLY nobody listens, so it is written to fd 2 and
 * the stub exits 127 (a REPLY holds for the rest of its program only). EOF
 * or an error on the socket: exit status 1.
 *
 * Build (Makefile): cc -static -nostdlib -ffreestanding -fno-builtin
 *   -fno-stack-protector -fno-asynchronous-unwind-tables -O2 -Wall -Wextra
 *   -Werror -o bin/estiba-init-stub runtime/initstub/c/stub.c
 *
 * Wire format, version 1. Integers are little-endian, structs naturally aligned.
 * A program is one SOCK_SEQPACKET message of at most 1 MiB:
 *
 *   header  16 bytes, at 0
 *   ops     nops x 128 bytes, at 16
 *   relocs  nrelocs x u32, right after the ops
 *   data    from the next multiple of 8 to the end of the message
 *
 * header  u32 magic     0x31495345 ("ESI1")
 *         u32 nops
 *         u32 nrelocs
 *         u32 fdslot    0, or the slot of the first fd the message carries: a
 *                       program may come with 1..16 fds in one SCM_RIGHTS
 *                       control message (received close-on-exec), stored in
 *                       order in slots fdslot, fdslot+1... (1 <= fdslot,
 *                       fdslot + their number <= 64). fdslot 0 with fds, or
 *                       not 0 without, is refused.
 * op      u32 kind      1 SYSCALL, 2 SENDFD, 3 CHECKCWD, 4 EQUAL, 5 REPLY,
 *                       6 SECCOMP
 *         u32 flags     SYSCALL only: 1 OUT (store the result in slot out),
 *                       2 ALLOW (a -allow result is no failure; the slot gets it)
 *         u32 name_off  the op's name for failure reports: a range of data,
 *         u32 name_len  no NUL needed
 *         u32 out       slot, < 64 (0 without OUT)
 *         u32 allow     errno, 1..4095 (0 without ALLOW)
 *         u64 nr        SYSCALL: the syscall number, < 4096; else 0
 *         arg args[6]
 * arg     u32 tag       0 NONE (the value 0), 1 INT, 2 DATA, 3 SLOT
 *         u32 len       DATA: the length of the range; else 0
 *         u64 val       INT: the value; DATA: the offset of the range in data;
 *                       SLOT: the slot, < 64, stored (OUT) by an earlier op of
 *                       this program or of an earlier one; NONE: 0
 * reloc   u32           the offset in data of an 8-aligned u64 that holds an
 *                       offset in data (< data length): the stub replaces it with
 *                       that byte's address before it runs any op. This is how
 *                       char *argv[] arrays cross: NULL-terminated, the strings
 *                       also in data.
 * Operands of the other kinds (unused args are NONE):
 *   SENDFD    args[0] the socket (NONE: the sync socket), INT or SLOT;
 *             args[1] the fd, INT or SLOT
 *   CHECKCWD  args[0] DATA, the getcwd buffer, len >= 1
 *   EQUAL     args[0], args[1] DATA ranges of the same length
 *   REPLY     none
 *   SECCOMP   args[0] INT, the SECCOMP_FILTER_FLAG_* flags; args[1] DATA, the
 *             struct sock_filter[] (8 bytes each, 1..4096 of them): the stub
 *             loads it with seccomp(SECCOMP_SET_MODE_FILTER)
 * The stub checks all of it before it runs the first op; a malformed program is
 * refused with an INVALID reply. The data area is the stub's copy, writable.
 * Slots keep their values from one program to the next; data does not.
 *
 * reply   u32 status    0 OK, 1 FAILED, 2 INVALID
 *         u32 index     FAILED, INVALID: the op (0xffffffff: the header);
 *                       OK: the REPLY op, or nops at the end of the program
 *         u32 errno     FAILED, INVALID: why
 *         u32 reserved  0
 * An fd sent by SENDFD: a 1-byte message (0) carrying it in SCM_RIGHTS.
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long u64;

#define MAGIC 0x31495345u
#define MAXMSG (1u << 20)
#define NSLOTS 64
#define NARGS 6
#define NOIDX 0xffffffffu
#define MAXFDS 16

enum { OP_SYSCALL = 1, OP_SENDFD, OP_CHECKCWD, OP_EQUAL, OP_REPLY, OP_SECCOMP };
enum { F_OUT = 1, F_ALLOW = 2 };
enum { A_NONE = 0, A_INT, A_DATA, A_SLOT };
enum { R_OK = 0, R_FAILED, R_INVALID };

/* The few Linux x86-64 numbers the stub needs itself. */
enum { SYS_write = 1, SYS_sendto = 44, SYS_sendmsg = 46,
       SYS_recvmsg = 47, SYS_fcntl = 72, SYS_getcwd = 79, SYS_exit_group = 231, SYS_seccomp = 317 };
enum { SECCOMP_SET_MODE_FILTER = 1 };
enum { ENOENT = 2, EINTR = 4, EINVAL = 22, ERANGE = 34, EBADSLT = 57,
       EBADMSG = 74, EMSGSIZE = 90, EXDEV = 18 };
enum { F_SETFD = 2, FD_CLOEXEC = 1, MSG_CTRUNC = 0x8, MSG_TRUNC = 0x20,
       MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000,
       SOL_SOCKET = 1, SCM_RIGHTS = 1 };

struct hdr { u32 magic, nops, nrelocs, fdslot; };
struct arg { u32 tag, len; u64 val; };
struct op {
	u32 kind, flags, name_off, name_len, out, allow;
	u64 nr;
	struct arg args[NARGS];
};
struct reply { u32 status, index, err, reserved; };

_Static_assert(sizeof(struct hdr) == 16, "header layout");
_Static_assert(sizeof(struct arg) == 16, "arg layout");
_Static_assert(sizeof(struct op) == 128, "op layout");
_Static_assert(sizeof(struct reply) == 16, "reply layout");

struct iovec { void *base; u64 len; };
struct msghdr {
	void *name; u32 namelen; struct iovec *iov; u64 iovlen;
	void *control; u64 controllen; int flags;
};
/* One SCM_RIGHTS fd: CMSG_LEN(4) = 20, CMSG_SPACE(4) = 24. */
struct cmsg_fd { u64 len; int level, type, fd, pad; };
/* Up to MAXFDS received with a program: CMSG_SPACE(4 * MAXFDS) = 80. */
struct cmsg_fds { u64 len; int level, type, fd[MAXFDS]; };

/* The message buffer: one program at a time, 16-aligned so that the ops are
 * aligned and data (at a multiple of 8) can hold structs the kernel fills. */
static u8 msg[MAXMSG] __attribute__((aligned(16)));
static u64 slots[NSLOTS];
static u64 slots_set; /* bit k: an op (OUT) has stored slot k */
static int syncfd;
/* The fds that came with the program being loaded. */
static int fds[MAXFDS];
static u32 nfds;

struct prog {
	const struct op *ops;
	u32 nops;
	u8 *data;
	u64 data_len;
};

static long syscall6(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	register u64 r10 __asm__("r10") = d;
	register u64 r8 __asm__("r8") = e;
	register u64 r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static long sys_retry(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{
	long r;
	do
		r = syscall6(nr, a, b, c, d, e, f);
	while (r == -EINTR);
	return r;
}

static __attribute__((noreturn)) void exit_group(int status)
{
	for (;;)
		syscall6(SYS_exit_group, (u64)status, 0, 0, 0, 0, 0);
}

static long send_reply(u32 status, u32 index, u32 err)
{
	struct reply r = { status, index, err, 0 };
	/* MSG_NOSIGNAL: a runtime that is gone must not kill us with SIGPIPE. */
	return sys_retry(SYS_sendto, (u64)syncfd, (u64)&r, sizeof r, MSG_NOSIGNAL, 0, 0);
}

/* ---- checking ---- */

static u32 check_range(const struct prog *p, u64 off, u64 len)
{
	return off <= p->data_len && len <= p->data_len - off ? 0 : ERANGE;
}

static u32 check_arg(const struct prog *p, const struct arg *a, u64 set)
{
	switch (a->tag) {
	case A_NONE:
		return a->len == 0 && a->val == 0 ? 0 : EINVAL;
	case A_INT:
		return a->len == 0 ? 0 : EINVAL;
	case A_DATA:
		return check_range(p, a->val, a->len);
	case A_SLOT:
		if (a->len != 0)
			return EINVAL;
		return a->val < NSLOTS && (set >> a->val & 1) ? 0 : EBADSLT;
	}
	return EINVAL;
}

/* want[i]: the tags arg i may have, as a bit set (1 << tag). */
static u32 check_shape(const struct op *o, const u32 want[NARGS])
{
	for (int i = 0; i < NARGS; i++)
		if (o->args[i].tag > A_SLOT || !(want[i] >> o->args[i].tag & 1))
			return EINVAL;
	return 0;
}

#define T(tag) (1u << (tag))
#define ANY (T(A_NONE) | T(A_INT) | T(A_DATA) | T(A_SLOT))
#define NONE T(A_NONE)

static u32 check_kind(const struct op *o)
{
	static const u32 syscall_args[NARGS] = { ANY, ANY, ANY, ANY, ANY, ANY };
	static const u32 sendfd_args[NARGS] = {
		T(A_NONE) | T(A_INT) | T(A_SLOT), T(A_INT) | T(A_SLOT),
		NONE, NONE, NONE, NONE };
	static const u32 checkcwd_args[NARGS] = { T(A_DATA), NONE, NONE, NONE, NONE, NONE };
	static const u32 equal_args[NARGS] = { T(A_DATA), T(A_DATA), NONE, NONE, NONE, NONE };
	static const u32 reply_args[NARGS] = { NONE, NONE, NONE, NONE, NONE, NONE };
	static const u32 seccomp_args[NARGS] = { T(A_INT), T(A_DATA), NONE, NONE, NONE, NONE };

	switch (o->kind) {
	case OP_SYSCALL:
		return o->nr < 4096 ? check_shape(o, syscall_args) : EINVAL;
	case OP_SENDFD:
		return check_shape(o, sendfd_args);
	case OP_CHECKCWD:
		if (check_shape(o, checkcwd_args))
			return EINVAL;
		return o->args[0].len >= 1 ? 0 : EINVAL;
	case OP_EQUAL:
		if (check_shape(o, equal_args))
			return EINVAL;
		return o->args[0].len == o->args[1].len ? 0 : EINVAL;
	case OP_REPLY:
		return check_shape(o, reply_args);
	case OP_SECCOMP:
		if (check_shape(o, seccomp_args))
			return EINVAL;
		/* BPF_MAXINSNS is 4096. */
		return o->args[1].len && o->args[1].len % 8 == 0 && o->args[1].len <= 4096 * 8 ? 0 : EINVAL;
	}
	return EINVAL;
}

static u32 check_op(const struct prog *p, const struct op *o, u64 *set)
{
	u32 e;

	if ((e = check_range(p, o->name_off, o->name_len)))
		return e;
	if ((e = check_kind(o)))
		return e;
	if (o->kind != OP_SYSCALL && (o->flags || o->nr))
		return EINVAL;
	if (o->flags & ~(u32)(F_OUT | F_ALLOW))
		return EINVAL;
	if (!(o->flags & F_OUT) && o->out)
		return EINVAL;
	if (o->out >= NSLOTS)
		return EBADSLT;
	if (o->flags & F_ALLOW ? o->allow == 0 || o->allow > 4095 : o->allow != 0)
		return EINVAL;
	for (int i = 0; i < NARGS; i++)
		if ((e = check_arg(p, &o->args[i], *set)))
			return e;
	/* Only later ops may read the slot this one stores. */
	if (o->flags & F_OUT)
		*set |= 1ul << o->out;
	return 0;
}

static u32 apply_reloc(const struct prog *p, u32 off)
{
	u64 *word;

	if (off % 8 || check_range(p, off, 8))
		return ERANGE;
	word = (u64 *)(p->data + off);
	if (*word >= p->data_len)
		return ERANGE;
	*word = (u64)(p->data + *word);
	return 0;
}

/* load checks the n-byte message in msg and fills p; on a refusal it
 * returns the errno and sets *bad to the op at fault (NOIDX: the rest). */
static u32 load(u64 n, struct prog *p, u32 *bad)
{
	const struct hdr *h = (const struct hdr *)msg;
	u64 ops_end, relocs_end, data_off, set = slots_set;
	const u32 *relocs;
	u32 e;

	*bad = NOIDX;
	if (n > MAXMSG)
		return EMSGSIZE;
	if (n < sizeof *h || h->magic != MAGIC)
		return EBADMSG;
	if (nfds ? h->fdslot == 0 || h->fdslot > NSLOTS - nfds : h->fdslot != 0)
		return EBADSLT;
	for (u32 i = 0; i < nfds; i++)
		set |= 1ul << (h->fdslot + i);
	/* u32 counts times small sizes: no overflow in u64. */
	ops_end = sizeof *h + (u64)h->nops * sizeof(struct op);
	relocs_end = ops_end + (u64)h->nrelocs * sizeof(u32);
	data_off = (relocs_end + 7) & ~7ul;
	if (data_off > n)
		return EBADMSG;
	p->ops = (const struct op *)(msg + sizeof *h);
	p->nops = h->nops;
	p->data = msg + data_off;
	p->data_len = n - data_off;
	for (u32 i = 0; i < p->nops; i++) {
		*bad = i;
		if ((e = check_op(p, &p->ops[i], &set)))
			return e;
	}
	*bad = NOIDX;
	relocs = (const u32 *)(msg + ops_end);
	for (u32 i = 0; i < h->nrelocs; i++)
		if ((e = apply_reloc(p, relocs[i])))
			return e;
	for (u32 i = 0; i < nfds; i++)
		slots[h->fdslot + i] = (u64)fds[i];
	slots_set = set;
	return 0;
}

/* recv_program receives one message into msg, and the fds it carries into
 * fds: its whole length (MSG_TRUNC: even past msg), 0 at EOF, or -errno. */
static long recv_program(void)
{
	struct iovec iov = { msg, sizeof msg };
	struct cmsg_fds c;
	struct msghdr mh = { 0, 0, &iov, 1, &c, sizeof c, 0 };
	long n = sys_retry(SYS_recvmsg, (u64)syncfd, (u64)&mh, MSG_TRUNC | MSG_CMSG_CLOEXEC, 0, 0, 0);

	nfds = 0;
	if (n <= 0)
		return n;
	if (mh.flags & MSG_CTRUNC)
		return -EMSGSIZE;
	if (mh.controllen >= 16 && c.level == SOL_SOCKET && c.type == SCM_RIGHTS && c.len >= 16) {
		nfds = (u32)(c.len - 16) / 4;
		for (u32 i = 0; i < nfds; i++)
			fds[i] = c.fd[i];
	}
	return n;
}

/* ---- running ---- */

static u64 arg_value(const struct prog *p, const struct arg *a)
{
	switch (a->tag) {
	case A_INT:
		return a->val;
	case A_DATA:
		return (u64)(p->data + a->val);
	case A_SLOT:
		return slots[a->val];
	}
	return 0;
}

static u32 run_syscall(const struct prog *p, const struct op *o)
{
	u64 v[NARGS];
	long r;

	for (int i = 0; i < NARGS; i++)
		v[i] = arg_value(p, &o->args[i]);
	r = syscall6(o->nr, v[0], v[1], v[2], v[3], v[4], v[5]);
	if (r < 0 && r > -4096 && !(o->flags & F_ALLOW && (u64)-r == o->allow))
		return (u32)-r;
	if (o->flags & F_OUT)
		slots[o->out] = (u64)r;
	return 0;
}

static u32 send_fd(int sock, int fd)
{
	static u8 byte;
	struct iovec iov = { &byte, 1 };
	struct cmsg_fd c = { 20, SOL_SOCKET, SCM_RIGHTS, fd, 0 };
	struct msghdr mh = { 0, 0, &iov, 1, &c, sizeof c, 0 };
	long r = sys_retry(SYS_sendmsg, (u64)sock, (u64)&mh, MSG_NOSIGNAL, 0, 0, 0);

	return r < 0 ? (u32)-r : 0;
}

static u32 run_sendfd(const struct prog *p, const struct op *o)
{
	int sock = o->args[0].tag == A_NONE ? syncfd : (int)arg_value(p, &o->args[0]);

	return send_fd(sock, (int)arg_value(p, &o->args[1]));
}

/* A cwd outside the root (a directory fd leaked across a chroot or
 * pivot_root, CVE-2024-21626) is no error for getcwd: it returns the path
 * prefixed with "(unreachable)". Only a path from / is a cwd inside. */
static u32 run_checkcwd(const struct prog *p, const struct op *o)
{
	u8 *buf = p->data + o->args[0].val;
	long r = syscall6(SYS_getcwd, (u64)buf, o->args[0].len, 0, 0, 0, 0);

	if (r < 0)
		return (u32)-r;
	return r > 0 && buf[0] == '/' ? 0 : ENOENT;
}

static u32 run_equal(const struct prog *p, const struct op *o)
{
	const u8 *a = p->data + o->args[0].val, *b = p->data + o->args[1].val;

	for (u64 i = 0; i < o->args[0].len; i++)
		if (a[i] != b[i])
			return EXDEV;
	return 0;
}

/* struct sock_fprog holds a pointer, which the program's data cannot carry
 * without a relocation: built here around the filter in data. */
static u32 run_seccomp(const struct prog *p, const struct op *o)
{
	struct { unsigned short len; u8 *filter; } fprog = {
		(unsigned short)(o->args[1].len / 8), p->data + o->args[1].val };
	long r = syscall6(SYS_seccomp, SECCOMP_SET_MODE_FILTER, o->args[0].val, (u64)&fprog, 0, 0, 0);

	return r < 0 ? (u32)-r : 0;
}

static u32 run_op(const struct prog *p, const struct op *o)
{
	switch (o->kind) {
	case OP_SYSCALL:
		return run_syscall(p, o);
	case OP_SENDFD:
		return run_sendfd(p, o);
	case OP_CHECKCWD:
		return run_checkcwd(p, o);
	case OP_EQUAL:
		return run_equal(p, o);
	case OP_SECCOMP:
		return run_seccomp(p, o);
	}
	return EINVAL; /* OP_REPLY is run by run() */
}

static u64 put(u8 *buf, u64 at, u64 cap, const u8 *s, u64 n)
{
	for (u64 i = 0; i < n && at < cap; i++)
		buf[at++] = s[i];
	return at;
}

/* After a REPLY the runtime no longer reads the socket: fd 2 is all left. */
static __attribute__((noreturn)) void die_late(const struct prog *p, const struct op *o, u32 err)
{
	static const char prefix[] = "estiba-runtime init: ", mid[] = ": errno ";
	u8 buf[512], digits[10];
	u64 n = 0, nd = 0;

	n = put(buf, n, sizeof buf, (const u8 *)prefix, sizeof prefix - 1);
	n = put(buf, n, sizeof buf - 32, p->data + o->name_off, o->name_len);
	n = put(buf, n, sizeof buf, (const u8 *)mid, sizeof mid - 1);
	do
		digits[nd++] = (u8)('0' + err % 10);
	while ((err /= 10) && nd < sizeof digits);
	while (nd)
		buf[n++] = digits[--nd];
	buf[n++] = '\n';
	syscall6(SYS_write, 2, (u64)buf, n, 0, 0, 0);
	exit_group(127);
}

static void run(const struct prog *p)
{
	int replied = 0;

	for (u32 i = 0; i < p->nops; i++) {
		const struct op *o = &p->ops[i];
		u32 e;

		if (o->kind == OP_REPLY) {
			if (send_reply(R_OK, i, 0) < 0)
				exit_group(1);
			replied = 1;
			continue;
		}
		if (!(e = run_op(p, o)))
			continue;
		if (replied)
			die_late(p, o, e);
		send_reply(R_FAILED, i, e);
		exit_group(1);
	}
	if (!replied && send_reply(R_OK, p->nops, 0) < 0)
		exit_group(1);
}

static int parse_fd(const char *s)
{
	long v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 1 << 24)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return (int)v;
}

/* A signal that would end an ordinary process ends the stub too, as it
 * ended a Go init (whose runtime catches them all): the container's pid 1
 * ignores a signal it has no handler for, so `kill` of a created container
 * would otherwise do nothing. execve resets the handlers. */
static void on_signal(int sig)
{
	exit_group(128 + sig);
}

/* x86-64 delivers a signal only with SA_RESTORER; on_signal never returns,
 * but the frame needs a return address. */
void stub_restorer(void);
__asm__(".text\n"
	"stub_restorer:\n"
	"	mov $15, %eax\n" /* rt_sigreturn */
	"	syscall\n"
	"	hlt\n");

struct ksigaction { void (*handler)(int); u64 flags; void (*restorer)(void); u64 mask; };

static void catch_signals(void)
{
	enum { SYS_rt_sigaction = 13, SA_RESTORER = 0x04000000 };
	/* Those whose default is to end the process, but KILL and STOP. */
	static const u8 sigs[] = { 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31 };
	struct ksigaction sa = { on_signal, SA_RESTORER, stub_restorer, ~0ul };

	for (u64 i = 0; i < sizeof sigs; i++)
		syscall6(SYS_rt_sigaction, sigs[i], (u64)&sa, 0, 8, 0, 0);
	for (u64 sig = 34; sig <= 64; sig++)
		syscall6(SYS_rt_sigaction, sig, (u64)&sa, 0, 8, 0, 0);
}

__attribute__((noreturn, used)) void stub_main(long *sp)
{
	static const char usage[] = "usage: estiba-init-stub <syncfd>\n";
	char **argv = (char **)(sp + 1);
	struct prog p;
	u32 bad, e;
	long n;

	syncfd = sp[0] == 2 ? parse_fd(argv[1]) : -1;
	if (syncfd < 0) {
		syscall6(SYS_write, 2, (u64)usage, sizeof usage - 1, 0, 0, 0);
		exit_group(2);
	}
	/* The socket must not reach the container's process: its close at
	 * execve is also how the runtime sees the exec (EOF, no reply). */
	if (syscall6(SYS_fcntl, (u64)syncfd, F_SETFD, FD_CLOEXEC, 0, 0, 0) < 0)
		exit_group(1);
	catch_signals();
	for (;;) {
		n = recv_program();
		if (n <= 0)
			exit_group(1);
		if ((e = load((u64)n, &p, &bad))) {
			send_reply(R_INVALID, bad, e);
			exit_group(1);
		}
		run(&p);
	}
}

/* The kernel starts us with argc at (%rsp), argv after it. The call leaves
 * %rsp 16-aligned minus 8 at stub_main's entry, as the ABI wants. */
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call stub_main\n"
	"	hlt\n");
