package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/estiba/estiba/engine/api/types"
)

// psRow is one line of docker ps --format: the fields docker's templates
// name ({{.ID}}, {{.Names}}, {{.Label "k"}}…).
type psRow struct {
	s       types.ContainerSummary
	noTrunc bool
}

func (r psRow) ID() string    { return trunc(r.s.ID, !r.noTrunc) }
func (r psRow) Image() string { return r.s.Image }
func (r psRow) Command() string {
	cmd := strconv.Quote(r.s.Command)
	if !r.noTrunc && len(cmd) > 22 {
		cmd = cmd[:20] + "…\""
	}
	return cmd
}
func (r psRow) CreatedAt() string {
	return time.Unix(r.s.Created, 0).Format("2006-01-02 15:04:05 -0700 MST")
}
func (r psRow) RunningFor() string { return ago(r.s.Created) }
func (r psRow) Status() string     { return r.s.Status }
func (r psRow) State() string      { return r.s.State }
func (r psRow) Networks() string   { return r.s.HostConfig.NetworkMode }
func (r psRow) Label(k string) string {
	return r.s.Labels[k]
}

func (r psRow) Names() string {
	names := make([]string, len(r.s.Names))
	for i, n := range r.s.Names {
		names[i] = strings.TrimPrefix(n, "/")
	}
	return strings.Join(names, ",")
}

func (r psRow) Labels() string {
	kv := make([]string, 0, len(r.s.Labels))
	for k, v := range r.s.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func (r psRow) Ports() string {
	ps := make([]string, 0, len(r.s.Ports))
	for _, p := range r.s.Ports {
		if p.PublicPort != 0 {
			ps = append(ps, fmt.Sprintf("%s:%d->%d/%s", p.IP, p.PublicPort, p.PrivatePort, p.Type))
		} else {
			ps = append(ps, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
		}
	}
	return strings.Join(ps, ", ")
}

func (r psRow) Mounts() string {
	ms := make([]string, 0, len(r.s.Mounts))
	for _, m := range r.s.Mounts {
		if m.Name != "" {
			ms = append(ms, m.Name)
		} else {
			ms = append(ms, m.Source)
		}
	}
	return strings.Join(ms, ",")
}

// psHeader answers the same fields with their table headers.
type psHeader struct{}

func (psHeader) ID() string            { return "CONTAINER ID" }
func (psHeader) Image() string         { return "IMAGE" }
func (psHeader) Command() string       { return "COMMAND" }
func (psHeader) CreatedAt() string     { return "CREATED AT" }
func (psHeader) RunningFor() string    { return "CREATED" }
func (psHeader) Status() string        { return "STATUS" }
func (psHeader) State() string         { return "STATE" }
func (psHeader) Networks() string      { return "NETWORKS" }
func (psHeader) Label(k string) string { return "LABEL" }
func (psHeader) Names() string         { return "NAMES" }
func (psHeader) Labels() string        { return "LABELS" }
func (psHeader) Ports() string         { return "PORTS" }
func (psHeader) Mounts() string        { return "MOUNTS" }

// formatPs renders docker ps --format: a Go template per container,
// "table TEMPLATE" with headers and aligned columns, or "json" (one
// object a line).
func formatPs(w io.Writer, format string, list []types.ContainerSummary, noTrunc bool) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, s := range list {
			r := psRow{s: s, noTrunc: noTrunc}
			enc.Encode(map[string]string{"ID": r.ID(), "Image": r.Image(), "Command": r.Command(), "CreatedAt": r.CreatedAt(),
				"RunningFor": r.RunningFor(), "Ports": r.Ports(), "Status": r.Status(), "State": r.State(),
				"Names": r.Names(), "Labels": r.Labels(), "Mounts": r.Mounts(), "Networks": r.Networks()})
		}
		return nil
	}
	text, table := strings.CutPrefix(format, "table")
	if table {
		text = strings.TrimSpace(text)
	}
	// docker's templates write \t for a column break.
	text = strings.ReplaceAll(text, `\t`, "\t")
	tmpl, err := template.New("ps").Funcs(template.FuncMap{
		"json":  func(x any) string { b, _ := json.Marshal(x); return string(b) },
		"upper": strings.ToUpper, "lower": strings.ToLower, "join": strings.Join,
	}).Parse(text)
	if err != nil {
		return usageErr("--format: %v", err)
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		out = tw
		if err := tmpl.Execute(out, psHeader{}); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, s := range list {
		if err := tmpl.Execute(out, psRow{s: s, noTrunc: noTrunc}); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}
