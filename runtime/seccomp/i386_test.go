package seccomp

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/estiba/estiba/internal/testutil"
	"golang.org/x/sys/unix"
)

// i386Program is a static i386 ELF executable that exits with -getuid():
// 0 for root when getuid is allowed, the errno when a filter fails it.
// Built by hand so the tests need no 32-bit toolchain.
func i386Program() []byte {
	const base = 0x08048000
	code := []byte{
		0xb8, 24, 0, 0, 0, // mov eax, 24 (getuid on i386)
		0xcd, 0x80, // int 0x80
		0xf7, 0xd8, // neg eax
		0x89, 0xc3, // mov ebx, eax
		0xb8, 1, 0, 0, 0, // mov eax, 1 (exit)
		0xcd, 0x80, // int 0x80
	}
	const ehsize, phsize = 52, 32
	size := uint32(ehsize + phsize + len(code))
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	b = append(b, 0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0) // 32-bit, LE, SysV
	b = le.AppendUint16(b, 2)                                              // ET_EXEC
	b = le.AppendUint16(b, 3)                                              // EM_386
	b = le.AppendUint32(b, 1)                                              // EV_CURRENT
	b = le.AppendUint32(b, base+ehsize+phsize)                             // entry
	b = le.AppendUint32(b, ehsize)                                         // phoff
	b = le.AppendUint32(b, 0)                                              // shoff
	b = le.AppendUint32(b, 0)                                              // flags
	b = le.AppendUint16(b, ehsize)
	b = le.AppendUint16(b, phsize)
	b = le.AppendUint16(b, 1) // phnum
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 1) // PT_LOAD
	b = le.AppendUint32(b, 0) // offset
	b = le.AppendUint32(b, base)
	b = le.AppendUint32(b, base)
	b = le.AppendUint32(b, size)
	b = le.AppendUint32(b, size)
	b = le.AppendUint32(b, 5) // R+X
	b = le.AppendUint32(b, 0x1000)
	return append(b, code...)
}

// childExec386 installs a filter and execs the i386 program.
func childExec386(archX86 bool) error {
	p := `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}`
	if archX86 {
		p = `{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],"syscalls":[{"names":["getuid"],"action":"SCMP_ACT_ERRNO","errnoRet":42}]}`
	}
	if _, err := install(mustJSON(p)); err != nil {
		return err
	}
	prog := os.Getenv("ESTIBA_SECCOMP_TEST_I386")
	return unix.Exec(prog, []string{prog}, nil)
}

func TestKernelI386(t *testing.T) {
	testutil.RequiresRoot(t)
	prog := filepath.Join(t.TempDir(), "getuid386")
	if err := os.WriteFile(prog, i386Program(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command(prog).Run(); err != nil {
		t.Skipf("cannot run i386 programs (no IA32 emulation?): %v", err)
	}
	tests := []struct {
		mode   string
		exit   int
		signal syscall.Signal
	}{
		// Listed: i386's own table, getuid is 24 there.
		{"exec386-x86", 42, 0},
		// Not listed: the bad-architecture action kills the process.
		{"exec386-native", 0, unix.SIGSYS},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=NONE")
			cmd.Env = append(os.Environ(), childEnv+"="+tt.mode, "ESTIBA_SECCOMP_TEST_I386="+prog)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child: %v: %s", err, out)
			}
			ws := exit.Sys().(syscall.WaitStatus)
			if tt.signal != 0 {
				if !ws.Signaled() || ws.Signal() != tt.signal {
					t.Fatalf("child ended with %v (%s), want %v", exit, out, tt.signal)
				}
				return
			}
			if ws.ExitStatus() != tt.exit {
				t.Fatalf("i386 getuid: exit %d (%s), want %d", ws.ExitStatus(), out, tt.exit)
			}
		})
	}
}
