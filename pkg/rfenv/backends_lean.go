//go:build rfenvlean

package rfenv

import "github.com/rfenv/rfenv/pkg/backend"

// fullBackends is empty in the lean front binary: an environment of a backend it leaves out fails
// with a NotLinkedError before anything is done, and the front hands the command to the full binary.
func fullBackends(backend.Deps) []backend.Backend { return nil }
