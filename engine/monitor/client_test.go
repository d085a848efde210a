package monitor

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// fakeMonitor answers every request line with reuse (or not), and counts
// its connections; kill closes the connections it holds.
func fakeMonitor(t *testing.T, reuse bool) (sock string, accepts *atomic.Int32, kill func()) {
	sock = filepath.Join(t.TempDir(), "m.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepts = new(atomic.Int32)
	conns := make(chan net.Conn, 16)
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			conns <- conn
			go func() {
				br := bufio.NewReader(conn)
				for {
					if _, err := br.ReadBytes('\n'); err != nil {
						conn.Close()
						return
					}
					if reuse {
						conn.Write([]byte(`{"pid":1,"reuse":true}` + "\n"))
					} else {
						conn.Write([]byte(`{"pid":1}` + "\n"))
						conn.Close()
						return
					}
				}
			}()
		}
	}()
	kill = func() {
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	}
	return sock, accepts, kill
}

func TestClientReusesConnections(t *testing.T) {
	for _, tc := range []struct {
		reuse bool
		want  int32
	}{{true, 1}, {false, 3}} {
		sock, accepts, _ := fakeMonitor(t, tc.reuse)
		c := &Client{Socket: sock}
		for range 3 {
			resp, err := c.Call(context.Background(), &Request{Op: OpList})
			if err != nil || resp.Pid != 1 {
				t.Fatalf("reuse %v: call: %v %v", tc.reuse, resp, err)
			}
		}
		if n := accepts.Load(); n != tc.want {
			t.Errorf("reuse %v: %d connections for 3 calls, want %d", tc.reuse, n, tc.want)
		}
		c.Close()
	}
}

// A kept connection that the monitor closed meanwhile (it exited while
// idle) costs a new connection, not a failed call.
func TestClientRedialsStaleConnection(t *testing.T) {
	sock, accepts, kill := fakeMonitor(t, true)
	c := &Client{Socket: sock}
	defer c.Close()
	if _, err := c.Call(context.Background(), &Request{Op: OpList}); err != nil {
		t.Fatal(err)
	}
	kill()
	if _, err := c.Call(context.Background(), &Request{Op: OpList}); err != nil {
		t.Fatalf("call after the monitor closed the kept connection: %v", err)
	}
	if n := accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A monitor that read the request and died on it is not asked again: the
// call fails, as it did before connections were kept.
func TestClientNoResendAfterRead(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var reads atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReader(conn)
				for {
					if _, err := br.ReadBytes('\n'); err != nil {
						conn.Close()
						return
					}
					if reads.Add(1) == 2 {
						conn.Close() // read, then gone without an answer
						return
					}
					conn.Write([]byte(`{"reuse":true}` + "\n"))
				}
			}()
		}
	}()
	c := &Client{Socket: sock}
	defer c.Close()
	if _, err := c.Call(context.Background(), &Request{Op: OpList}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(context.Background(), &Request{Op: OpStart, ID: "x"}); err == nil {
		t.Fatal("call answered by a monitor that died on it")
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("the monitor read %d requests, want 2 (no resend)", n)
	}
}
