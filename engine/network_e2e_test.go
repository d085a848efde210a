package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estiba/estiba/internal/testutil"
	"github.com/estiba/estiba/network"
)

// TestE2ENetworks drives user-defined networks through the CLI: DNS by
// name inside a network, isolation between networks, rm refused while in
// use, connect/disconnect, prune; and nothing of ours left on the host.
func TestE2ENetworks(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.CheckNoNetLeaks(t, "est")
	e := startE2E(t)
	var restarted *exec.Cmd
	t.Cleanup(func() {
		for _, c := range []string{"a1", "a2", "b1"} {
			e.estiba("rm", "-f", c)
		}
		e.estiba("network", "rm", "e2ea", "e2eb", "e2ec", "e2ed")
		stopDaemon(t, e)
		if restarted != nil {
			restarted.Wait()
		}
		teardownNetworks(t, filepath.Join(e.work, "data", "network"))
	})
	tarball := busyboxTar(t, e.work)
	e.steps([]step{
		{"estiba", []string{"import", tarball, "e2e/bb"}, "sha256:", 0},
		{"estiba", []string{"network", "create", "--subnet", "10.231.1.0/24", "-l", "team=a", "e2ea"}, "", 0},
		{"estiba", []string{"network", "create", "e2eb"}, "", 0},
		{"estiba", []string{"network", "create", "e2ea"}, "", 1},
		{"estiba", []string{"network", "create", "--driver", "overlay", "e2ex"}, "not supported", 1},
		{"estiba", []string{"create", "--egress-rate", "fast", "e2e/bb"}, "rate", 1},
		{"estiba", []string{"create", "--network", "none", "--egress-rate", "1mbit", "e2e/bb"}, "network", 1},
		{"estiba", []string{"network", "ls"}, "e2eb", 0},
		{"estiba", []string{"network", "ls", "-q", "--filter", "label=team=a"}, "", 0},
		{"estiba", []string{"run", "-d", "--name", "a1", "--network", "e2ea", "--userns", "host", "e2e/bb", "sleep", "300"}, "", 0},
		{"estiba", []string{"run", "-d", "--name", "a2", "--network", "e2ea", "--ingress-rate", "10mbit", "--userns", "host", "e2e/bb", "sleep", "300"}, "", 0},
		{"estiba", []string{"run", "-d", "--name", "b1", "--network", "e2eb", "--userns", "host", "e2e/bb", "sleep", "300"}, "", 0},
		{"estiba", []string{"exec", "a1", "busybox", "ping", "-c1", "-W2", "a2"}, "1 packets received", 0},
	})
	a2, veth := endpoint(t, e, "e2ea", "a2")
	// The network's /etc/hosts is a file of the container's own layer,
	// written before its process ran: no mount over it.
	e.steps([]step{
		{"estiba", []string{"exec", "a2", "cat", "/etc/hosts"}, a2, 0},
		{"estiba", []string{"exec", "a2", "grep", "-c", " /etc/", "/proc/self/mountinfo"}, "0", 1},
	})
	checkRate(t, veth, "rate 10Mbit")
	e.steps([]step{{"estiba", []string{"update", "--ingress-rate", "20mbit", "a2"}, "a2", 0}})
	checkRate(t, veth, "rate 20Mbit")
	checkNetStats(t, e, "a1")
	e.steps([]step{{"estiba", []string{"stats", "--no-stream", "a1"}, "NET I/O", 0}})
	// A daemon restart reconciles: the same rules, once each, and the
	// containers keep their network.
	rules := nftTable(t)
	stopDaemon(t, e)
	restarted = restartDaemon(t, e)
	if after := nftTable(t); after != rules {
		t.Errorf("nft table changed across a daemon restart:\nbefore:\n%s\nafter:\n%s", rules, after)
	}
	e.steps([]step{{"estiba", []string{"exec", "a1", "busybox", "ping", "-c1", "-W2", "a2"}, "1 packets received", 0}})
	if !strings.HasPrefix(a2, "10.231.1.") {
		t.Fatalf("a2 has %q, want an address of --subnet", a2)
	}
	e.steps([]step{
		{"estiba", []string{"exec", "b1", "busybox", "ping", "-c1", "-W1", a2}, "0 packets received", 1},
		{"estiba", []string{"network", "rm", "e2ea"}, "", 1},
		{"estiba", []string{"network", "connect", "--alias", "web", "e2ea", "b1"}, "", 0},
		{"estiba", []string{"inspect", "-f", "{{.NetworkSettings.Networks.e2ea.Aliases}}", "b1"}, "web", 0},
		{"estiba", []string{"exec", "b1", "busybox", "ping", "-c1", "-W2", a2}, "1 packets received", 0},
		{"estiba", []string{"exec", "a1", "busybox", "ping", "-c1", "-W2", "web"}, "1 packets received", 0},
		{"estiba", []string{"network", "disconnect", "e2ea", "b1"}, "", 0},
		{"estiba", []string{"exec", "b1", "busybox", "ping", "-c1", "-W1", a2}, "0 packets received", 1},
		{"estiba", []string{"network", "create", "e2ec"}, "", 0},
		{"estiba", []string{"rm", "-f", "b1"}, "b1", 0},
		{"estiba", []string{"network", "prune", "-f"}, "e2ec", 0},
		{"estiba", []string{"network", "inspect", "e2eb"}, "not found", 1},
		{"estiba", []string{"network", "inspect", "e2ea"}, "e2ea", 0},
		{"estiba", []string{"rm", "-f", "a1", "a2"}, "a2", 0},
		{"estiba", []string{"network", "rm", "e2ea"}, "e2ea", 0},
	})
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	e.steps([]step{
		{"docker", []string{"network", "create", "--subnet", "10.231.2.0/24", "--gateway", "10.231.2.254", "e2ed"}, "", 0},
		{"docker", []string{"network", "ls", "--filter", "name=e2ed"}, "e2ed", 0},
		{"docker", []string{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "e2ed"}, "10.231.2.254", 0},
		{"docker", []string{"run", "-d", "--name", "a1", "--network", "e2ed", "--userns", "host", "e2e/bb", "sleep", "300"}, "", 0},
		{"docker", []string{"network", "rm", "e2ed"}, "", 1},
		{"docker", []string{"network", "disconnect", "e2ed", "a1"}, "", 0},
		{"docker", []string{"network", "inspect", "-f", "{{len .Containers}}", "e2ed"}, "0", 0},
		{"docker", []string{"network", "connect", "--alias", "web", "e2ed", "a1"}, "", 0},
		{"docker", []string{"network", "inspect", "-f", "{{range .Containers}}{{.Name}}{{end}}", "e2ed"}, "a1", 0},
		{"docker", []string{"rm", "-f", "a1"}, "a1", 0},
		{"docker", []string{"network", "rm", "e2ed"}, "e2ed", 0},
	})
}

// checkRate looks for the tbf of an ingress limit on the host veth.
func checkRate(t *testing.T, veth, want string) {
	t.Helper()
	out, err := exec.Command("tc", "qdisc", "show", "dev", veth).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), want) {
		t.Errorf("tc qdisc show dev %s: %v %s, want tbf %s", veth, err, out, want)
	}
}

// endpoint is the container's address on net and its host veth, from
// network inspect.
func endpoint(t *testing.T, e *e2e, net, name string) (string, string) {
	t.Helper()
	out, errs, code := e.estiba("network", "inspect", net)
	var nets []struct {
		Containers map[string]struct{ Name, IPv4Address, EndpointID string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &nets) != nil || len(nets) != 1 {
		t.Fatalf("network inspect %s: %d %s %s", net, code, out, errs)
	}
	for _, c := range nets[0].Containers {
		if c.Name == name {
			ip, _, _ := strings.Cut(c.IPv4Address, "/")
			return ip, c.EndpointID
		}
	}
	t.Fatalf("%s not in network %s: %s", name, net, out)
	return "", ""
}

// stopDaemon ends the test's daemon (found by its binary, which lives in
// the test's work dir) before the network layer is torn down under it.
func stopDaemon(t *testing.T, e *e2e) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		args := strings.Split(string(b), "\x00")
		if len(args) < 2 || args[0] != e.bin || args[1] != "daemon" {
			continue
		}
		syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 250 && syscall.Kill(pid, 0) == nil; i++ {
			if s, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat")); strings.Contains(string(s), ") Z ") {
				return // exited; startE2E's cleanup reaps it
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// teardownNetworks removes the default bridge and the nftables table: the
// network layer keeps them when the daemon stops (its containers may
// outlive it), so a test that ends removes them itself.
func teardownNetworks(t *testing.T, dir string) {
	t.Helper()
	m, err := network.New(context.Background(), network.Config{Store: network.FileStore{Dir: dir}})
	if err != nil {
		t.Errorf("reopen network layer: %v", err)
		return
	}
	defer m.Close()
	if err := m.Teardown(context.Background()); err != nil {
		t.Errorf("network teardown: %v", err)
	}
}

// checkNetStats reads Docker's per-interface counters of stats: the
// container pinged, so eth0 moved packets both ways.
func checkNetStats(t *testing.T, e *e2e, name string) {
	t.Helper()
	cl := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", strings.TrimPrefix(e.host, "unix://"))
	}}}
	resp, err := cl.Get("http://estiba/containers/" + name + "/stats?stream=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s struct {
		Networks map[string]struct {
			RxBytes   uint64 `json:"rx_bytes"`
			TxPackets uint64 `json:"tx_packets"`
		} `json:"networks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if eth0 := s.Networks["eth0"]; eth0.RxBytes == 0 || eth0.TxPackets == 0 {
		t.Errorf("stats networks of %s: %+v, want traffic on eth0", name, s.Networks)
	}
}

// nftTable lists the network layer's table without handles.
func nftTable(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("nft", "list", "table", "inet", "estiba").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table inet estiba: %v %s", err, out)
	}
	return string(out)
}

// restartDaemon starts the test's daemon again on the same roots (the
// containers kept running under the monitor) and waits for its socket.
func restartDaemon(t *testing.T, e *e2e) *exec.Cmd {
	t.Helper()
	d := exec.Command(e.bin, "daemon", "-H", e.host, "--data-root", filepath.Join(e.work, "data"),
		"--exec-root", filepath.Join(e.work, "run"), "--config-file", "/dev/null")
	logf, err := os.OpenFile(filepath.Join(e.work, "daemon.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.Stderr = logf
	// The old daemon removes its socket on exit: wait for that first, so
	// the new one's is the one found.
	for i := 0; i < 250; i++ {
		if _, err := os.Stat(filepath.Join(e.work, "sock")); errors.Is(err, os.ErrNotExist) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	waitSocket(t, filepath.Join(e.work, "sock"))
	return d
}
