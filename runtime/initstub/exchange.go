package initstub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The reply statuses.
const (
	statusOK uint32 = iota
	statusFailed
	statusInvalid
)

// ErrNoReply is the socket's end without a reply: the stub exec'd (its sync
// socket is close-on-exec) or died. The caller tells which from the process.
var ErrNoReply = errors.New("initstub: the stub closed its socket without a reply")

// StepError is a program's failure, as the stub replied it.
type StepError struct {
	Index int    // the op; -1: the program as a whole (Invalid)
	Name  string // the op's name; "program" for Index -1
	Errno syscall.Errno
	// Invalid: the stub refused the program as malformed and ran none of
	// its ops.
	Invalid bool
}

func (e *StepError) Error() string {
	if e.Invalid {
		return fmt.Sprintf("init stub refused the program (op %d, %s): %v", e.Index, e.Name, e.Errno)
	}
	return e.Name + ": " + e.Errno.Error()
}

func (e *StepError) Unwrap() error { return e.Errno }

// Exchange sends p on sock (the runtime's end of the stub's SOCK_SEQPACKET
// socket) and waits for the reply, collecting the fds that SENDFD ops sent
// before it (close-on-exec, in order; those sent after a REPLY op come with
// the next reply). A failed op comes back as a *StepError, and then the fds
// are closed.
func Exchange(sock *os.File, p *Program) (fds []int, err error) {
	if err := Send(sock, p); err != nil {
		return nil, err
	}
	return WaitReply(sock, p)
}

// Send only sends p, for a program whose reply comes later (WaitReply) or
// never: one that ends in execve replies only its failure.
func Send(sock *os.File, p *Program) error {
	b, err := p.Encode()
	if err != nil {
		return err
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("initstub: send: %w", err)
	}
	var oob []byte
	if len(p.fds) > 0 {
		oob = unix.UnixRights(p.fds...)
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		for grew := false; ; {
			serr = unix.Sendmsg(int(fd), b, oob, nil, unix.MSG_NOSIGNAL)
			if serr == unix.EMSGSIZE && !grew {
				grew = true
				if growSendBuffer(int(fd), len(b)) {
					continue
				}
			}
			if serr != unix.EINTR {
				return serr != unix.EAGAIN
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("initstub: send a program of %d bytes: %w", len(b), err)
	}
	return nil
}

// growSendBuffer makes room for a message of n bytes. A unix datagram or
// seqpacket message must fit in the sender's SO_SNDBUF (wmem_default, 208
// KiB, unless raised): past that, sendto fails with EMSGSIZE. The kernel
// doubles the value set; SO_SNDBUFFORCE (root) passes wmem_max.
func growSendBuffer(fd, n int) bool {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n) == nil ||
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n) == nil
}

// WaitReply waits for the reply to p, which was sent with Send, as Exchange
// does. The socket's end without a reply is ErrNoReply.
func WaitReply(sock *os.File, p *Program) (fds []int, err error) {
	defer func() {
		if err != nil {
			closeAll(fds)
			fds = nil
		}
	}()
	for {
		b, fd, err := recvOne(sock)
		switch {
		case err != nil:
			return fds, err
		case len(b) == 0 && fd < 0:
			return fds, ErrNoReply
		case len(b) == 1 && fd >= 0:
			fds = append(fds, fd)
		case len(b) == replyLen && fd < 0:
			return fds, replyError(b, p)
		default:
			if fd >= 0 {
				unix.Close(fd)
			}
			return fds, fmt.Errorf("initstub: unexpected message of %d bytes from the stub", len(b))
		}
	}
}

func replyError(b []byte, p *Program) error {
	le := binary.LittleEndian
	status, index, errno := le.Uint32(b[0:]), le.Uint32(b[4:]), le.Uint32(b[8:])
	i := int(index)
	if index == noIndex {
		i = -1
	}
	switch status {
	case statusOK:
		return nil
	case statusFailed, statusInvalid:
		return &StepError{Index: i, Name: p.opName(i), Errno: syscall.Errno(errno), Invalid: status == statusInvalid}
	}
	return fmt.Errorf("initstub: unknown reply status %d", status)
}

// recvOne receives one message: its bytes and the fd it carries, or -1.
func recvOne(sock *os.File) ([]byte, int, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, -1, fmt.Errorf("initstub: receive: %w", err)
	}
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn, flags int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				return rerr != unix.EAGAIN
			}
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, -1, fmt.Errorf("initstub: receive: %w", err)
	}
	fds, err := parseFDs(oob[:oobn])
	if err == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		err = fmt.Errorf("initstub: receive: a message truncated (flags %#x)", flags)
	}
	if err == nil && len(fds) > 1 {
		err = fmt.Errorf("initstub: receive: %d fds in one message", len(fds))
	}
	if err != nil {
		closeAll(fds)
		return nil, -1, err
	}
	if len(fds) == 0 {
		return buf[:n], -1, nil
	}
	return buf[:n], fds[0], nil
}

func parseFDs(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("initstub: receive: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("initstub: receive: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
