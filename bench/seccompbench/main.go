// Command seccompbench compares estiba's seccomp filters with libseccomp's
// (what runc loads) for bench/seccomp.sh:
//
//	seccompbench profile               Docker's default profile, resolved, as JSON
//	seccompbench compile OUT < prof    estiba's BPF for a profile, raw sock_filters
//	seccompbench stats NAME=FILE...    length and instructions run per syscall
//	seccompbench exec FILE CMD ARGS... install a raw filter, then exec CMD
//	seccompbench loop N SYSCALL        make a cheap syscall N times
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"unsafe"

	"github.com/estiba/estiba/runtime/seccomp"
	"github.com/estiba/estiba/runtime/seccomp/defaultprofile"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: seccompbench profile|compile|stats|exec ..."))
	}
	var err error
	switch os.Args[1] {
	case "profile":
		err = printProfile()
	case "compile":
		err = compile(os.Args[2])
	case "stats":
		err = stats(os.Args[2:])
	case "exec":
		err = execFiltered(os.Args[2], os.Args[3:])
	case "loop":
		err = loop(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "seccompbench:", err)
	os.Exit(1)
}

func printProfile() error {
	p, err := defaultprofile.Docker(dockerCaps)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(p)
}

func compile(out string) error {
	var p specs.LinuxSeccomp
	if err := json.NewDecoder(os.Stdin).Decode(&p); err != nil {
		return err
	}
	prog, err := seccomp.Compile(&p)
	if err != nil {
		return err
	}
	f := make([]unix.SockFilter, len(prog.Instructions))
	for i, ins := range prog.Instructions {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := binary.Write(w, binary.NativeEndian, f); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func load(path string) ([]unix.SockFilter, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	f := make([]unix.SockFilter, len(b)/8)
	if err := binary.Read(strings.NewReader(string(b)), binary.NativeEndian, f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// hot are syscalls a busy container makes most.
var hot = []string{"read", "write", "futex", "epoll_wait", "openat", "newfstatat", "close", "mmap", "getdents64", "personality", "io_uring_enter"}

func stats(args []string) error {
	fmt.Printf("%-24s %6s %10s %10s", "filter", "insns", "mean-steps", "max-steps")
	for _, h := range hot {
		fmt.Printf(" %s", h)
	}
	fmt.Println()
	unixSyscalls, err := seccomp.SyscallTable(specs.ArchX86_64)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(unixSyscalls))
	for n := range unixSyscalls {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, a := range args {
		name, path, _ := strings.Cut(a, "=")
		prog, err := load(path)
		if err != nil {
			return err
		}
		total, worst := 0, 0
		for _, n := range names {
			_, steps, err := run(prog, unixSyscalls[n])
			if err != nil {
				return fmt.Errorf("%s: %s: %w", name, n, err)
			}
			total += steps
			worst = max(worst, steps)
		}
		fmt.Printf("%-24s %6d %10.1f %10d", name, len(prog), float64(total)/float64(len(names)), worst)
		for _, h := range hot {
			_, steps, _ := run(prog, unixSyscalls[h])
			fmt.Printf(" %*d", len(h), steps)
		}
		fmt.Println()
	}
	return nil
}

// run interprets prog for an x86_64 syscall nr with zero arguments and
// counts the instructions executed.
func run(prog []unix.SockFilter, nr uint32) (ret uint32, steps int, err error) {
	var data [16]uint32 // seccomp_data as words: nr, arch, ip, ip, args...
	data[0], data[1] = nr, 0xc000003e
	var a, x uint32
	var mem [16]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		steps++
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a = data[in.K/4]
		case unix.BPF_LD | unix.BPF_MEM:
			a = mem[in.K]
		case unix.BPF_LDX | unix.BPF_MEM:
			x = mem[in.K]
		case unix.BPF_ST:
			mem[in.K] = a
		case unix.BPF_STX:
			mem[in.K] = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			a |= in.K
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			var ok bool
			switch in.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				ok = a == in.K
			case unix.BPF_JGT:
				ok = a > in.K
			case unix.BPF_JGE:
				ok = a >= in.K
			case unix.BPF_JSET:
				ok = a&in.K != 0
			}
			if ok {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K, steps, nil
		default:
			return 0, steps, fmt.Errorf("opcode %#x not interpreted", in.Code)
		}
	}
	return 0, steps, fmt.Errorf("ran off the end")
}

// cheap are harmless syscalls with fixed arguments. Since Linux 5.11 the
// kernel caches verdicts that depend on the syscall number alone (getppid,
// futex in Docker's profile) and skips the filter for them; personality
// (0xffffffff, a query) has argument rules, so every call runs the filter.
var cheap = map[string][3]uintptr{
	"getppid":     {unix.SYS_GETPPID},
	"futex":       {unix.SYS_FUTEX}, // EFAULT
	"personality": {unix.SYS_PERSONALITY, 0xffffffff},
}

func loop(count, name string) error {
	c, ok := cheap[name]
	if !ok {
		return fmt.Errorf("loop: %q is not one of getppid, futex, personality", name)
	}
	var n int
	if _, err := fmt.Sscan(count, &n); err != nil {
		return err
	}
	for range n {
		unix.RawSyscall(c[0], c[1], c[2], 0)
	}
	return nil
}

func execFiltered(path string, argv []string) error {
	prog, err := load(path)
	if err != nil {
		return err
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	if len(prog) > 0 {
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if _, _, e := unix.Syscall(unix.SYS_SECCOMP, 1, 0, uintptr(unsafe.Pointer(&fprog))); e != 0 {
			return fmt.Errorf("seccomp: %w", e)
		}
		runtime.KeepAlive(prog)
	}
	return unix.Exec(bin, argv, os.Environ())
}
