package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
)

// Client talks to the monitor. A stream (Dial) has a connection of its
// own; calls (Call) reuse the idle connections of earlier calls, where the
// monitor allows it, so each takes one connection at a time and calls
// need no ordering between them.
type Client struct {
	Socket string

	mu   sync.Mutex // guards idle
	idle []*bufConn
}

// maxIdle bounds the connections kept between calls: concurrent calls
// beyond it dial as before.
const maxIdle = 4

// Dial opens a connection, sends req and reads the answer line. The
// returned connection is positioned after the answer (for streams).
func (c *Client) Dial(ctx context.Context, req *Request) (net.Conn, *Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	resp, err := roundTrip(conn, req)
	if err != nil {
		conn.Close()
		return nil, resp, err
	}
	return conn, resp, nil
}

func (c *Client) dial(ctx context.Context) (*bufConn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return nil, fmt.Errorf("monitor %s: %w", c.Socket, err)
	}
	return &bufConn{Conn: conn, r: bufio.NewReader(conn)}, nil
}

// errStale is a kept connection that the monitor closed before it read
// the request (a monitor exits once idle): a write to a closed peer fails
// (EPIPE), and a peer closing with our request unread resets the
// connection (ECONNRESET). A plain EOF after the write is a monitor that
// read the request and died on it: that is no stale connection, and the
// request is not sent again.
var errStale = errors.New("connection closed by the monitor")

// roundTrip sends req on conn and reads its answer.
func roundTrip(conn *bufConn, req *Request) (*Response, error) {
	return roundTripCreated(conn, req, nil)
}

// roundTripCreated is roundTrip for a request that may get a first answer
// marked Created (see Request.Created), which goes to created.
func roundTripCreated(conn *bufConn, req *Request, created func(pid int)) (*Response, error) {
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("monitor %s: %w: %w", req.Op, errStale, err)
	}
	for first := true; ; first = false {
		line, err := conn.r.ReadBytes('\n')
		if err != nil {
			if first && len(line) == 0 && errors.Is(err, syscall.ECONNRESET) {
				err = fmt.Errorf("%w: %w", errStale, err)
			}
			return nil, fmt.Errorf("monitor %s: %w", req.Op, err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("monitor %s: bad answer: %w", req.Op, err)
		}
		if resp.Error != "" {
			return &resp, errors.New(resp.Error)
		}
		if resp.Created && first && created != nil {
			created(resp.Pid)
			continue
		}
		return &resp, nil
	}
}

// Call sends a request without a stream and returns its answer.
func (c *Client) Call(ctx context.Context, req *Request) (*Response, error) {
	return c.call(ctx, req, nil)
}

// Start sends an OpStart. Without Hold it asks for the init's pid first
// (Request.Created): created learns it as soon as the init exists, while
// the runtime finishes the start, and the start's own answer is returned.
// A monitor from before Created answers once, and created is not called.
func (c *Client) Start(ctx context.Context, req *Request, created func(pid int)) (*Response, error) {
	req.Created = !req.Hold && created != nil
	return c.call(ctx, req, created)
}

func (c *Client) call(ctx context.Context, req *Request, created func(pid int)) (*Response, error) {
	conn := c.takeIdle()
	if conn != nil {
		resp, err := roundTripCreated(conn, req, created)
		if !errors.Is(err, errStale) {
			c.done(conn, resp, err)
			return resp, err
		}
		// The monitor closed it before reading the request (it exited,
		// idle, or was restarted): the request is sent again, once, on a
		// fresh connection, as it would have been without reuse.
		conn.Close()
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := roundTripCreated(conn, req, created)
	c.done(conn, resp, err)
	return resp, err
}

func (c *Client) takeIdle() *bufConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.idle)
	if n == 0 {
		return nil
	}
	conn := c.idle[n-1]
	c.idle = c.idle[:n-1]
	return conn
}

// done keeps conn for the next call if the monitor reads on after an
// answer (Response.Reuse; an error answer is an answer too), or closes it.
func (c *Client) done(conn *bufConn, resp *Response, err error) {
	if resp != nil && resp.Reuse && conn.r.Buffered() == 0 {
		c.mu.Lock()
		if len(c.idle) < maxIdle {
			c.idle = append(c.idle, conn)
			conn = nil
		}
		c.mu.Unlock()
	}
	if conn != nil {
		conn.Close()
	}
}

// Close closes the idle connections.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, conn := range idle {
		conn.Close()
	}
	return nil
}

// Subscribe returns exit events until the connection breaks (the channel
// then closes).
func (c *Client) Subscribe(ctx context.Context) (<-chan Status, error) {
	conn, _, err := c.Dial(ctx, &Request{Op: OpSubscribe})
	if err != nil {
		return nil, err
	}
	ch := make(chan Status, 64)
	go func() {
		defer close(ch)
		defer conn.Close()
		go func() { <-ctx.Done(); conn.Close() }()
		dec := json.NewDecoder(conn)
		for {
			var st Status
			if dec.Decode(&st) != nil {
				return
			}
			ch <- st
		}
	}()
	return ch, nil
}
