package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
)

// TestE2ENetworkRejoin: a network added with `network connect` is joined
// again whenever the container starts — restart policy, restart, start
// after stop, a container connected while stopped — and kept once (no
// duplicate endpoint) across a daemon restart; disconnect forgets it.
func TestE2ENetworkRejoin(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNetLeaks(t, "est")
	e := startE2E(t)
	var restarted *exec.Cmd
	t.Cleanup(func() {
		for _, c := range []string{"j1", "j2", "p2"} {
			e.estiba("rm", "-f", c)
		}
		e.estiba("network", "rm", "rja", "rjb")
		stopDaemon(t, e)
		if restarted != nil {
			restarted.Wait()
		}
		teardownNetworks(t, filepath.Join(e.work, "data", "network"))
	})
	e.steps([]step{
		{"estiba", []string{"import", busyboxTar(t, e.work), "e2e/bb"}, "sha256:", 0},
		{"estiba", []string{"network", "create", "--subnet", "10.231.5.0/24", "rja"}, "", 0},
		{"estiba", []string{"network", "create", "--subnet", "10.231.6.0/24", "rjb"}, "", 0},
		{"estiba", []string{"run", "-d", "--name", "p2", "--network", "rjb", "--userns", "host", "e2e/bb", "sleep", "600"}, "", 0},
		{"estiba", []string{"run", "-d", "--name", "j1", "--network", "rja", "--restart", "always", "--userns", "host", "e2e/bb", "sleep", "600"}, "", 0},
		{"estiba", []string{"network", "connect", "rjb", "j1"}, "", 0},
		{"estiba", []string{"network", "connect", "rjb", "j1"}, "already connected", 1},
	})
	p2, _ := endpoint(t, e, "rjb", "p2")
	reaches := func(when string, want bool) {
		t.Helper()
		out, _, code := e.estiba("exec", "j1", "busybox", "ping", "-c1", "-W2", p2)
		if got := code == 0 && strings.Contains(out, "1 packets received"); got != want {
			t.Errorf("%s: j1 reaches p2 on rjb: %v, want %v (%s)", when, got, want, out)
		}
		checkEndpoints(t, e, "j1", map[string]int{"rja": 1, "rjb": map[bool]int{true: 1}[want]})
	}
	reaches("after connect", true)
	e.steps([]step{{"estiba", []string{"restart", "-t", "1", "j1"}, "j1", 0}})
	reaches("after restart", true)

	pid := inspectPid(t, e, "j1")
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "restart policy", func() bool { p := inspectPid(t, e, "j1"); return p != 0 && p != pid })
	reaches("after the restart policy restarted it", true)

	e.steps([]step{
		{"estiba", []string{"stop", "-t", "1", "j1"}, "j1", 0},
		{"estiba", []string{"start", "j1"}, "j1", 0},
	})
	reaches("after stop and start", true)

	// A daemon restart keeps both endpoints, once each.
	rules := nftTable(t)
	stopDaemon(t, e)
	restarted = restartDaemon(t, e)
	if after := nftTable(t); after != rules {
		t.Errorf("nft table changed across a daemon restart:\nbefore:\n%s\nafter:\n%s", rules, after)
	}
	reaches("after a daemon restart", true)
	e.steps([]step{{"estiba", []string{"restart", "-t", "1", "j1"}, "j1", 0}})
	reaches("after a restart under the new daemon", true)

	// Disconnected while stopped: not joined at the next start.
	e.steps([]step{
		{"estiba", []string{"stop", "-t", "1", "j1"}, "j1", 0},
		{"estiba", []string{"network", "disconnect", "rjb", "j1"}, "", 0},
		{"estiba", []string{"network", "disconnect", "rjb", "j1"}, "not connected", 1},
		{"estiba", []string{"start", "j1"}, "j1", 0},
	})
	reaches("after disconnect while stopped", false)
	// Connected while created: joined at its first start.
	e.steps([]step{
		{"estiba", []string{"network", "connect", "rjb", "j1"}, "", 0},
		{"estiba", []string{"create", "--name", "j2", "--network", "rja", "--userns", "host", "e2e/bb", "sleep", "600"}, "", 0},
		{"estiba", []string{"network", "connect", "rjb", "j2"}, "", 0},
		{"estiba", []string{"start", "j2"}, "j2", 0},
		{"estiba", []string{"exec", "j2", "busybox", "ping", "-c1", "-W2", p2}, "1 packets received", 0},
		{"estiba", []string{"network", "disconnect", "rjb", "j2"}, "", 0},
		{"estiba", []string{"exec", "j2", "busybox", "ping", "-c1", "-W1", p2}, "0 packets received", 1},
	})
	reaches("connected again while running", true)
	checkEndpoints(t, e, "j2", map[string]int{"rja": 1, "rjb": 0})

	// The network of --network, disconnected while running, is not joined
	// again at the next start either; connecting it again brings it back.
	e.steps([]step{
		{"estiba", []string{"network", "disconnect", "rja", "j2"}, "", 0},
		{"estiba", []string{"stop", "-t", "1", "j2"}, "j2", 0},
		{"estiba", []string{"start", "j2"}, "j2", 0},
	})
	checkEndpoints(t, e, "j2", map[string]int{"rja": 0, "rjb": 0})
	e.steps([]step{
		{"estiba", []string{"network", "connect", "rja", "j2"}, "", 0},
		{"estiba", []string{"restart", "-t", "1", "j2"}, "j2", 0},
	})
	checkEndpoints(t, e, "j2", map[string]int{"rja": 1, "rjb": 0})
}

// checkEndpoints counts the container's endpoints on each network, from
// network inspect, and checks that each one's host veth exists.
func checkEndpoints(t *testing.T, e *e2e, name string, want map[string]int) {
	t.Helper()
	for net, n := range want {
		out, errs, code := e.estiba("network", "inspect", net)
		var nets []struct {
			Containers map[string]struct{ Name, EndpointID string }
		}
		if code != 0 || json.Unmarshal([]byte(out), &nets) != nil || len(nets) != 1 {
			t.Fatalf("network inspect %s: %d %s %s", net, code, out, errs)
		}
		got := 0
		for _, c := range nets[0].Containers {
			if c.Name != name {
				continue
			}
			got++
			if err := exec.Command("ip", "link", "show", c.EndpointID).Run(); err != nil {
				t.Errorf("%s on %s: veth %s missing", name, net, c.EndpointID)
			}
		}
		if got != n {
			t.Errorf("%s has %d endpoints on %s, want %d", name, got, net, n)
		}
	}
}

func inspectPid(t *testing.T, e *e2e, name string) int {
	t.Helper()
	out, _, _ := e.estiba("inspect", "-f", "{{.State.Pid}}", name)
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	return pid
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 150 {
		if cond() {
			return
		}
		sleep100ms()
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestE2EBandwidth measures real throughput through the engine: iperf3
// serves inside the container's namespace, a host-side client sends
// across the veth (into the container: --ingress-rate) or, reversed,
// receives (out of it: --egress-rate); then `estiba update` changes both
// live. Shaping counts link-layer bytes, so the TCP goodput iperf3
// reports is compared with the rate times payload/frame (1448/1514).
func TestE2EBandwidth(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "iperf3", "nsenter")
	if testing.Short() {
		t.Skip("takes ~30 s")
	}
	testutil.CheckNoNetLeaks(t, "est")
	e := startE2E(t)
	t.Cleanup(func() {
		e.estiba("rm", "-f", "bw")
		e.estiba("network", "rm", "bwn")
		stopDaemon(t, e)
		teardownNetworks(t, filepath.Join(e.work, "data", "network"))
	})
	e.steps([]step{
		{"estiba", []string{"import", busyboxTar(t, e.work), "e2e/bb"}, "sha256:", 0},
		{"estiba", []string{"network", "create", "--subnet", "10.231.7.0/24", "bwn"}, "", 0},
		{"estiba", []string{"run", "-d", "--name", "bw", "--network", "bwn", "--ingress-rate", "20mbit", "--egress-rate", "10mbit",
			"--userns", "host", "e2e/bb", "sleep", "600"}, "", 0},
	})
	ip, _ := endpoint(t, e, "bwn", "bw")
	pid := inspectPid(t, e, "bw")
	measure := func(what string, reverse bool, rate float64) {
		t.Helper()
		got, err := iperf3(pid, ip, reverse)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		want := rate * 1448 / 1514
		if math.Abs(got-want)/want > 0.10 {
			t.Errorf("%s: goodput %.2f Mbit/s, want %.2f ±10%% (limit %.0f Mbit/s)", what, got/1e6, want/1e6, rate/1e6)
		} else {
			t.Logf("%s: goodput %.2f Mbit/s = %.1f%% of the limit's payload share (limit %.0f Mbit/s)", what, got/1e6, 100*got/want, rate/1e6)
		}
	}
	measure("into the container (--ingress-rate 20mbit)", false, 20e6)
	measure("out of the container (--egress-rate 10mbit)", true, 10e6)
	e.steps([]step{{"estiba", []string{"update", "--ingress-rate", "40mbit", "--egress-rate", "5mbit", "bw"}, "bw", 0}})
	measure("into the container after update (40mbit)", false, 40e6)
	measure("out of the container after update (5mbit)", true, 5e6)
}

// iperf3 runs a one-shot server in the network namespace of pid and a
// client on the host against ip; -R makes the server (the container)
// send. It returns the receiver's goodput in bit/s over seconds 1-5.
func iperf3(pid int, ip string, reverse bool) (float64, error) {
	srv := exec.Command("nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", "iperf3", "-s", "-1", "-p", "5301")
	var serr strings.Builder
	srv.Stdout, srv.Stderr = &serr, &serr
	if err := srv.Start(); err != nil {
		return 0, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	args := []string{"-c", ip, "-p", "5301", "-t", "5", "-O", "1", "-J"}
	if reverse {
		args = append(args, "-R")
	}
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	for range 30 { // until the server listens (iperf3 -J exits 0 on errors)
		out, err := exec.Command("iperf3", args...).Output()
		r.Error = ""
		if err != nil || json.Unmarshal(out, &r) != nil || r.Error != "" {
			r.Error = fmt.Sprintf("%v %s %s", err, r.Error, out)
			sleep100ms()
			continue
		}
		break
	}
	if r.Error != "" || r.End.SumReceived.BitsPerSecond == 0 {
		srv.Process.Kill()
		srv.Wait()
		return 0, fmt.Errorf("iperf3 %s: %s; server: %s", strings.Join(args, " "), r.Error, serr.String())
	}
	return r.End.SumReceived.BitsPerSecond, nil
}

func sleep100ms() { time.Sleep(100 * time.Millisecond) }

// TestE2EIPv6: an IPv6 network through the engine: the container gets an
// IPv6 address (inspect), and its published ports answer on 127.0.0.1,
// ::1 and the network's IPv6 gateway; a port bound to [::1] only there.
func TestE2EIPv6(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNetLeaks(t, "est")
	e := startE2E(t)
	t.Cleanup(func() {
		e.estiba("rm", "-f", "w6")
		e.estiba("network", "rm", "v6n")
		stopDaemon(t, e)
		teardownNetworks(t, filepath.Join(e.work, "data", "network"))
	})
	e.steps([]step{
		{"estiba", []string{"import", busyboxTar(t, e.work), "e2e/bb"}, "sha256:", 0},
		{"estiba", []string{"network", "create", "--subnet", "fd00:e5:8::/64", "v6n"}, "IPv6", 1},
		{"estiba", []string{"network", "create", "--ipv6", "--subnet", "10.231.8.0/24", "--subnet", "fd00:e5:8::/64", "v6n"}, "", 0},
		{"estiba", []string{"run", "-d", "--name", "w6", "--network", "v6n", "-p", "18190:8080", "-p", "[::1]:18191:8080", "--userns", "host",
			"e2e/bb", "sh", "-c", "mkdir -p /tmp/w && echo hi6 > /tmp/w/index.html && exec busybox httpd -f -p 8080 -h /tmp/w"}, "", 0},
		{"estiba", []string{"inspect", "-f", "{{.NetworkSettings.Networks.v6n.GlobalIPv6Address}}", "w6"}, "fd00:e5:8::", 0},
		{"estiba", []string{"port", "w6"}, ":::18190", 0},
	})
	get := func(url string) string {
		c := http.Client{Timeout: time.Second}
		for range 20 {
			if resp, err := c.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return string(b)
			}
			sleep100ms()
		}
		return ""
	}
	for _, url := range []string{"http://127.0.0.1:18190/", "http://[::1]:18190/", "http://[fd00:e5:8::1]:18190/", "http://[::1]:18191/"} {
		if got := get(url); got != "hi6\n" {
			t.Errorf("GET %s: %q", url, got)
		}
	}
	c := http.Client{Timeout: 300 * time.Millisecond}
	if _, err := c.Get("http://127.0.0.1:18191/"); err == nil {
		t.Error("port bound to [::1] answers on 127.0.0.1")
	}
}
