package docker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/meshproof/meshproof/harness/backend/images"
	"github.com/meshproof/meshproof/harness/topology"
)

// MissingImageError is an image that is neither present nor pullable. The
// CLI maps it to exit 2 (an environment failure, not a failed assertion).
type MissingImageError struct {
	Image    string
	Services []string
	Err      error // why the pull failed
}

func (e *MissingImageError) Error() string {
	return fmt.Sprintf("image %s (used by %s) is not present and could not be pulled: %v; "+
		"where no registry is reachable, build the offline stand-ins with `%s` and use the env file it writes",
		e.Image, strings.Join(e.Services, ", "), e.Err, images.BuildCommand)
}

func (e *MissingImageError) Unwrap() error { return e.Err }

// Preflight inspects the image of every named service before anything
// starts, pulling what is missing, so a run never starts half an environment
// only to fail on the last image. It returns every image that is still
// missing, joined.
func (b *Backend) Preflight(ctx context.Context, topo *topology.Topology, services []string) error {
	cli, err := b.client()
	if err != nil {
		return err
	}
	users := map[string][]string{}
	for _, name := range services {
		svc, ok := topo.Services[name]
		if !ok {
			return fmt.Errorf("preflight: unknown service %q", name)
		}
		if svc.Image == "" {
			return fmt.Errorf("preflight: service %s has no image", name)
		}
		users[svc.Image] = append(users[svc.Image], name)
	}
	refs := make([]string, 0, len(users))
	for ref := range users {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	var errs []error
	for _, ref := range refs {
		if _, err := cli.ImageInspect(ctx, ref); err == nil {
			continue
		} else if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("inspect image %s: %w", ref, err)
		}
		b.logf("image %s missing; pulling", ref)
		if err := b.pull(ctx, cli, ref); err != nil {
			sort.Strings(users[ref])
			errs = append(errs, &MissingImageError{Image: ref, Services: users[ref], Err: err})
		}
	}
	return errors.Join(errs...)
}

func (b *Backend) pull(ctx context.Context, cli *client.Client, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.pullTimeout)
	defer cancel()
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return err
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("after pull: %w", err)
	}
	return nil
}
