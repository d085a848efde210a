package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/estiba/estiba/engine/api/types"
)

// A request target keeps what paths may hold (a registry's port, a
// repository's slashes) and escapes the rest.
func TestRequestURI(t *testing.T) {
	r := &request{path: "/images/localhost:5000/a b?/push", query: map[string][]string{"tag": {"v 1"}}}
	want := "/v" + types.APIVersion + "/images/localhost:5000/a%20b%3F/push?tag=v+1"
	if got := r.uri(); got != want {
		t.Fatalf("uri %q, want %q", got, want)
	}
}

func TestChunkedReader(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"chunks", "3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\n\r\n", "abcd", nil},
		{"trailers", "2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", "hi", nil},
		{"cut", "5\r\nab", "ab", io.ErrUnexpectedEOF},
		{"bad size", "zz\r\n", "", fmt.Errorf("malformed")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte per read: a chunk's data arrives in pieces.
			r := &chunkedReader{r: bufio.NewReader(iotest.OneByteReader(strings.NewReader(tt.in)))}
			got, err := io.ReadAll(r)
			if string(got) != tt.want || (err == nil) != (tt.err == nil) || (tt.err == io.ErrUnexpectedEOF && err != tt.err) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// The client against net/http's server: a streamed (chunked) upload, a
// streamed answer, a sized one, an error, and a cancelled stream.
func TestClientAgainstHTTPServer(t *testing.T) {
	dir, err := os.MkdirTemp("", "estiba-cli-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		// Flushed lines: a chunked answer.
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "%d:%d:%v\n", i, len(b), r.TransferEncoding)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /missing", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		fmt.Fprint(w, `{"message":"no such thing"}`)
	})
	mux.HandleFunc("POST /refuse", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"message":"not a tarball"}`)
	})
	mux.HandleFunc("GET /forever", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "first")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := &http.Server{Handler: http.StripPrefix("/v"+types.APIVersion, mux)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := NewClient("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// io.MultiReader hides the size: the body goes chunked.
	resp, err := c.do(ctx, "POST", "/upload", nil, io.MultiReader(strings.NewReader(strings.Repeat("x", 100000))), "application/x-tar")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "0:100000:[chunked]\n1:100000:[chunked]\n2:100000:[chunked]\n"; err != nil || string(b) != want {
		t.Fatalf("upload answered %q, %v; want %q", b, err, want)
	}

	// Refused before the upload is read: the daemon's message, not EPIPE.
	_, err = c.do(ctx, "POST", "/refuse", nil, io.MultiReader(strings.NewReader(strings.Repeat("x", 8<<20))), "application/x-tar")
	if err == nil || err.Error() != "Error response from daemon: not a tarball" {
		t.Fatalf("refused upload: %v", err)
	}

	err = c.call(ctx, "GET", "/missing", nil, nil, nil)
	if !isNotFound(err) || err.Error() != "Error response from daemon: no such thing" {
		t.Fatalf("missing: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	resp, err = c.do(cctx, "GET", "/forever", nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); line != "first\n" || err != nil {
		t.Fatalf("stream: %q, %v", line, err)
	}
	cancel()
	if _, err := br.ReadString('\n'); err != context.Canceled {
		t.Fatalf("read after cancel: %v, want context.Canceled", err)
	}
}

// JSON calls share one kept-alive connection; one the daemon closed
// meanwhile is replaced without the caller seeing it.
func TestClientKeepAlive(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := 0
	mux := http.NewServeMux()
	mux.HandleFunc("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, `{"Id":%q}`, b)
	})
	mux.HandleFunc("POST /containers/x/start", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("POST /containers/x/stop", func(w http.ResponseWriter, r *http.Request) {
		// Answered, then the connection goes (Connection: close).
		w.Header().Set("Connection", "close")
		w.WriteHeader(304)
	})
	srv := &http.Server{Handler: http.StripPrefix("/v"+types.APIVersion, mux), ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := NewClient("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dialed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return conns
	}
	var created struct{ Id string }
	if err := c.call(ctx, "POST", "/containers/create", nil, "abc", &created); err != nil || created.Id != `"abc"` {
		t.Fatalf("create: %+v, %v", created, err)
	}
	if err := c.call(ctx, "POST", "/containers/x/start", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := dialed(); n != 1 {
		t.Fatalf("create and start took %d connections, want 1", n)
	}
	// The daemon closes the idle connection: the next call redials.
	shutRead(t, c.idle.conn) // the client sees EOF as on a closed connection
	if err := c.call(ctx, "POST", "/containers/x/start", nil, nil, nil); err != nil {
		t.Fatalf("start on a closed connection: %v", err)
	}
	if err := c.call(ctx, "POST", "/containers/x/stop", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if c.idle != nil {
		t.Fatal("a connection the daemon closes is kept")
	}
	err = c.call(ctx, "GET", "/missing", nil, nil, nil)
	if !isNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	if err := c.call(ctx, "POST", "/containers/x/start", nil, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// shutRead shuts the reading half of conn down.
func shutRead(t *testing.T, conn net.Conn) {
	t.Helper()
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) {
		if err := syscall.Shutdown(int(fd), syscall.SHUT_RD); err != nil {
			t.Fatal(err)
		}
	})
}

// dial's errors read as net's Dialer's did: no daemon, and a daemon whose
// listen backlog is full (at once, not a hang).
func TestDialErrors(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full.sock")
	lfd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(lfd)
	if err := syscall.Bind(lfd, &syscall.SockaddrUnix{Name: full}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	// A backlog of 0 holds one connection that nobody accepts.
	c := &Client{socket: full}
	first, err := c.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	for _, tt := range []struct{ socket, want string }{
		{filepath.Join(dir, "missing.sock"), "connect: no such file or directory"},
		{full, "connect: resource temporarily unavailable"},
	} {
		c := &Client{socket: tt.socket}
		conn, err := c.dial(context.Background())
		if err == nil {
			conn.Close()
			t.Errorf("%s: dialed", tt.socket)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "Is the daemon running?") || !strings.Contains(msg, "dial unix "+tt.socket+": "+tt.want) {
			t.Errorf("%s: %q", tt.socket, msg)
		}
	}
}
