package state

import (
	"errors"
	"fmt"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
)

var (
	// ErrNotFound matches (errors.Is) the error of Get for an unknown environment. That error
	// also matches errs.NotFound.
	ErrNotFound = errors.New("environment not found")
	// ErrCorrupt matches (errors.Is) a *CorruptError: the state file does not parse.
	ErrCorrupt = errors.New("state file is corrupt")
	// ErrSchemaTooNew matches (errors.Is) a *SchemaError: a newer rfenv wrote the state file.
	ErrSchemaTooNew = errors.New("state file schema is newer than this rfenv")
)

// NotFoundError is Get's error for an unknown environment.
type NotFoundError struct {
	Name   string
	Active []string // the environments that exist, sorted
}

func (e *NotFoundError) Error() string {
	if len(e.Active) == 0 {
		return fmt.Sprintf("environment %q not found; no environment is active (start one with rfenv up)", e.Name)
	}
	return fmt.Sprintf("environment %q not found; active: %s (see rfenv ls)", e.Name, strings.Join(e.Active, ", "))
}

// Is makes errors.Is(err, ErrNotFound) and errors.Is(err, errs.NotFound) true.
func (e *NotFoundError) Is(target error) bool {
	return target == ErrNotFound || target == errs.NotFound
}

// CorruptError reports a state file that does not parse. Load and Update never modify such a
// file: the user moves it aside, as the message explains.
type CorruptError struct {
	Path   string
	Reason string // what is wrong, with the byte offset when the JSON decoder knows it
	Err    error  // the decoder's error, if any
}

func (e *CorruptError) Error() string {
	q := shellQuote(e.Path)
	return fmt.Sprintf("state file %s is corrupt (%s); move it aside (mv %s %s) and run \"rfenv down --orphans\" to remove containers it tracked",
		e.Path, e.Reason, q, shellQuote(e.Path+".bad"))
}

// Unwrap returns ErrCorrupt and the decoder's error.
func (e *CorruptError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCorrupt}
	}
	return []error{ErrCorrupt, e.Err}
}

// SchemaError reports a state file written by a newer rfenv (a schema above SchemaVersion).
type SchemaError struct {
	Path    string
	Version int
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("state file %s has schema version %d but this rfenv only understands version %d; upgrade rfenv (or use another --state-dir)",
		e.Path, e.Version, SchemaVersion)
}

// Is makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaTooNew }
