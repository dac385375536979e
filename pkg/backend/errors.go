package backend

import (
	"fmt"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
)

// ConfigConflictError says that an environment runs with another image or configuration than up
// asked for. Replacing its replicas silently could drop work in progress, so up refuses unless told
// to recreate them (UpOptions.ForceRecreate); the CLI names its flag.
type ConfigConflictError struct {
	Env      string
	Where    string   // the host, for a backend whose replicas have no names of their own
	Replicas []string // the replicas that differ
}

func (e *ConfigConflictError) Error() string {
	switch {
	case len(e.Replicas) > 0:
		return fmt.Sprintf("%s is running with a different image or configuration (%s)", e.Env, strings.Join(e.Replicas, ", "))
	case e.Where != "":
		return fmt.Sprintf("%s is running on %s with a different image or configuration", e.Env, e.Where)
	}
	return fmt.Sprintf("%s is running with a different image or configuration", e.Env)
}

// Unwrap makes it an error of kind errs.Conflict.
func (e *ConfigConflictError) Unwrap() error { return errs.Conflict }
