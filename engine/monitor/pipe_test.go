package monitor

import (
	"bytes"
	"os"
	"testing"

	"github.com/estiba/estiba/engine/logs"
	"golang.org/x/sys/unix"
)

// TestPipeGrows: a container's output pipes start small (memory of the
// container's for as long as it runs) and grow once a read finds one full.
func TestPipeGrows(t *testing.T) {
	p := &proc{id: "pipes"}
	child, stdout, stderr, err := p.stdio(false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	defer stderr.Close()
	size := func(f *os.File) int {
		t.Helper()
		rc, _ := f.SyscallConn()
		var n int
		var ferr error
		rc.Control(func(fd uintptr) { n, ferr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) })
		if ferr != nil {
			t.Fatal(ferr)
		}
		return n
	}
	if got := size(stdout); got != pipeStart {
		t.Errorf("stdout pipe: %d bytes, want %d", got, pipeStart)
	}
	if got := size(stderr); got != pipeStart {
		t.Errorf("stderr pipe: %d bytes, want %d", got, pipeStart)
	}
	data := bytes.Repeat([]byte("0123456789abcde\n"), 4*pipeFull/16)
	go func() {
		child.Stdout.Write(data)
		closeStdio(child)
	}()
	var got bytes.Buffer
	p.pump(1, stdout, &logs.LineSplitter{Stream: "stdout", Emit: func(e logs.Entry) error {
		got.WriteString(e.Log)
		return nil
	}})
	if got.Len() != len(data) {
		t.Errorf("pumped %d bytes, want %d", got.Len(), len(data))
	}
	if n := size(stdout); n != pipeFull {
		t.Errorf("stdout pipe after a full read: %d bytes, want %d", n, pipeFull)
	}
}
