//go:build !rfenvlean

package rfenv

import (
	"github.com/rfenv/rfenv/pkg/backend"
	"github.com/rfenv/rfenv/pkg/backend/kube"
)

// fullBackends are the backends whose client libraries the lean front binary leaves out (client-go
// alone costs every process about a millisecond of package initialisation).
func fullBackends(d backend.Deps) []backend.Backend {
	return []backend.Backend{kube.New(d)}
}
