// Package initstub builds the programs that the init stub
// (runtime/initstub/c/stub.c, bin/estiba-init-stub) runs, and exchanges them
// with it over its sync socket. A program is a list of raw syscalls and a few
// checks, run in order by the stub in the container's namespaces, until the
// last one execs the container's process.
//
// The wire format is written below the package clause, the same text as at
// the top of stub.c (TestWireFormatDocumented keeps the two identical).
package initstub

// Wire format, version 1. Integers are little-endian, structs naturally aligned.
// A program is one SOCK_SEQPACKET message of at most 1 MiB:
//
//   header  16 bytes, at 0
//   ops     nops x 128 bytes, at 16
//   relocs  nrelocs x u32, right after the ops
//   data    from the next multiple of 8 to the end of the message
//
// header  u32 magic     0x31495345 ("ESI1")
//         u32 nops
//         u32 nrelocs
//         u32 fdslot    0, or the slot of the first fd the message carries: a
//                       program may come with 1..16 fds in one SCM_RIGHTS
//                       control message (received close-on-exec), stored in
//                       order in slots fdslot, fdslot+1... (1 <= fdslot,
//                       fdslot + their number <= 64). fdslot 0 with fds, or
//                       not 0 without, is refused.
// op      u32 kind      1 SYSCALL, 2 SENDFD, 3 CHECKCWD, 4 EQUAL, 5 REPLY,
//                       6 SECCOMP
//         u32 flags     SYSCALL only: 1 OUT (store the result in slot out),
//                       2 ALLOW (a -allow result is no failure; the slot gets it)
//         u32 name_off  the op's name for failure reports: a range of data,
//         u32 name_len  no NUL needed
//         u32 out       slot, < 64 (0 without OUT)
//         u32 allow     errno, 1..4095 (0 without ALLOW)
//         u64 nr        SYSCALL: the syscall number, < 4096; else 0
//         arg args[6]
// arg     u32 tag       0 NONE (the value 0), 1 INT, 2 DATA, 3 SLOT
//         u32 len       DATA: the length of the range; else 0
//         u64 val       INT: the value; DATA: the offset of the range in data;
//                       SLOT: the slot, < 64, stored (OUT) by an earlier op of
//                       this program or of an earlier one; NONE: 0
// reloc   u32           the offset in data of an 8-aligned u64 that holds an
//                       offset in data (< data length): the stub replaces it with
//                       that byte's address before it runs any op. This is how
//                       char *argv[] arrays cross: NULL-terminated, the strings
//                       also in data.
// Operands of the other kinds (unused args are NONE):
//   SENDFD    args[0] the socket (NONE: the sync socket), INT or SLOT;
//             args[1] the fd, INT or SLOT
//   CHECKCWD  args[0] DATA, the getcwd buffer, len >= 1
//   EQUAL     args[0], args[1] DATA ranges of the same length
//   REPLY     none
//   SECCOMP   args[0] INT, the SECCOMP_FILTER_FLAG_* flags; args[1] DATA, the
//             struct sock_filter[] (8 bytes each, 1..4096 of them): the stub
//             loads it with seccomp(SECCOMP_SET_MODE_FILTER)
// The stub checks all of it before it runs the first op; a malformed program is
// refused with an INVALID reply. The data area is the stub's copy, writable.
// Slots keep their values from one program to the next; data does not.
//
// reply   u32 status    0 OK, 1 FAILED, 2 INVALID
//         u32 index     FAILED, INVALID: the op (0xffffffff: the header);
//                       OK: the REPLY op, or nops at the end of the program
//         u32 errno     FAILED, INVALID: why
//         u32 reserved  0
// An fd sent by SENDFD: a 1-byte message (0) carrying it in SCM_RIGHTS.
