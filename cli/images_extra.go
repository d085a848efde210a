package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/estiba/estiba/image/registry/dockerconfig"
	"golang.org/x/term"
)

// dockerHub is the server address Docker logs in to by default.
const dockerHub = "https://index.docker.io/v1/"

// dockerConfigPath is the docker CLI's config: $DOCKER_CONFIG/config.json,
// else $HOME/.docker/config.json.
func dockerConfigPath(c *CLI) (string, error) {
	if d := c.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home := c.Getenv("HOME")
	if home == "" {
		return "", errors.New("cannot find the docker config: neither DOCKER_CONFIG nor HOME is set")
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

func loadDockerConfig(c *CLI) (*dockerconfig.Config, error) {
	p, err := dockerConfigPath(c)
	if err != nil {
		return nil, err
	}
	return dockerconfig.Load(p)
}

// registryHost maps a login server argument to the registry domain.
func registryHost(server string) string {
	h := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

func serverAddress(host string) string {
	if host == "docker.io" {
		return dockerHub
	}
	return host
}

// authHeader is the X-Registry-Auth value for ref's registry from the
// docker config, or "" when there is no credential (anonymous).
func authHeader(c *CLI, ref string) (string, error) {
	domain := registryDomain(ref)
	dc, err := loadDockerConfig(c)
	if err != nil {
		return "", err
	}
	cred, err := dc.Credential(domain)
	if err != nil || cred.IsZero() {
		return "", err
	}
	return encodeAuth(types.AuthConfig{Username: cred.Username, Password: cred.Password,
		IdentityToken: cred.IdentityToken, ServerAddress: serverAddress(domain)})
}

// registryDomain is the registry of an image reference, by Docker's rule:
// the first component of a name with a '/' is a domain if it has a '.' or
// ':', is "localhost" or has uppercase letters; else Docker Hub. Only the
// domain matters here (to pick a credential): the daemon parses and checks
// the whole reference, and the CLI need not link the reference parser and
// its digest regexps for it.
func registryDomain(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	first, _, ok := strings.Cut(name, "/")
	if !ok || !(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		return "docker.io"
	}
	if first == "index.docker.io" {
		return "docker.io"
	}
	return first
}

func encodeAuth(a types.AuthConfig) (string, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// authContext is ctx sending ref's credential, if the config has one.
func authContext(ctx context.Context, c *CLI, ref string) (context.Context, error) {
	h, err := authHeader(c, ref)
	if err != nil || h == "" {
		return ctx, err
	}
	return withHeaders(ctx, map[string]string{"X-Registry-Auth": h}), nil
}

func cmdPush(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("push", c)
	fs.BoolP("all-tags", "a", false, "push all tags (not supported)")
	quiet := fs.BoolP("quiet", "q", false, "suppress verbose output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("requires exactly 1 argument: NAME[:TAG]")
	}
	if fs.Changed("all-tags") {
		return usageErr("push --all-tags is not supported: push each tag")
	}
	ref := fs.Arg(0)
	ctx, err := authContext(ctx, c, ref)
	if err != nil {
		return err
	}
	repo, tag := splitRef(ref)
	q := url.Values{}
	if tag != "" {
		q.Set("tag", tag)
	}
	resp, err := cl.do(ctx, "POST", "/images/"+repo+"/push", q, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out := c.Stdout
	if *quiet {
		out = io.Discard
	}
	if err := renderProgress(out, resp.Body); err != nil {
		return err
	}
	if *quiet {
		fmt.Fprintln(c.Stdout, ref)
	}
	return nil
}

func cmdLogin(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("login", c)
	user := fs.StringP("username", "u", "", "username")
	pass := fs.StringP("password", "p", "", "password")
	stdin := fs.Bool("password-stdin", false, "take the password from stdin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageErr("login takes at most 1 argument: SERVER")
	}
	if *stdin {
		if *pass != "" {
			return usageErr("--password and --password-stdin are mutually exclusive")
		}
		if *user == "" {
			return usageErr("must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(c.Stdin)
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		*pass = strings.TrimRight(string(b), "\r\n")
	}
	if *user == "" || *pass == "" {
		return usageErr("login needs -u USER and -p PASSWORD or --password-stdin (no interactive prompt)")
	}
	host := registryHost(fs.Arg(0))
	a := types.AuthConfig{Username: *user, Password: *pass, ServerAddress: serverAddress(host)}
	var resp types.AuthResponse
	if err := cl.call(ctx, "POST", "/auth", nil, a, &resp); err != nil {
		return err
	}
	dc, err := loadDockerConfig(c)
	if err != nil {
		return err
	}
	cred := dockerconfig.Credential{Username: *user, Password: *pass}
	if resp.IdentityToken != "" {
		cred = dockerconfig.Credential{Username: *user, IdentityToken: resp.IdentityToken}
	}
	if err := dc.Store(host, cred); err != nil {
		return fmt.Errorf("store credentials: %w", err)
	}
	fmt.Fprintln(c.Stdout, resp.Status)
	return nil
}

func cmdLogout(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) > 1 {
		return usageErr("logout takes at most 1 argument: SERVER")
	}
	server := ""
	if len(args) == 1 {
		server = args[0]
	}
	host := registryHost(server)
	dc, err := loadDockerConfig(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "Removing login credentials for %s\n", serverAddress(host))
	if err := dc.Remove(host); err != nil && !errors.Is(err, dockerconfig.ErrNotFound) {
		return err
	}
	return nil
}

func cmdSave(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("save", c)
	output := fs.StringP("output", "o", "", "write to a file, instead of STDOUT")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageErr("requires at least 1 argument: IMAGE...")
	}
	if *output == "" {
		if f, ok := c.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return usageErr("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
	}
	resp, err := cl.do(ctx, "GET", "/images/get", url.Values{"names": fs.Args()}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *output == "" {
		_, err := io.Copy(c.Stdout, resp.Body)
		return err
	}
	return saveFile(*output, resp.Body)
}

// saveFile writes the archive beside path and renames it into place, so
// a failed save never leaves a truncated archive under the asked name.
func saveFile(path string, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".estiba-save-*")
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

func cmdHistory(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("history", c)
	noTrunc := fs.Bool("no-trunc", false, "don't truncate output")
	quiet := fs.BoolP("quiet", "q", false, "only show image IDs")
	human := fs.BoolP("human", "H", true, "print sizes and dates in human readable format")
	format := fs.String("format", "", "output format: table (default) or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("requires exactly 1 argument: IMAGE")
	}
	var h []types.ImageHistoryItem
	if err := cl.call(ctx, "GET", "/images/"+fs.Arg(0)+"/history", nil, nil, &h); err != nil {
		return err
	}
	switch {
	case *quiet:
		for _, e := range h {
			fmt.Fprintln(c.Stdout, historyID(e.ID, *noTrunc))
		}
		return nil
	case *format == "json":
		enc := json.NewEncoder(c.Stdout)
		for _, e := range h {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	case *format != "" && *format != "table":
		return usageErr("--format %q is not supported: use table or json", *format)
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
	for _, e := range h {
		id := historyID(e.ID, *noTrunc)
		by := strings.ReplaceAll(e.CreatedBy, "\t", " ")
		if !*noTrunc && len(by) > 45 {
			by = by[:44] + "…"
		}
		created, size := ago(e.Created), decSize(e.Size)
		if e.Created == 0 {
			created = "N/A"
		}
		if !*human {
			created, size = time.Unix(e.Created, 0).Format(time.RFC3339), fmt.Sprint(e.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, created, by, size, e.Comment)
	}
	return tw.Flush()
}

func cmdImagePrune(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("image prune", c)
	all := fs.BoolP("all", "a", false, "remove all unused images, not just dangling ones")
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErr("image prune takes no arguments")
	}
	if !*force && !confirm(c, *all) {
		return nil
	}
	q := url.Values{}
	if *all {
		q.Set("filters", `{"dangling":["false"]}`)
	}
	var rep types.PruneReport
	if err := cl.call(ctx, "POST", "/images/prune", q, nil, &rep); err != nil {
		return err
	}
	if len(rep.ImagesDeleted) > 0 {
		fmt.Fprintln(c.Stdout, "Deleted Images:")
		for _, i := range rep.ImagesDeleted {
			if i.Untagged != "" {
				fmt.Fprintln(c.Stdout, "untagged:", i.Untagged)
			}
			if i.Deleted != "" {
				fmt.Fprintln(c.Stdout, "deleted:", i.Deleted)
			}
		}
		fmt.Fprintln(c.Stdout)
	}
	fmt.Fprintf(c.Stdout, "Total reclaimed space: %s\n", decSize(int64(rep.SpaceReclaimed)))
	return nil
}

// confirm asks docker's question on stdin; anything but y/Y declines.
func confirm(c *CLI, all bool) bool {
	what := "all dangling images"
	if all {
		what = "all images without at least one container associated to them"
	}
	fmt.Fprintf(c.Stdout, "WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] ", what)
	line, _ := bufio.NewReader(c.Stdin).ReadString('\n')
	return strings.EqualFold(strings.TrimSpace(line), "y")
}

// historyID is docker's: the full "sha256:…" with --no-trunc, else 12 hex
// digits; "<missing>" as it is.
func historyID(id string, noTrunc bool) string {
	if noTrunc || id == "<missing>" {
		return id
	}
	return trunc(id, true)
}
