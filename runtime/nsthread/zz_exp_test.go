package nsthread

import (
	"bufio"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestZZUserNSTmpfs(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "mount -t tmpfs t "+dir+" && echo ready && read x")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
	}
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); cmd.Process.Kill(); cmd.Wait() }()
	l, _ := bufio.NewReader(out).ReadString('\n')
	t.Logf("child: %q", l)
	err := Run(cmd.Process.Pid, unix.CLONE_NEWNS, func() error {
		t.Logf("mkdir as 0: %v", unix.Mkdir(dir+"/d", 0o755))
		t.Logf("mknod as 0: %v", unix.Mknod(dir+"/n", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		t.Logf("symlink as 0: %v", unix.Symlink("x", dir+"/l"))
		t.Logf("mkdir in rootfs-ish (host fs) as 0: ok")
		unix.Setfsuid(100000)
		unix.Setfsgid(100000)
		t.Logf("mkdir as fsuid 100000: %v", unix.Mkdir(dir+"/d2", 0o755))
		t.Logf("mknod as fsuid 100000: %v", unix.Mknod(dir+"/n2", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		t.Logf("symlink as fsuid 100000: %v", unix.Symlink("x", dir+"/l2"))
		t.Logf("chown as fsuid 100000: %v", unix.Lchown(dir+"/l2", 100005, 100005))
		var fd int
		fd, err := unix.Open(dir+"/n2", unix.O_RDWR, 0)
		t.Logf("open node n2: %v", err)
		unix.Close(fd)
		fd, err = unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		t.Logf("open_tree of the userns tmpfs from the thread: %v", err)
		unix.Close(fd)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := exec.Command("nsenter", "-t", itoa(cmd.Process.Pid), "-m", "ls", "-ln", dir).CombinedOutput()
	t.Logf("%s", b)
}

func itoa(i int) string { return string(append([]byte(nil), []byte(func() string { return fmtInt(i) }())...)) }
func fmtInt(i int) string {
	s := ""
	for i > 0 {
		s = string(rune('0'+i%10)) + s
		i /= 10
	}
	return s
}
