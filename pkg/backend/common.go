package backend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/state"
)

// ImageInfo is what up needs to know about the image.
type ImageInfo struct {
	ID   string // on the first host that has it: what the state file records
	Kind string
	Port int
	// IDs is the image's ID on each host (spec → ID). A tag built on each host (`rfenv build --host a
	// --host b`) names a different image on each, and a replica must run its own host's.
	IDs map[string]string
}

// IDOn is the image's ID on a host.
func (i ImageInfo) IDOn(spec string) string {
	if id := i.IDs[spec]; id != "" {
		return id
	}
	return i.ID
}

// NewToken makes an environment's random bearer token.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// EnvKeys are the names (never the values) of the variables and secrets, sorted, as state records them.
func EnvKeys(o UpOptions) []string {
	var keys []string
	for k := range o.Env {
		keys = append(keys, k)
	}
	for k := range o.Secrets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SpecStrings are the specs as written.
func SpecStrings(specs []host.Spec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Raw
	}
	return out
}

// ContainsSpec says whether list has s.
func ContainsSpec(list []host.Spec, s host.Spec) bool {
	for _, x := range list {
		if x.Raw == s.Raw {
			return true
		}
	}
	return false
}

// HealthFailure describes a replica whose /health says failed: the Actor's error, with the traceback
// of a syntax error (which points at the line).
func HealthFailure(h pool.Health) string {
	msg := h.Status
	if h.Error != nil {
		msg = h.Error.Type + ": " + h.Error.Message
		if tb := strings.TrimSpace(h.Error.Traceback); tb != "" && h.Error.Type == "SyntaxError" {
			msg += "\n" + tb
		}
	}
	return msg
}

// InterruptedError says what an interrupted operation cleaned up; the error that the interruption
// surfaced as (often a cut-off Docker or API request) stays in the chain but not in the message.
type InterruptedError struct {
	Msg   string
	Cause error
}

func (e *InterruptedError) Error() string { return e.Msg }
func (e *InterruptedError) Unwrap() error { return e.Cause }

// Interrupted is the one rule, for every backend, of an operation that failed after its ctx was
// cancelled (Ctrl-C): it is an interruption (exit 130), whatever error the cancellation surfaced as
// (requests cut short report themselves as infrastructure errors). A ctx deadline is not an
// interruption: its error stays. msg says what was cleaned up.
func Interrupted(ctx context.Context, err error, msg string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled) {
		return errs.Wrap(errs.Interrupted, &InterruptedError{Msg: msg, Cause: err})
	}
	return err
}

// NewEntry is the state entry an up records before it starts anything: what every backend records
// the same way, its previous entry's creation time and replicas kept until the new ones are known.
func NewEntry(kind string, o UpOptions, image string, img ImageInfo, serverKind, token, hash string, hosts []string, prev *state.Environment) *state.Environment {
	rec := &state.Environment{
		Name: o.Name, Backend: kind, Image: image, ImageID: img.ID, Type: serverKind, Port: img.Port, Token: token,
		Balancer: o.Balancer, ConfigHash: hash, EnvKeys: EnvKeys(o), Hosts: hosts,
		CreatedAt: time.Now().UTC(),
	}
	RecordLimits(rec, o)
	if prev != nil {
		rec.CreatedAt = prev.CreatedAt
		rec.Instances = prev.Instances
	}
	return rec
}
