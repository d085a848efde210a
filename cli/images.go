package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/estiba/estiba/engine/api/types"
)

func cmdImages(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("images", c)
	quiet := fs.BoolP("quiet", "q", false, "only show image IDs")
	noTrunc := fs.Bool("no-trunc", false, "don't truncate output")
	digests := fs.Bool("digests", false, "show digests")
	fs.BoolP("all", "a", false, "show all images")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var list []types.ImageSummary
	if err := cl.call(ctx, "GET", "/images/json", nil, nil, &list); err != nil {
		return err
	}
	if *quiet {
		for _, i := range list {
			fmt.Fprintln(c.Stdout, trunc(i.ID, !*noTrunc))
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
	if *digests {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
	} else {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
	}
	for _, i := range list {
		for _, r := range imageRows(i, *digests) {
			if *digests {
				fmt.Fprintf(tw, "%s\t%s\t%s\t", r.repo, r.tag, r.digest)
			} else {
				fmt.Fprintf(tw, "%s\t%s\t", r.repo, r.tag)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", trunc(i.ID, !*noTrunc), ago(i.Created), decSize(i.Size))
		}
	}
	return tw.Flush()
}

type imageRow struct{ repo, tag, digest string }

// imageRows are an image's lines in docker images, as the docker CLI makes
// them: one per tag (per tag and digest of its repository with digests),
// then one per repository that has only digests, or one <none> line.
func imageRows(i types.ImageSummary, withDigests bool) []imageRow {
	var repos []string
	tags := map[string][]string{}
	for _, t := range i.RepoTags {
		repo, tag := splitRef(t)
		if tag == "" || strings.Contains(t, "@") {
			continue
		}
		if tags[repo] == nil {
			repos = append(repos, repo)
		}
		tags[repo] = append(tags[repo], tag)
	}
	var digestRepos []string
	digests := map[string][]string{}
	for _, d := range i.RepoDigests {
		repo, dg, ok := strings.Cut(d, "@")
		if !ok {
			continue
		}
		if digests[repo] == nil {
			digestRepos = append(digestRepos, repo)
		}
		digests[repo] = append(digests[repo], dg)
	}
	var rows []imageRow
	for _, repo := range repos {
		ds := digests[repo]
		delete(digests, repo) // shown with the tags, not on their own
		for _, tag := range tags[repo] {
			if !withDigests || len(ds) == 0 {
				rows = append(rows, imageRow{repo, tag, "<none>"})
				continue
			}
			for _, d := range ds {
				rows = append(rows, imageRow{repo, tag, d})
			}
		}
	}
	for _, repo := range digestRepos {
		ds, ok := digests[repo]
		if !ok {
			continue
		}
		if !withDigests {
			rows = append(rows, imageRow{repo, "<none>", ""})
			continue
		}
		for _, d := range ds {
			rows = append(rows, imageRow{repo, "<none>", d})
		}
	}
	if len(rows) == 0 {
		rows = append(rows, imageRow{"<none>", "<none>", "<none>"})
	}
	return rows
}

// progress prints a JSON progress stream (see renderProgress) and returns
// its error, if any.
func progress(c *CLI, r io.Reader) error {
	return renderProgress(c.Stdout, r)
}

func pull(ctx context.Context, c *CLI, cl *Client, ref string) error {
	ctx, err := authContext(ctx, c, ref)
	if err != nil {
		return err
	}
	resp, err := cl.do(ctx, "POST", "/images/create", url.Values{"fromImage": {ref}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return progress(c, resp.Body)
}

func cmdPull(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("pull", c)
	fs.StringP("platform", "", "", "set platform (only the host's is supported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("requires exactly 1 argument")
	}
	return pull(ctx, c, cl, fs.Arg(0))
}

func cmdRmi(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("rmi", c)
	force := fs.BoolP("force", "f", false, "force removal of the image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	if *force {
		q.Set("force", "1")
	}
	if fs.NArg() == 0 {
		return usageErr("requires at least 1 argument")
	}
	failed := false
	for _, ref := range fs.Args() {
		var items []types.ImageDeleteItem
		if err := cl.call(ctx, "DELETE", "/images/"+ref, q, nil, &items); err != nil {
			fmt.Fprintln(c.Stderr, err)
			failed = true
			continue
		}
		for _, i := range items {
			if i.Untagged != "" {
				fmt.Fprintln(c.Stdout, "Untagged:", i.Untagged)
			}
			if i.Deleted != "" {
				fmt.Fprintln(c.Stdout, "Deleted:", i.Deleted)
			}
		}
	}
	if failed {
		return exitCode(1)
	}
	return nil
}

func splitRef(ref string) (repo, tag string) {
	if k := strings.LastIndex(ref, ":"); k > strings.LastIndex(ref, "/") {
		return ref[:k], ref[k+1:]
	}
	return ref, ""
}

func cmdTag(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) != 2 {
		return usageErr("requires exactly 2 arguments: SOURCE_IMAGE TARGET_IMAGE")
	}
	repo, tag := splitRef(args[1])
	q := url.Values{"repo": {repo}}
	if tag != "" {
		q.Set("tag", tag)
	}
	return cl.call(ctx, "POST", "/images/"+args[0]+"/tag", q, nil, nil)
}

func cmdImport(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("import", c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return usageErr("usage: estiba import file|- [REPOSITORY[:TAG]]")
	}
	r, done, err := readerOf(c, fs.Arg(0))
	if err != nil {
		return err
	}
	defer done()
	q := url.Values{"fromSrc": {"-"}}
	if fs.NArg() == 2 {
		repo, tag := splitRef(fs.Arg(1))
		q.Set("repo", repo)
		if tag != "" {
			q.Set("tag", tag)
		}
	}
	resp, err := cl.do(ctx, "POST", "/images/create", q, r, "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return progress(c, resp.Body)
}

func cmdLoad(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("load", c)
	input := fs.StringP("input", "i", "", "read from tar archive file, instead of STDIN")
	fs.BoolP("quiet", "q", false, "suppress the load output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, done, err := readerOf(c, *input)
	if err != nil {
		return err
	}
	defer done()
	resp, err := cl.do(ctx, "POST", "/images/load", nil, r, "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return progress(c, resp.Body)
}

func cmdContainerPrune(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("prune", c)
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*force {
		return usageErr("estiba container prune removes all stopped containers: pass -f to confirm")
	}
	return prune(ctx, c, cl)
}

func cmdVolume(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) == 0 {
		return usageErr("estiba volume needs a subcommand: ls, create, inspect, rm")
	}
	switch args[0] {
	case "ls", "list":
		var resp struct{ Volumes []types.Volume }
		if err := cl.call(ctx, "GET", "/volumes", nil, nil, &resp); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
		for _, v := range resp.Volumes {
			fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
		}
		return tw.Flush()
	case "create":
		var v types.Volume
		name := ""
		if len(args) > 1 {
			name = args[1]
		}
		if err := cl.call(ctx, "POST", "/volumes/create", nil, map[string]string{"Name": name}, &v); err != nil {
			return err
		}
		fmt.Fprintln(c.Stdout, v.Name)
		return nil
	case "inspect":
		for _, n := range args[1:] {
			var v map[string]any
			if err := cl.call(ctx, "GET", "/volumes/"+n, nil, nil, &v); err != nil {
				return err
			}
			b, _ := json.MarshalIndent([]any{v}, "", "    ")
			fmt.Fprintln(c.Stdout, string(b))
		}
		return nil
	case "rm", "remove":
		fs := newFlags("volume rm", c)
		force := fs.BoolP("force", "f", false, "force the removal")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		q := url.Values{}
		if *force {
			q.Set("force", "1")
		}
		return each(c, fs.Args(), func(n string) error { return cl.call(ctx, "DELETE", "/volumes/"+n, q, nil, nil) })
	}
	return usageErr("unknown volume subcommand %q", args[0])
}
