package network

import (
	"context"
	"io"
	"math"
	"net"
	"testing"
	"time"
)

// TestBandwidth measures shaped throughput in both directions through a
// veth, then changes the limit live. Each measurement skips the first
// second (slow start, the bucket's initial burst) and counts the next 3 s.
func TestBandwidth(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~15 s")
	}
	m, _ := newTestManager(t)
	ctx := context.Background()
	mustNet(t, m, "bw", "10.236.0.0/24", false)
	ns1, ns2 := newNetns(t, "b1"), newNetns(t, "b2")
	e1 := mustAttach(t, m, "b1", ns1, "bw", AttachOptions{Bandwidth: Bandwidth{IngressRate: 20e6}})
	e2 := mustAttach(t, m, "b2", ns2, "bw", AttachOptions{})

	// The shaped quantity is link-layer bytes, so count them where they
	// arrive: the receiving endpoint's veth counters (TCP payload would be
	// ~4% lower: headers).
	check := func(what string, from, to string, toIP string, want float64) {
		t.Helper()
		rx := func() int64 {
			st, err := m.Stats(map[string]string{ns1: "b1", ns2: "b2"}[to], "bw")
			if err != nil {
				t.Fatal(err)
			}
			return int64(st.RxBytes)
		}
		got := measure(t, from, to, toIP, rx)
		if math.Abs(got-want)/want > 0.10 {
			t.Errorf("%s: %.2f Mbit/s, want %.2f ±10%%", what, got/1e6, want/1e6)
		} else {
			t.Logf("%s: %.2f Mbit/s (limit %.0f)", what, got/1e6, want/1e6)
		}
	}
	check("into b1 (ingress 20mbit)", ns2, ns1, e1.IP.String(), 20e6)
	if err := m.SetBandwidth(ctx, "b1", "bw", Bandwidth{IngressRate: 40e6, EgressRate: 10e6}); err != nil {
		t.Fatal(err)
	}
	check("into b1 after live change (40mbit)", ns2, ns1, e1.IP.String(), 40e6)
	check("out of b1 (egress 10mbit)", ns1, ns2, e2.IP.String(), 10e6)
	st, err := m.Stats("b1", "bw")
	if err != nil || st.RxBytes < 10e6 || st.TxBytes < 3e6 {
		t.Errorf("stats: %+v %v", st, err)
	}
	if err := m.SetBandwidth(ctx, "b1", "bw", Bandwidth{}); err != nil {
		t.Fatal(err)
	}
	if m.linkExists(ifbName(e1)) {
		t.Error("ifb left after removing the egress limit")
	}
}

// measure streams TCP from namespace from to toIP (a listener in to) and
// returns the rate in bit/s of counter over seconds 1-4.
func measure(t *testing.T, from, to, toIP string, counter func() int64) float64 {
	t.Helper()
	var ln net.Listener
	if err := InNetns(to, func() (err error) { ln, err = net.Listen("tcp", toIP+":5201"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	var c net.Conn
	if err := InNetns(from, func() (err error) { c, err = net.Dial("tcp", toIP+":5201"); return err }); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(buf); err != nil && !isTimeout(err) {
				return
			}
		}
	}()
	time.Sleep(time.Second)
	a, t0 := counter(), time.Now()
	time.Sleep(3 * time.Second)
	b, t1 := counter(), time.Now()
	close(stop)
	c.Close()
	return float64(b-a) * 8 / t1.Sub(t0).Seconds()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout() || err == io.ErrShortWrite
}
