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
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/estiba/estiba/engine/api/types"
)

// Client speaks the Engine API over a unix socket: HTTP/1.1, one
// connection per request. It is written on net rather than net/http: the
// CLI starts for every `estiba run`, and net/http links TLS, x509, HTTP/2
// and proxy support, whose package inits and page faults a unix-socket
// client never needs (about a fifth of the CLI's start cost).
type Client struct {
	socket string
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
	Header     textproto.MIMEHeader
	Body       io.ReadCloser
}

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
func (r *request) write(w *bufio.Writer) error {
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: estiba\r\nUser-Agent: estiba-cli\r\n", r.method, r.uri())
	for k, v := range r.header {
		fmt.Fprintf(w, "%s: %s\r\n", k, v)
	}
	size, known := bodySize(r.body)
	switch {
	case r.body == nil:
		if r.method == "POST" || r.method == "PUT" {
			w.WriteString("Content-Length: 0\r\n")
		}
		w.WriteString("\r\n")
		return w.Flush()
	case known:
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
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cannot connect to the estiba daemon at unix://%s. Is the daemon running? (%w)", c.socket, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	wrote := make(chan error, 1)
	if _, known := bodySize(req.body); known || req.body == nil {
		// A small request fits the socket's buffer: no goroutine (whose
		// stack costs page faults at every start) to write it.
		wrote <- req.write(bufio.NewWriter(conn))
	} else {
		go func() { wrote <- req.write(bufio.NewWriter(conn)) }()
	}
	br := bufio.NewReader(conn)
	resp, err := readHead(br)
	if err != nil {
		werr := <-wrote
		stop()
		conn.Close()
		switch {
		case ctx.Err() != nil:
			return nil, nil, nil, ctx.Err()
		case werr != nil:
			return nil, nil, nil, fmt.Errorf("%s %s: %w", req.method, req.path, werr)
		}
		return nil, nil, nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
	}
	if req.header["Upgrade"] != "" {
		// The stream is the caller's once the request is all sent.
		if err := <-wrote; err != nil {
			stop()
			conn.Close()
			return nil, nil, nil, fmt.Errorf("%s %s: %w", req.method, req.path, err)
		}
	}
	resp.Body = &body{r: bodyReader(req.method, resp, br), conn: conn, stop: stop, ctx: ctx}
	return conn, br, resp, nil
}

// readHead reads the status line and the headers.
func readHead(br *bufio.Reader) (*response, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	proto, rest, ok := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return nil, fmt.Errorf("malformed answer from the daemon: %q", line)
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("reading the daemon's answer: %w", err)
	}
	return &response{StatusCode: status, Header: h}, nil
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
	req := &request{method: method, path: path, query: q, body: body, header: map[string]string{"Connection": "close"}}
	if ctype != "" {
		req.header["Content-Type"] = ctype
	}
	if h, ok := ctx.Value(headersKey{}).(map[string]string); ok {
		for k, v := range h {
			req.header[k] = v
		}
	}
	_, _, resp, err := c.roundTrip(ctx, req)
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

// call sends in (JSON) and decodes the answer into out (if non-nil).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, q, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// hijack sends a request that upgrades to a raw stream (attach, exec).
// The connection outlives ctx: the caller closes it.
func (c *Client) hijack(ctx context.Context, path string, q url.Values, in any) (net.Conn, *bufio.Reader, error) {
	b := []byte{}
	if in != nil {
		b, _ = json.Marshal(in)
	}
	req := &request{method: "POST", path: path, query: q, body: bytes.NewReader(b),
		header: map[string]string{"Content-Type": "application/json", "Connection": "Upgrade", "Upgrade": "tcp"}}
	conn, br, resp, err := c.roundTrip(ctx, req)
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
