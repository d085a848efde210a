package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
)

// Client talks to the monitor; one connection per call, so calls need no
// locking and a dead monitor shows up as a connect error.
type Client struct {
	Socket string
}

// Dial opens a connection, sends req and reads the answer line. The
// returned connection is positioned after the answer (for streams).
func (c *Client) Dial(ctx context.Context, req *Request) (net.Conn, *Response, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return nil, nil, fmt.Errorf("monitor %s: %w", c.Socket, err)
	}
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("monitor %s: %w", req.Op, err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("monitor %s: %w", req.Op, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("monitor %s: bad answer: %w", req.Op, err)
	}
	if resp.Error != "" {
		conn.Close()
		return nil, &resp, errors.New(resp.Error)
	}
	return &bufConn{Conn: conn, r: br}, &resp, nil
}

// Call is Dial for requests without a stream.
func (c *Client) Call(ctx context.Context, req *Request) (*Response, error) {
	conn, resp, err := c.Dial(ctx, req)
	if err != nil {
		return resp, err
	}
	conn.Close()
	return resp, nil
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
