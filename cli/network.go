package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/estiba/estiba/engine/api/types"
)

func cmdNetwork(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) == 0 {
		return usageErr("estiba network needs a subcommand: create, ls, inspect, rm, connect, disconnect, prune")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "create":
		return networkCreate(ctx, c, cl, rest)
	case "ls", "list":
		return networkLs(ctx, c, cl, rest)
	case "inspect":
		return networkInspect(ctx, c, cl, rest)
	case "rm", "remove":
		return each(c, rest, func(n string) error { return cl.call(ctx, "DELETE", "/networks/"+url.PathEscape(n), nil, nil, nil) })
	case "connect":
		return networkConnect(ctx, c, cl, rest)
	case "disconnect":
		fs := newFlags("network disconnect", c)
		force := fs.BoolP("force", "f", false, "force the container to disconnect from a network")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() != 2 {
			return usageErr("network disconnect requires exactly 2 arguments: NETWORK CONTAINER")
		}
		req := types.NetworkDisconnectRequest{Container: fs.Arg(1), Force: *force}
		return cl.call(ctx, "POST", "/networks/"+url.PathEscape(fs.Arg(0))+"/disconnect", nil, req, nil)
	case "prune":
		return networkPrune(ctx, c, cl, rest)
	}
	return usageErr("unknown network subcommand %q", sub)
}

func networkCreate(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("network create", c)
	driver := fs.StringP("driver", "d", "bridge", "driver to manage the network (only bridge)")
	subnets := fs.StringArray("subnet", nil, "subnet in CIDR format (one IPv4, one IPv6)")
	gateways := fs.StringArray("gateway", nil, "gateway for the subnet given at the same position")
	internal := fs.Bool("internal", false, "restrict external access to the network")
	ipv6 := fs.Bool("ipv6", false, "enable IPv6 networking (needs an IPv6 --subnet)")
	labels := fs.StringArrayP("label", "l", nil, "set metadata on a network")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErr("network create requires exactly 1 argument: NAME")
	}
	if len(*gateways) > len(*subnets) {
		return usageErr("every --gateway needs a --subnet")
	}
	req := types.NetworkCreateRequest{Name: fs.Arg(0), CheckDuplicate: true, Driver: *driver, Internal: *internal,
		EnableIPv6: ipv6, Labels: map[string]string{}}
	if len(*subnets) > 0 {
		req.IPAM = &types.IPAM{Driver: "default"}
		for i, s := range *subnets {
			cfg := types.IPAMConfig{Subnet: s}
			if i < len(*gateways) {
				cfg.Gateway = (*gateways)[i]
			}
			req.IPAM.Config = append(req.IPAM.Config, cfg)
		}
	}
	for _, l := range *labels {
		k, v, _ := strings.Cut(l, "=")
		req.Labels[k] = v
	}
	var resp types.NetworkCreateResponse
	if err := cl.call(ctx, "POST", "/networks/create", nil, req, &resp); err != nil {
		return err
	}
	if resp.Warning != "" {
		fmt.Fprintln(c.Stderr, "WARNING:", resp.Warning)
	}
	fmt.Fprintln(c.Stdout, resp.ID)
	return nil
}

func networkLs(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("network ls", c)
	quiet := fs.BoolP("quiet", "q", false, "only display network IDs")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate the output")
	filters := fs.StringArrayP("filter", "f", nil, "provide filter values (e.g. 'driver=bridge')")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{}
	f, err := filterValues(*filters)
	if err != nil {
		return err
	}
	if f != "" {
		q.Set("filters", f)
	}
	var list []types.NetworkResource
	if err := cl.call(ctx, "GET", "/networks", q, nil, &list); err != nil {
		return err
	}
	if *quiet {
		for _, n := range list {
			fmt.Fprintln(c.Stdout, trunc(n.ID, !*noTrunc))
		}
		return nil
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
	for _, n := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", trunc(n.ID, !*noTrunc), n.Name, n.Driver, n.Scope)
	}
	return tw.Flush()
}

func networkInspect(ctx context.Context, c *CLI, cl *Client, args []string) error {
	if len(args) == 0 {
		return usageErr("network inspect requires at least 1 argument")
	}
	var out []any
	var failed bool
	for _, n := range args {
		var v map[string]any
		if err := cl.call(ctx, "GET", "/networks/"+url.PathEscape(n), nil, nil, &v); err != nil {
			fmt.Fprintln(c.Stderr, "Error:", err)
			failed = true
			continue
		}
		out = append(out, v)
	}
	if out == nil {
		out = []any{}
	}
	b, _ := json.MarshalIndent(out, "", "    ")
	fmt.Fprintln(c.Stdout, string(b))
	if failed {
		return exitCode(1)
	}
	return nil
}

func networkConnect(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("network connect", c)
	aliases := fs.StringArray("alias", nil, "add network-scoped alias for the container")
	ip := fs.String("ip", "", "IPv4 address")
	ip6 := fs.String("ip6", "", "IPv6 address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageErr("network connect requires exactly 2 arguments: NETWORK CONTAINER")
	}
	ep := &types.EndpointSettings{Aliases: *aliases}
	if *ip != "" || *ip6 != "" {
		ep.IPAMConfig = &types.EndpointIPAMConfig{IPv4Address: *ip, IPv6Address: *ip6}
	}
	req := types.NetworkConnectRequest{Container: fs.Arg(1), EndpointConfig: ep}
	return cl.call(ctx, "POST", "/networks/"+url.PathEscape(fs.Arg(0))+"/connect", nil, req, nil)
}

func networkPrune(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("network prune", c)
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*force {
		return usageErr("estiba network prune removes all unused networks: pass -f to confirm")
	}
	var rep types.NetworkPruneReport
	if err := cl.call(ctx, "POST", "/networks/prune", nil, nil, &rep); err != nil {
		return err
	}
	if len(rep.NetworksDeleted) > 0 {
		fmt.Fprintln(c.Stdout, "Deleted Networks:")
		for _, n := range rep.NetworksDeleted {
			fmt.Fprintln(c.Stdout, n)
		}
	}
	return nil
}
