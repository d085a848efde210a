package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/estiba/estiba/engine/api/types"
)

// Client speaks the Engine API over a unix socket: HTTP/1.1. It is
// written on net rather than net/http: the CLI starts for every `estiba
// run`, and net/http links TLS, x509, HTTP/2 and proxy support, whose
// package inits and page faults a unix-socket client never needs (about a
// fifth of the CLI's start cost). JSON calls (call) keep their connection
// for the next one, as net/http would (`run` creates, then starts, on one
// connection: a dial less for the CLI, an accept and a connection
// goroutine less for the daemon); streams and upgrades get their own.
type Client struct {
	socket string

	mu   sync.Mutex
	idle *persistConn // a kept-alive connection, at a response's end
}

// persistConn is a connection that outlives its request.
type persistConn struct {
	conn net.Conn
	br   *bufio.Reader
}

// NewClient parses a -H value: unix:///path (or a bare path).
func NewClient(host string) (*Client, error) {
	path := host
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil {
			return nil, fmt.Errorf("host %q: %w", host, err)
		}
		if u.Scheme != "unix" {
			return nil, fmt.Errorf("host %q: only unix:// sockets are supported", host)
		}
		path = u.Path
	}
	return &Client{socket: path}, nil
}

// HTTP statuses the CLI tells apart.
const (
	statusSwitchingProtocols = 101
	statusOK                 = 200
	statusNoContent          = 204
	statusNotModified        = 304
	statusNotFound           = 404
)

// apiError is a non-2xx answer.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return e.Message }

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == statusNotFound
}

// response is an answer whose body the caller reads and closes (closing
// it closes the connection).
type response struct {
	StatusCode int
	Header     header
	Body       io.ReadCloser
}

// header holds an answer's header fields, by lower-case name (the first
// of a repeated field).
type header map[string]string

func (h header) Get(name string) string { return h[strings.ToLower(name)] }

// request is one API call on the wire.
type request struct {
	method, path string
	query        url.Values
	header       map[string]string
	body         io.Reader
}

// uri is the request target: the path under the API version, escaped
// (names and references come from the command line), and the query.
func (r *request) uri() string {
	u := (&url.URL{Path: "/v" + types.APIVersion + r.path}).EscapedPath()
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	return u
}

// write sends the request line, the headers and the body: with a
// Content-Length when the body's size is known, chunked otherwise (a
// tarball streamed from stdin).
func (r *request) write(conn io.Writer) error {
	h := make([]byte, 0, 512)
	h = append(append(append(append(h, r.method...), ' '), r.uri()...), " HTTP/1.1\r\nHost: estiba\r\nUser-Agent: estiba-cli\r\n"...)
	for k, v := range r.header {
		h = append(append(append(append(h, k...), ": "...), v...), "\r\n"...)
	}
	size, known := bodySize(r.body)
	switch {
	case r.body == nil:
		if r.method == "POST" || r.method == "PUT" {
			h = append(h, "Content-Length: 0\r\n"...)
		}
		_, err := conn.Write(append(h, "\r\n"...))
		return err
	case known && size <= 64<<10:
		// One write: the head and a small body (a create) go together.
		h = append(strconv.AppendInt(append(h, "Content-Length: "...), size, 10), "\r\n\r\n"...)
		if _, err := io.Copy(bytesWriter{&h}, r.body); err != nil {
			return err
		}
		_, err := conn.Write(h)
		return err
	}
	w := bufio.NewWriter(conn)
	w.Write(h)
	if known {
		fmt.Fprintf(w, "Content-Length: %d\r\n\r\n", size)
		if _, err := io.Copy(w, r.body); err != nil {
			return err
		}
		return w.Flush()
	}
	w.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	if _, err := io.Copy(chunkedWriter{w}, r.body); err != nil {
		return err
	}
	w.WriteString("0\r\n\r\n")
	return w.Flush()
}

// bytesWriter appends to a byte slice.
type bytesWriter struct{ b *[]byte }

func (w bytesWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

func bodySize(b io.Reader) (int64, bool) {
	switch b := b.(type) {
	case *bytes.Reader:
		return int64(b.Len()), true
	case *strings.Reader:
		return int64(b.Len()), true
	case *bytes.Buffer:
		return int64(b.Len()), true
	}
	return 0, false
}

// chunkedWriter frames each write as one HTTP/1.1 chunk.
type chunkedWriter struct{ w *bufio.Writer }

func (c chunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	fmt.Fprintf(c.w, "%x\r\n", len(p))
	c.w.Write(p)
	if _, err := c.w.WriteString("\r\n"); err != nil {
		return 0, err
	}
	return len(p), nil
}

// roundTrip dials the daemon, sends req and reads the answer's head.
// The body is written while the answer is read, as net/http does: a
// daemon that refuses a streamed upload answers before reading it all,
// and its message is what the user needs. Cancelling ctx closes the
// connection (until the body is closed).
func (c *Client) roundTrip(ctx context.Context, req *request) (net.Conn, *bufio.Reader, *response, error) {
	s, err := c.send(ctx, req)
	if err != nil {
		return nil, nil, nil, err
	}
	return s.recv()
}

// sent is a request on its own connection, written (or being written),
// its answer not read yet: requests that do not depend on each other
// (run's attach and wait) are all sent before any answer is awaited.
type sent struct {
	ctx   context.Context
	req   *request
	conn  net.Conn
	stop  func() bool
	wrote chan error
}

// send dials the daemon and sends req (see roundTrip).
func (c *Client) send(ctx context.Context, req *request) (*sent, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	s := &sent{ctx: ctx, req: req, conn: conn, stop: context.AfterFunc(ctx, func() { conn.Close() }), wrote: make(chan error, 1)}
	if _, known := bodySize(req.body); known || req.body == nil {
		// A small request fits the socket's buffer: no goroutine (whose
		// stack costs page faults at every start) to write it.
		s.wrote <- req.write(conn)
	} else {
		go func() { s.wrote <- req.write(conn) }()
	}
	return s, nil
}

// recv reads the answer's head; the body is the caller's.
func (s *sent) recv() (net.Conn, *bufio.Reader, *response, error) {
	req, conn := s.req, s.conn
	br := bufio.NewReader(conn)
	resp, err := readHead(br)
	if err != nil {
		werr := <-s.wrote
		s.stop()
		conn.Close()
		switch {
		case s.ctx.Err() != nil:
			return nil, nil, nil, s.ctx.Err()
		case werr != nil:
			return nil, nil, nil, fmt.Errorf("%s %s: %w", req.method, req.path, werr)
		}
		return nil, nil, nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	if req.header["Upgrade"] != "" {
		// The stream is the caller's once the request is all sent.
		if err := <-s.wrote; err != nil {
			s.stop()
			conn.Close()
			return nil, nil, nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
		}
	}
	resp.Body = &body{r: bodyReader(req.method, resp, br), conn: conn, stop: s.stop, ctx: s.ctx}
	return conn, br, resp, nil
}

// dial connects to the daemon: a plain socket, in Go's poller as an
// os.File (closing it wakes a blocked read, as with a net.Conn). net's
// Dialer took ~0.4 ms more at every command (its connect machinery and a
// goroutine watching the context), measured alone: 820 against 388 µs,
// medians of 15 fresh processes. A unix socket's connect completes at once
// or fails; with the daemon's listen backlog full it fails with EAGAIN, as
// net's Dialer did too.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addr := &net.UnixAddr{Name: c.socket, Net: "unix"}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, c.dialError(&net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: os.NewSyscallError("socket", err)})
	}
	for {
		if err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: c.socket}); err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		syscall.Close(fd)
		return nil, c.dialError(&net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: os.NewSyscallError("connect", err)})
	}
	return &fileConn{File: os.NewFile(uintptr(fd), c.socket), addr: addr}, nil
}

func (c *Client) dialError(err error) error {
	return fmt.Errorf("cannot connect to the estiba daemon at unix://%s. Is the daemon running? (%w)", c.socket, err)
}

// fileConn is a connected socket as a net.Conn.
type fileConn struct {
	*os.File
	addr *net.UnixAddr
}

func (c *fileConn) LocalAddr() net.Addr  { return &net.UnixAddr{Net: "unix"} }
func (c *fileConn) RemoteAddr() net.Addr { return c.addr }

// CloseWrite shuts the sending half down (the daemon then sees the end of
// an attached stdin), as net.UnixConn's does.
func (c *fileConn) CloseWrite() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); err != nil {
		return err
	}
	return os.NewSyscallError("shutdown", serr)
}

// exchange sends a small request (its body in memory) and reads the
// whole answer, on the kept-alive connection if there is one, which it
// keeps again unless the daemon closes it. A kept connection the daemon
// closed meanwhile (idle too long) fails before the request reaches it:
// the request then goes again on a new connection, if it surely did not
// reach the daemon (not all written), or has no body (create's does: it
// is never sent twice).
func (c *Client) exchange(ctx context.Context, req *request, body []byte) (*response, []byte, error) {
	c.mu.Lock()
	pc := c.idle
	c.idle = nil
	c.mu.Unlock()
	for {
		reused := pc != nil
		if pc == nil {
			conn, err := c.dial(ctx)
			if err != nil {
				return nil, nil, err
			}
			pc = &persistConn{conn: conn, br: bufio.NewReader(conn)}
		}
		if body != nil {
			req.body = bytes.NewReader(body)
		}
		resp, b, keep, wrote, err := pc.exchange(ctx, req)
		if err != nil {
			pc.conn.Close()
			pc = nil
			if reused && ctx.Err() == nil && (!wrote || (body == nil && isClosed(err))) {
				continue
			}
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
		}
		if keep {
			c.mu.Lock()
			if c.idle == nil {
				c.idle, pc = pc, nil
			}
			c.mu.Unlock()
		}
		if pc != nil {
			pc.conn.Close()
		}
		return resp, b, nil
	}
}

// isClosed tells the errors of a connection the daemon had closed.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// exchange is one request and its whole answer on pc. keep: the
// connection is at the answer's end and the daemon keeps it open; wrote:
// the request was all written.
func (pc *persistConn) exchange(ctx context.Context, req *request) (resp *response, b []byte, keep, wrote bool, err error) {
	stop := context.AfterFunc(ctx, func() { pc.conn.Close() })
	defer stop()
	if err := req.write(pc.conn); err != nil {
		return nil, nil, false, false, err
	}
	if resp, err = readHead(pc.br); err != nil {
		return nil, nil, false, true, err
	}
	r := bodyReader(req.method, resp, pc.br)
	if b, err = io.ReadAll(r); err != nil {
		return nil, nil, false, true, unexpected(err)
	}
	// A body that ends with the connection (no length, not chunked) or a
	// daemon that says so ends the connection.
	_, toEOF := r.(*bufio.Reader)
	keep = !toEOF && !strings.EqualFold(resp.Header.Get("Connection"), "close") && resp.StatusCode != statusSwitchingProtocols
	// stop fails once ctx closed the connection: it is not kept.
	return resp, b, keep && stop(), true, nil
}

// readHead reads the status line and the headers. It is written out
// rather than net/textproto's: the three fields the client reads do not
// need textproto's table of common header names, built at its first use.
func readHead(br *bufio.Reader) (*response, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	proto, rest, ok := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return nil, fmt.Errorf("malformed answer from the daemon: %q", line)
	}
	h := header{}
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, fmt.Errorf("reading the daemon's answer: %w", unexpected(err))
		}
		if line == "" {
			return &response{StatusCode: status, Header: h}, nil
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("malformed header line from the daemon: %q", line)
		}
		k = strings.ToLower(k)
		if _, dup := h[k]; !dup {
			h[k] = strings.TrimSpace(v)
		}
	}
}

// readLine reads one line without its CRLF (or LF), at most 64 KiB.
func readLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if len(line) > 64<<10 {
			return "", errors.New("header line too long")
		}
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

// bodyReader frames the body as HTTP/1.1 does: none, chunked, a length,
// or up to the end of the connection.
func bodyReader(method string, resp *response, br *bufio.Reader) io.Reader {
	switch {
	case method == "HEAD" || resp.StatusCode < 200 || resp.StatusCode == statusNoContent || resp.StatusCode == statusNotModified:
		return strings.NewReader("")
	case strings.EqualFold(resp.Header.Get("Transfer-Encoding"), "chunked"):
		return &chunkedReader{r: br}
	}
	if n, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64); err == nil {
		return io.LimitReader(br, n)
	}
	return br
}

// body is a response body; Close ends the connection.
type body struct {
	r    io.Reader
	conn net.Conn
	stop func() bool
	ctx  context.Context
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && b.ctx.Err() != nil {
		err = b.ctx.Err()
	}
	return n, err
}

func (b *body) Close() error {
	b.stop()
	return b.conn.Close()
}

// chunkedReader decodes a chunked body (RFC 9112 §7.1), returning data as
// it arrives: events, logs -f and progress are long-lived streams.
type chunkedReader struct {
	r    *bufio.Reader
	left int64 // bytes left in the current chunk
	done bool
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, unexpected(err)
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("malformed chunk size %q from the daemon", line)
		}
		if n == 0 {
			c.done = true
			// Trailers, then the empty line.
			for {
				l, err := c.r.ReadString('\n')
				if err != nil || strings.TrimSpace(l) == "" {
					return 0, io.EOF
				}
			}
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if err != nil {
		return n, unexpected(err)
	}
	if c.left == 0 {
		if _, err := c.r.Discard(2); err != nil { // the chunk's CRLF
			return n, unexpected(err)
		}
	}
	return n, nil
}

// unexpected turns an EOF inside a chunked body into an error: the stream
// was cut, not ended.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// headersKey carries extra request headers in a context (X-Registry-Auth
// for pull and push).
type headersKey struct{}

func withHeaders(ctx context.Context, h map[string]string) context.Context {
	return context.WithValue(ctx, headersKey{}, h)
}

// do sends a request and returns the response for the caller to read;
// non-2xx answers become *apiError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*response, error) {
	_, _, resp, err := c.roundTrip(ctx, streamRequest(ctx, method, path, q, body, ctype))
	return checked(resp, err)
}

// streamRequest is a request whose answer is the caller's to read, on a
// connection of its own.
func streamRequest(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) *request {
	req := &request{method: method, path: path, query: q, body: body, header: map[string]string{"Connection": "close"}}
	if ctype != "" {
		req.header["Content-Type"] = ctype
	}
	if h, ok := ctx.Value(headersKey{}).(map[string]string); ok {
		for k, v := range h {
			req.header[k] = v
		}
	}
	return req
}

// checked turns a non-2xx answer into *apiError.
func checked(resp *response, err error) (*response, error) {
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != statusNotModified {
		defer resp.Body.Close()
		return nil, &apiError{Status: resp.StatusCode, Message: "Error response from daemon: " + errorMessage(resp.Body)}
	}
	return resp, nil
}

// errorMessage reads an error answer: Docker's {"message": …}, else text.
func errorMessage(r io.Reader) string {
	var e types.ErrorResponse
	b, _ := io.ReadAll(r)
	if json.Unmarshal(b, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(b))
	}
	return e.Message
}

// call sends in (JSON) and decodes the answer into out (if non-nil), on
// a kept-alive connection (see exchange).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	b, err := c.callRaw(ctx, method, path, q, body)
	if err != nil || out == nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// callRaw sends body (JSON, if non-nil) and returns the answer's body;
// non-2xx answers become *apiError.
func (c *Client) callRaw(ctx context.Context, method, path string, q url.Values, body []byte) ([]byte, error) {
	req := &request{method: method, path: path, query: q, header: map[string]string{}}
	if body != nil {
		req.header["Content-Type"] = "application/json"
	}
	if h, ok := ctx.Value(headersKey{}).(map[string]string); ok {
		for k, v := range h {
			req.header[k] = v
		}
	}
	resp, b, err := c.exchange(ctx, req, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode != statusNotModified {
		return nil, &apiError{Status: resp.StatusCode, Message: "Error response from daemon: " + errorMessage(bytes.NewReader(b))}
	}
	return b, nil
}

// hijack sends a request that upgrades to a raw stream (attach, exec).
// The connection outlives ctx: the caller closes it.
func (c *Client) hijack(ctx context.Context, path string, q url.Values, in any) (net.Conn, *bufio.Reader, error) {
	return hijacked(c.roundTrip(ctx, hijackRequest(path, q, in)))
}

func hijackRequest(path string, q url.Values, in any) *request {
	b := []byte{}
	if in != nil {
		b, _ = json.Marshal(in)
	}
	return &request{method: "POST", path: path, query: q, body: bytes.NewReader(b),
		header: map[string]string{"Content-Type": "application/json", "Connection": "Upgrade", "Upgrade": "tcp"}}
}

// hijacked is the stream of an upgrade's answer.
func hijacked(conn net.Conn, br *bufio.Reader, resp *response, err error) (net.Conn, *bufio.Reader, error) {
	if err != nil {
		return nil, nil, err
	}
	resp.Body.(*body).stop()
	if resp.StatusCode != statusSwitchingProtocols && resp.StatusCode != statusOK {
		defer conn.Close()
		return nil, nil, &apiError{Status: resp.StatusCode, Message: "Error response from daemon: " + errorMessage(resp.Body)}
	}
	return conn, br, nil
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
