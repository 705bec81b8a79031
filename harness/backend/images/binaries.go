package images

import (
	"context"

	"github.com/meshproof/meshproof/internal/toolbin"
)

// defaultBinaries builds (or reuses) the stand-ins' static binaries through
// toolbin, which caches them per machine by their own build inputs.
func defaultBinaries(ctx context.Context, name string) (string, error) {
	return toolbin.Path(ctx, name)
}
