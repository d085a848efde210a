package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func (a *app) list(args []string) error {
	fs := flags("list")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	quiet := fs.Bool("quiet", false, "print only IDs")
	fs.BoolVar(quiet, "q", false, "print only IDs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	infos, err := a.rt.List()
	if err != nil {
		return err
	}
	if *quiet {
		for _, i := range infos {
			fmt.Println(i.ID)
		}
		return nil
	}
	switch *format {
	case "json":
		type entry struct {
			OCIVersion  string            `json:"ociVersion"`
			ID          string            `json:"id"`
			Pid         int               `json:"pid"`
			Status      string            `json:"status"`
			Bundle      string            `json:"bundle"`
			Rootfs      string            `json:"rootfs"`
			Created     time.Time         `json:"created"`
			Annotations map[string]string `json:"annotations,omitempty"`
			Owner       string            `json:"owner"`
		}
		out := []entry{}
		for _, i := range infos {
			out = append(out, entry{i.Version, i.ID, i.Pid, string(i.Status), i.Bundle, "", i.Created, i.Annotations, i.Owner})
		}
		return printJSON(out)
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, i := range infos {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", i.ID, i.Pid, i.Status, i.Bundle, i.Created.Format(time.RFC3339Nano), i.Owner)
		}
		return w.Flush()
	}
	return fmt.Errorf("--format %q: must be table or json", *format)
}

func (a *app) ps(args []string) error {
	fs := flags("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return errUsage("ps [--format table|json] <id> [ps args...]")
	}
	pids, err := a.rt.Pids(fs.Arg(0))
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		return printJSON(pids)
	case "table":
	default:
		return fmt.Errorf("--format %q: must be table or json", *format)
	}
	psArgs := fs.Args()[1:]
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	return filterPs(string(out), pids)
}

// filterPs prints ps's header and the lines whose PID column is one of the
// container's.
func filterPs(out string, pids []int) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	col := -1
	for i, f := range strings.Fields(lines[0]) {
		if f == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if col < len(f) {
			if p, err := strconv.Atoi(f[col]); err == nil && in[p] {
				fmt.Println(l)
			}
		}
	}
	return nil
}
