// Command netscale attaches N network namespaces to one network through
// the network package and reports attach time, rate and kernel memory per
// container, then iperf3 throughput over a direct veth path and over a
// published port. Driven by bench/network-scale.sh; it cleans up after
// itself.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/estiba/estiba/network"
)

func main() {
	n := flag.Int("n", 1000, "containers")
	dir := flag.String("dir", "", "work directory (default: a temp dir)")
	secs := flag.Int("t", 3, "iperf3 seconds per run")
	jobs := flag.Int("j", 1, "parallel attaches")
	teardown := flag.String("teardown", "", "only remove everything of the network layer whose store is this directory (a stopped daemon's <data-root>/network)")
	table := flag.String("table", network.TableName, "nftables table of -teardown")
	flag.Parse()
	if *teardown != "" {
		ctx := context.Background()
		m, err := network.New(ctx, network.Config{Store: network.FileStore{Dir: *teardown}, Table: *table})
		if err != nil {
			log.Fatal(err)
		}
		defer m.Close()
		if err := m.Teardown(ctx); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "netscale")
		if err != nil {
			log.Fatal(err)
		}
		*dir = d
	}
	defer os.RemoveAll(*dir)
	if err := run(*n, *dir, *secs, *jobs); err != nil {
		log.Fatal(err)
	}
}

func run(n int, dir string, secs, jobs int) (err error) {
	ctx := context.Background()
	m, err := network.New(ctx, network.Config{Store: network.FileStore{Dir: filepath.Join(dir, "state")},
		DefaultSubnet: netip.MustParsePrefix("10.229.0.0/24")})
	if err != nil {
		return err
	}
	defer func() {
		if terr := m.Teardown(ctx); terr != nil && err == nil {
			err = terr
		}
		m.Close()
	}()
	if _, err := m.CreateNetwork(ctx, network.NetworkConfig{Name: "scale", Subnet: netip.MustParsePrefix("10.240.0.0/16")}); err != nil {
		return err
	}
	mem0 := meminfo()
	nss := make([]string, n)
	defer func() {
		for _, p := range nss {
			if p != "" {
				network.RemoveNetns(p)
			}
		}
	}()
	t0 := time.Now()
	for i := range nss {
		p, err := network.CreateNetns(filepath.Join(dir, "ns"), fmt.Sprintf("c%d", i))
		if err != nil {
			return err
		}
		nss[i] = p
	}
	tNS := time.Since(t0)
	mem1 := meminfo()
	t1 := time.Now()
	eps, err := attachAll(ctx, m, nss, jobs)
	if err != nil {
		return err
	}
	tAttach := time.Since(t1)
	mem2 := meminfo()
	fmt.Printf("netns create: %d in %.2fs (%.0f/s)\n", n, tNS.Seconds(), float64(n)/tNS.Seconds())
	fmt.Printf("attach:       %d in %.2fs (%.0f/s, %.2f ms each, %d parallel), each with 1 published port\n",
		n, tAttach.Seconds(), float64(n)/tAttach.Seconds(), tAttach.Seconds()*1000/float64(n), jobs)
	for _, k := range []string{"MemAvailable", "Slab", "SUnreclaim", "Percpu"} {
		fmt.Printf("kernel %-12s per container: netns %6.1f KiB, attach %6.1f KiB\n", k,
			float64(mem0[k]-mem1[k])/float64(n)*sign(k), float64(mem1[k]-mem2[k])/float64(n)*sign(k))
	}
	if err := throughput(nss, eps, secs); err != nil {
		return err
	}
	t2 := time.Now()
	for i := range eps {
		if err := m.Detach(ctx, fmt.Sprintf("c%d", i), "scale"); err != nil {
			return err
		}
	}
	fmt.Printf("detach:       %d in %.2fs (%.0f/s)\n", n, time.Since(t2).Seconds(), float64(n)/time.Since(t2).Seconds())
	return nil
}

// attachAll attaches container i to nss[i], publishing port 20000+i, with
// jobs attaches in flight.
func attachAll(ctx context.Context, m *network.Manager, nss []string, jobs int) ([]*network.Endpoint, error) {
	eps := make([]*network.Endpoint, len(nss))
	errs := make(chan error, jobs)
	next := make(chan int)
	go func() {
		for i := range nss {
			next <- i
		}
		close(next)
	}()
	for range jobs {
		go func() {
			for i := range next {
				ports := []network.PortMapping{{HostPort: uint16(20000 + i), ContainerPort: 5201, Proto: "tcp"}}
				ep, err := m.Attach(ctx, fmt.Sprintf("c%d", i), nss[i], "scale", network.AttachOptions{Ports: ports})
				if err != nil {
					for range next { // drain so the feeder ends
					}
					errs <- fmt.Errorf("attach %d: %w", i, err)
					return
				}
				eps[i] = ep
			}
			errs <- nil
		}()
	}
	var first error
	for range jobs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return eps, first
}

// sign makes "memory used" positive: MemAvailable falls, the others grow.
func sign(k string) float64 {
	if k == "MemAvailable" {
		return 1
	}
	return -1
}

func meminfo() map[string]int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 {
			v, _ := strconv.ParseInt(fs[1], 10, 64)
			out[strings.TrimSuffix(fs[0], ":")] = v
		}
	}
	return out
}

// throughput runs iperf3 between the first two containers: directly
// (container to container through the host's routing), through c0's
// published port from the host's 127.0.0.1, and from c1 via the published
// port on the gateway address (hairpin).
func throughput(nss []string, eps []*network.Endpoint, secs int) error {
	if len(nss) < 2 {
		return nil
	}
	runs := []struct {
		name, ns, target, port string
	}{
		{"direct c1 -> c0 (routed veth)", nss[1], eps[0].IP.String(), "5201"},
		{"host 127.0.0.1 -> published port -> c0", "", "127.0.0.1", "20000"},
		{"c1 -> gateway published port -> c0 (hairpin)", nss[1], eps[0].Gateway.String(), "20000"},
		{"direct c1 -> c0 again", nss[1], eps[0].IP.String(), "5201"},
	}
	for _, r := range runs {
		srv := exec.Command("nsenter", "--net="+nss[0], "iperf3", "-s", "-1", "-B", eps[0].IP.String())
		if err := srv.Start(); err != nil {
			return fmt.Errorf("iperf3 server: %w", err)
		}
		time.Sleep(300 * time.Millisecond)
		args := []string{"iperf3", "-J", "-t", strconv.Itoa(secs), "-O", "1", "-c", r.target, "-p", r.port}
		if r.ns != "" {
			args = append([]string{"nsenter", "--net=" + r.ns}, args...)
		}
		out, err := exec.Command(args[0], args[1:]...).Output()
		srv.Process.Kill()
		srv.Wait()
		if err != nil {
			return fmt.Errorf("iperf3 %s: %w: %s", r.name, err, out)
		}
		var res struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("iperf3 output: %w", err)
		}
		fmt.Printf("iperf3 %-46s %8.2f Gbit/s\n", r.name, res.End.SumReceived.BitsPerSecond/1e9)
	}
	return nil
}
