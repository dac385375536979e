package rfenv

import "github.com/rfenv/rfenv/pkg/backend"

// ConfigConflictError is returned by Up when the environment runs with another image or
// configuration; WithForceRecreate replaces its replicas. It is of kind errs.Conflict.
type ConfigConflictError = backend.ConfigConflictError
