package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/estiba/estiba/engine/api/types"
)

func cmdVersion(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fmt.Fprintf(c.Stdout, "Client:\n Version:\t%s\n API version:\t%s\n", c.Version, types.APIVersion)
	var v types.Version
	if err := cl.call(ctx, "GET", "/version", nil, nil, &v); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "\nServer:\n Engine:\n  Version:\t%s\n  API version:\t%s (minimum version %s)\n  Go version:\t%s\n  OS/Arch:\t%s/%s\n  Kernel:\t%s\n",
		v.Version, v.APIVersion, v.MinAPIVersion, v.GoVersion, v.Os, v.Arch, v.KernelVersion)
	return nil
}

func cmdInfo(ctx context.Context, c *CLI, cl *Client, args []string) error {
	var i types.Info
	if err := cl.call(ctx, "GET", "/info", nil, nil, &i); err != nil {
		return err
	}
	w := c.Stdout
	fmt.Fprintf(w, "Server:\n Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n Server Version: %s\n",
		i.Containers, i.ContainersRunning, i.ContainersPaused, i.ContainersStopped, i.Images, i.ServerVersion)
	fmt.Fprintf(w, " Storage Driver: %s\n Logging Driver: %s\n Cgroup Driver: %s\n Cgroup Version: %s\n Default Runtime: %s\n",
		i.Driver, i.LoggingDriver, i.CgroupDriver, i.CgroupVersion, i.DefaultRuntime)
	fmt.Fprintf(w, " Security Options:\n")
	for _, s := range i.SecurityOptions {
		fmt.Fprintf(w, "  %s\n", s)
	}
	fmt.Fprintf(w, " Kernel Version: %s\n Operating System: %s\n OSType: %s\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Name: %s\n Docker Root Dir: %s\n",
		i.KernelVersion, i.OperatingSystem, i.OSType, i.Architecture, i.NCPU, humanSize(i.MemTotal), i.Name, i.DockerRootDir)
	for _, warn := range i.Warnings {
		fmt.Fprintln(c.Stderr, warn)
	}
	return nil
}

func humanSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if f < 1024 {
			// At most two decimals, trailing zeros dropped (docker's
			// "1.5MiB"); the point stops the trim of "100.00".
			return strings.TrimSuffix(strings.TrimRight(strconv.FormatFloat(f, 'f', 2, 64), "0"), ".") + u
		}
		f /= 1024
	}
	return fmt.Sprintf("%.1fPiB", f)
}

func decSize(n int64) string {
	f := float64(n)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if f < 1000 {
			return fmt.Sprintf("%.3g%s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.3gPB", f)
}

func ago(unix int64) string {
	d := time.Since(time.Unix(unix, 0))
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func filterValues(list []string) (string, error) {
	if len(list) == 0 {
		return "", nil
	}
	f := map[string][]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", usageErr("bad format of filter (expected name=value): %s", kv)
		}
		f[k] = append(f[k], v)
	}
	b, _ := json.Marshal(f)
	return string(b), nil
}

func cmdPs(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("ps", c)
	all := fs.BoolP("all", "a", false, "show all containers")
	quiet := fs.BoolP("quiet", "q", false, "only display container IDs")
	noTrunc := fs.Bool("no-trunc", false, "don't truncate output")
	last := fs.IntP("last", "n", -1, "show n last created containers")
	latest := fs.BoolP("latest", "l", false, "show the latest created container")
	filters := fs.StringArrayP("filter", "f", nil, "filter output based on conditions provided")
	format := fs.String("format", "", "format output: a Go template, \"table TEMPLATE\" or \"json\"")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if *all || *last > 0 || *latest {
		q.Set("all", "1")
	}
	if *latest {
		*last = 1
	}
	if *last > 0 {
		q.Set("limit", strconv.Itoa(*last))
	}
	f, err := filterValues(*filters)
	if err != nil {
		return err
	}
	if f != "" {
		q.Set("filters", f)
	}
	var list []types.ContainerSummary
	if err := cl.call(ctx, "GET", "/containers/json", q, nil, &list); err != nil {
		return err
	}
	if *quiet {
		for _, s := range list {
			fmt.Fprintln(c.Stdout, trunc(s.ID, !*noTrunc))
		}
		return nil
	}
	if *format != "" {
		return formatPs(c.Stdout, *format, list, *noTrunc)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, s := range list {
		cmd := strconv.Quote(s.Command)
		if !*noTrunc && len(cmd) > 22 {
			cmd = cmd[:20] + "…\""
		}
		names := make([]string, len(s.Names))
		for i, n := range s.Names {
			names[i] = strings.TrimPrefix(n, "/")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", trunc(s.ID, !*noTrunc), s.Image, cmd, ago(s.Created), s.Status, "", strings.Join(names, ","))
	}
	return tw.Flush()
}

func trunc(id string, short bool) string {
	id = strings.TrimPrefix(id, "sha256:")
	if short && len(id) > 12 {
		return id[:12]
	}
	return id
}

// each runs fn for every argument, printing the argument on success as
// docker does, and reports the failures at the end.
func each(c *CLI, args []string, fn func(string) error) error {
	if len(args) == 0 {
		return usageErr("requires at least 1 argument")
	}
	var failed []string
	for _, a := range args {
		if err := fn(a); err != nil {
			fmt.Fprintln(c.Stderr, err)
			failed = append(failed, a)
			continue
		}
		fmt.Fprintln(c.Stdout, a)
	}
	if len(failed) > 0 {
		return exitCode(1)
	}
	return nil
}

func cmdStart(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("start", c)
	attach := fs.BoolP("attach", "a", false, "attach STDOUT/STDERR and forward signals")
	interactive := fs.BoolP("interactive", "i", false, "attach container's STDIN")
	keys := fs.String("detach-keys", "", "override the key sequence for detaching a container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *attach || *interactive {
		if fs.NArg() != 1 {
			return usageErr("you cannot start and attach multiple containers at once")
		}
		return startAttached(ctx, c, cl, fs.Arg(0), *interactive, *keys)
	}
	return each(c, fs.Args(), func(id string) error {
		return cl.call(ctx, "POST", "/containers/"+id+"/start", nil, nil, nil)
	})
}

func stopLike(ctx context.Context, c *CLI, cl *Client, args []string, name string) error {
	fs := newFlags(name, c)
	t := fs.IntP("time", "t", -1, "seconds to wait before killing the container")
	fs.Int("timeout", -1, "")
	sig := fs.StringP("signal", "s", "", "signal to send to the container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if fs.Changed("time") {
		q.Set("t", strconv.Itoa(*t))
	}
	if v, _ := fs.GetInt("timeout"); fs.Changed("timeout") {
		q.Set("t", strconv.Itoa(v))
	}
	if *sig != "" {
		q.Set("signal", *sig)
	}
	return each(c, fs.Args(), func(id string) error {
		return cl.call(ctx, "POST", "/containers/"+id+"/"+name, q, nil, nil)
	})
}

func cmdStop(ctx context.Context, c *CLI, cl *Client, args []string) error {
	return stopLike(ctx, c, cl, args, "stop")
}

func cmdRestart(ctx context.Context, c *CLI, cl *Client, args []string) error {
	return stopLike(ctx, c, cl, args, "restart")
}

func cmdKill(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("kill", c)
	sig := fs.StringP("signal", "s", "", "signal to send to the container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if *sig != "" {
		q.Set("signal", *sig)
	}
	return each(c, fs.Args(), func(id string) error {
		return cl.call(ctx, "POST", "/containers/"+id+"/kill", q, nil, nil)
	})
}

func cmdRm(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("rm", c)
	force := fs.BoolP("force", "f", false, "force the removal of a running container (uses SIGKILL)")
	vols := fs.BoolP("volumes", "v", false, "remove anonymous volumes associated with the container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if *force {
		q.Set("force", "1")
	}
	if *vols {
		q.Set("v", "1")
	}
	return each(c, fs.Args(), func(id string) error {
		return cl.call(ctx, "DELETE", "/containers/"+id, q, nil, nil)
	})
}

func cmdPause(ctx context.Context, c *CLI, cl *Client, args []string) error {
	return each(c, args, func(id string) error { return cl.call(ctx, "POST", "/containers/"+id+"/pause", nil, nil, nil) })
}

func cmdUnpause(ctx context.Context, c *CLI, cl *Client, args []string) error {
	return each(c, args, func(id string) error { return cl.call(ctx, "POST", "/containers/"+id+"/unpause", nil, nil, nil) })
}

func cmdWait(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) == 0 {
		return usageErr("requires at least 1 argument")
	}
	for _, id := range args {
		var r types.WaitResponse
		if err := cl.call(ctx, "POST", "/containers/"+id+"/wait", nil, nil, &r); err != nil {
			return err
		}
		fmt.Fprintln(c.Stdout, r.StatusCode)
	}
	return nil
}

func cmdInspect(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("inspect", c)
	typ := fs.String("type", "", "only inspect objects of the given type (container|image)")
	format := fs.StringP("format", "f", "", "format the output (only {{json .}} style paths .A.B are supported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErr("requires at least 1 argument")
	}
	var out []any
	for _, ref := range fs.Args() {
		var v map[string]any
		err := fmt.Errorf("Error: No such object: %s", ref)
		// A container name or ID has no '/', ':' or '@'; an image
		// reference with them ("reg:5000/x:1", "x@sha256:…") goes to
		// the images.
		if (*typ == "" && !strings.ContainsAny(ref, "/:@")) || *typ == "container" {
			if e := cl.call(ctx, "GET", "/containers/"+ref+"/json", nil, nil, &v); e == nil {
				err = nil
			} else if !isNotFound(e) {
				return e
			}
		}
		if err != nil && (*typ == "" || *typ == "image") {
			if e := cl.call(ctx, "GET", "/images/"+ref+"/json", nil, nil, &v); e == nil {
				err = nil
			} else if !isNotFound(e) {
				return e
			}
		}
		if err != nil {
			return err
		}
		if *format != "" {
			s, err := formatPath(v, *format)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.Stdout, s)
			continue
		}
		out = append(out, v)
	}
	if *format != "" {
		return nil
	}
	b, _ := json.MarshalIndent(out, "", "    ")
	fmt.Fprintln(c.Stdout, string(b))
	return nil
}

// formatPath renders docker's --format templates (text/template over the
// JSON object, with docker's json, upper, lower and join functions).
func formatPath(v map[string]any, format string) (string, error) {
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json":  func(x any) string { b, _ := json.Marshal(x); return string(b) },
		"upper": strings.ToUpper, "lower": strings.ToLower,
		"join": func(a []any, sep string) string {
			s := make([]string, len(a))
			for i, x := range a {
				s[i] = fmt.Sprint(x)
			}
			return strings.Join(s, sep)
		},
	}).Option("missingkey=zero").Parse(format)
	if err != nil {
		return "", usageErr("--format: %v", err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, numbers(v)); err != nil {
		return "", fmt.Errorf("--format: %w", err)
	}
	return b.String(), nil
}

// numbers turns JSON's float64s back into integers where they are whole,
// so {{.State.ExitCode}} prints 143, not 1.43e+02.
func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case float64:
		if x == float64(int64(x)) {
			return int64(x)
		}
	}
	return v
}

func cmdTop(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) == 0 {
		return usageErr("requires at least 1 argument")
	}
	q := url.Values{}
	if len(args) > 1 {
		q.Set("ps_args", strings.Join(args[1:], " "))
	}
	var top types.TopResponse
	if err := cl.call(ctx, "GET", "/containers/"+args[0]+"/top", q, nil, &top); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
	for _, p := range top.Processes {
		fmt.Fprintln(tw, strings.Join(p, "\t"))
	}
	return tw.Flush()
}

type statsLine struct {
	Networks map[string]struct {
		RxBytes uint64 `json:"rx_bytes"`
		TxBytes uint64 `json:"tx_bytes"`
	} `json:"networks"`
	Name     string `json:"name"`
	ID       string `json:"id"`
	CPUStats struct {
		CPUUsage struct {
			TotalUsage uint64 `json:"total_usage"`
		} `json:"cpu_usage"`
		SystemUsage uint64 `json:"system_cpu_usage"`
		OnlineCPUs  uint32 `json:"online_cpus"`
	} `json:"cpu_stats"`
	PreCPUStats struct {
		CPUUsage struct {
			TotalUsage uint64 `json:"total_usage"`
		} `json:"cpu_usage"`
		SystemUsage uint64 `json:"system_cpu_usage"`
	} `json:"precpu_stats"`
	MemoryStats struct {
		Usage uint64 `json:"usage"`
		Limit uint64 `json:"limit"`
	} `json:"memory_stats"`
	PidsStats struct {
		Current uint64 `json:"current"`
	} `json:"pids_stats"`
}

func cmdStats(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("stats", c)
	noStream := fs.Bool("no-stream", false, "disable streaming stats and only pull the first result")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ids := fs.Args()
	if len(ids) == 0 {
		// All running containers, as docker stats.
		var list []types.ContainerSummary
		if err := cl.call(ctx, "GET", "/containers/json", nil, nil, &list); err != nil {
			return err
		}
		for _, s := range list {
			ids = append(ids, s.ID)
		}
	}
	q := url.Values{"stream": {strconv.FormatBool(!*noStream)}}
	decs := make([]*json.Decoder, 0, len(ids))
	for _, id := range ids {
		resp, err := cl.do(ctx, "GET", "/containers/"+id+"/stats", q, nil, "")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		decs = append(decs, json.NewDecoder(resp.Body))
	}
	for {
		tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tPIDS")
		for _, dec := range decs {
			var s statsLine
			if err := dec.Decode(&s); err != nil {
				tw.Flush()
				if err == io.EOF {
					return nil
				}
				return err
			}
			cpu := 0.0
			if dsys := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage); dsys > 0 && s.PreCPUStats.SystemUsage > 0 {
				cpu = (float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)) / dsys * float64(s.CPUStats.OnlineCPUs) * 100
			}
			mem := 0.0
			if s.MemoryStats.Limit > 0 {
				mem = float64(s.MemoryStats.Usage) / float64(s.MemoryStats.Limit) * 100
			}
			var rx, tx uint64
			for _, n := range s.Networks {
				rx, tx = rx+n.RxBytes, tx+n.TxBytes
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%d\n", trunc(s.ID, true), strings.TrimPrefix(s.Name, "/"), cpu,
				humanSize(int64(s.MemoryStats.Usage)), humanSize(int64(s.MemoryStats.Limit)), mem, decSize(int64(rx)), decSize(int64(tx)), s.PidsStats.Current)
		}
		tw.Flush()
		if *noStream {
			return nil
		}
	}
}

func cmdPort(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) == 0 {
		return usageErr("requires at least 1 argument")
	}
	var j types.ContainerJSON
	if err := cl.call(ctx, "GET", "/containers/"+args[0]+"/json", nil, nil, &j); err != nil {
		return err
	}
	for port, bs := range j.NetworkSettings.Ports {
		for _, b := range bs {
			fmt.Fprintf(c.Stdout, "%s -> %s:%s\n", port, b.HostIP, b.HostPort)
		}
	}
	return nil
}

func cmdEvents(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("events", c)
	since := fs.String("since", "", "show all events created since timestamp (unix seconds)")
	until := fs.String("until", "", "stream events until this timestamp (unix seconds)")
	filters := fs.StringArrayP("filter", "f", nil, "filter output based on conditions provided")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"since": *since, "until": *until} {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err == nil {
			v = strconv.FormatInt(time.Now().Add(-d).Unix(), 10)
		}
		q.Set(k, v)
	}
	f, err := filterValues(*filters)
	if err != nil {
		return err
	}
	if f != "" {
		q.Set("filters", f)
	}
	resp, err := cl.do(ctx, "GET", "/events", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev types.Event
		if err := dec.Decode(&ev); err != nil {
			return nil
		}
		var attrs []string
		for k, v := range ev.Actor.Attributes {
			attrs = append(attrs, k+"="+v)
		}
		fmt.Fprintf(c.Stdout, "%s %s %s %s (%s)\n", time.Unix(0, ev.TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00"),
			ev.Type, ev.Action, ev.Actor.ID, strings.Join(attrs, ", "))
	}
}

func cmdSystem(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) == 0 {
		return usageErr("estiba system needs a subcommand: df, prune, info")
	}
	switch args[0] {
	case "info":
		return cmdInfo(ctx, c, cl, args[1:])
	case "df":
		var du types.DiskUsage
		if err := cl.call(ctx, "GET", "/system/df", nil, nil, &du); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE")
		active := 0
		for _, ct := range du.Containers {
			if ct.State == "running" {
				active++
			}
		}
		fmt.Fprintf(tw, "Images\t%d\t%d\t%s\n", len(du.Images), 0, decSize(du.LayersSize))
		fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\n", len(du.Containers), active, "0B")
		return tw.Flush()
	case "prune":
		fs := newFlags("prune", c)
		force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
		fs.BoolP("all", "a", false, "remove all unused images, not just dangling ones")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if !*force {
			return usageErr("estiba system prune removes all stopped containers: pass -f to confirm")
		}
		return prune(ctx, c, cl)
	}
	return usageErr("unknown system subcommand %q", args[0])
}

func prune(ctx context.Context, c *CLI, cl *Client) error {
	var rep types.PruneReport
	if err := cl.call(ctx, "POST", "/containers/prune", nil, nil, &rep); err != nil {
		return err
	}
	if len(rep.ContainersDeleted) > 0 {
		fmt.Fprintln(c.Stdout, "Deleted Containers:")
		for _, id := range rep.ContainersDeleted {
			fmt.Fprintln(c.Stdout, id)
		}
	}
	fmt.Fprintf(c.Stdout, "Total reclaimed space: %s\n", decSize(int64(rep.SpaceReclaimed)))
	return nil
}

func readerOf(c *CLI, path string) (io.Reader, func(), error) {
	if path == "" || path == "-" {
		return c.Stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}
