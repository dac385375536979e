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

// NotLinkedError says that an environment runs on a backend this build of rfenv leaves out: the
// lean front binary (tag rfenvlean) links no Kubernetes client. It is returned before anything is
// done, so the command can be run again by the full binary.
type NotLinkedError struct {
	Env     string
	Backend string
}

func (e *NotLinkedError) Error() string {
	return fmt.Sprintf("environment %s runs on the %s backend, which this lean rfenv binary leaves out; run it with the full binary", e.Env, e.Backend)
}

// Unwrap makes it an error of kind errs.Usage.
func (e *NotLinkedError) Unwrap() error { return errs.Usage }
