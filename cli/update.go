package cli

import (
	"context"

	"github.com/estiba/estiba/engine/api/types"
	"github.com/spf13/pflag"
)

// registerBandwidth adds estiba's rate-limit flags (an API extension:
// HostConfig.EstibaEgressRate and friends).
func registerBandwidth(fs *pflag.FlagSet, b *types.Bandwidth) {
	fs.StringVar(&b.EstibaEgressRate, "egress-rate", "", "limit traffic out of the container (e.g. 10mbit, 500k)")
	fs.StringVar(&b.EstibaIngressRate, "ingress-rate", "", "limit traffic into the container (e.g. 10mbit, 500k)")
	fs.StringVar(&b.EstibaEgressBurst, "egress-burst", "", "egress burst in bytes (e.g. 32k; default ~10ms of the rate)")
	fs.StringVar(&b.EstibaIngressBurst, "ingress-burst", "", "ingress burst in bytes (e.g. 32k; default ~10ms of the rate)")
}

// cmdUpdate changes a container's network rate limits, live when it runs
// (the flags not given lift their limit). Docker's cgroup flags of update
// are not built: they fail as unknown flags.
func cmdUpdate(ctx context.Context, c *CLI, cl *Client, args []string) error {
	fs := newFlags("update", c)
	var req types.ContainerUpdateRequest
	registerBandwidth(fs, &req.Bandwidth)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return each(c, fs.Args(), func(id string) error {
		var resp types.ContainerUpdateResponse
		return cl.call(ctx, "POST", "/containers/"+id+"/update", nil, req, &resp)
	})
}
