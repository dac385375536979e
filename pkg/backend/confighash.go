package backend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/rfenv/rfenv/pkg/protocol"
)

// ConfigHash identifies an environment's configuration, so that up reuses replicas only when nothing
// changed. It covers variable values, which are secrets, so it is keyed with the environment's token:
// the label it lands in cannot be used to test guesses of a secret by anyone without the token.
func ConfigHash(token string, img ImageInfo, kind string, o UpOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "image=%s\nkind=%s\nport=%d\n", img.ID, kind, img.Port)
	// Hosts whose image of the tag is another build (only those, so that the hash of a single image
	// stays what it always was).
	hosts := make([]string, 0, len(img.IDs))
	for h, id := range img.IDs {
		if id != img.ID {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		fmt.Fprintf(&b, "image@%s=%s\n", h, img.IDs[h])
	}
	writeMap(&b, "env", o.Env)
	writeMap(&b, "secret", o.Secrets)
	writeMap(&b, "label", o.Labels)
	fmt.Fprintf(&b, "memory=%d\ncpus=%d\ngpus=%s\nnetwork=%s\n", o.Memory, o.NanoCPUs, o.GPUs, o.Network)
	for _, v := range o.Volumes {
		fmt.Fprintf(&b, "volume=%s\n", v)
	}
	if o.Transport == protocol.TransportPublished { // a port binding: other transports hash as before
		fmt.Fprintf(&b, "transport=%s\n", o.Transport)
	}
	if o.PullPolicy != "" { // Kubernetes only: Docker hashes stay what they were
		fmt.Fprintf(&b, "pull_policy=%s\n", o.PullPolicy)
	}
	if d := OverdueRestart(o); d != protocol.DefaultOverdueRestart {
		// Only when not the default, so that replicas started before the option existed still match.
		fmt.Fprintf(&b, "overdue_restart_ms=%d\n", d.Milliseconds())
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(b.String()))
	return hex.EncodeToString(m.Sum(nil))
}

func writeMap(b *strings.Builder, kind string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s:%q=%q\n", kind, k, m[k])
	}
}
