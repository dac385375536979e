package build

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/rfenv/rfenv/pkg/errs"
)

// Labels recording where an image built from a git repository came from. The two OCI ones are what
// registries and scanners read; the rfenv ones add the ref and subdirectory that were asked for.
const (
	LabelSourceURL    = "org.opencontainers.image.source"   // the repository URL, without credentials
	LabelSourceCommit = "org.opencontainers.image.revision" // the full commit hash that was built
	LabelSourceRef    = "rfenv.source.ref"                  // the ref asked for ("" = the default branch)
	LabelSourceSubdir = "rfenv.source.subdir"               // the subdirectory built ("" = the root)
)

// GitSource is a build context inside a git repository, written as Docker writes one:
// URL#ref:subdir, where both the ref and the subdirectory are optional.
type GitSource struct {
	URL    string // what git clones: https://…, ssh://…, git@host:org/repo.git, git://…, file://…
	Ref    string // branch, tag or commit; "" is the remote's default branch
	Subdir string // a relative, cleaned path inside the repository; "" is its root
}

// scpLike matches git's scp-like syntax, user@host:path (as git itself does, a colon before any
// slash). A Windows drive letter ("C:\...") is not a host, hence the two-character minimum. It is
// compiled on first use, as this package's other expressions are: package initialisation runs in
// every rfenv process, `rfenv call` included.
var scpLike = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]{2,}:.`) })

// IsGitURL reports whether s names a git repository rather than a local directory: an https://,
// http://, ssh://, git:// or file:// URL, or the scp-like user@host:path form. A plain path that
// happens to exist locally is never a git URL, so "./env" and "env" keep meaning directories.
func IsGitURL(s string) bool {
	for _, p := range []string{"https://", "http://", "ssh://", "git://", "git+ssh://", "file://"} {
		if strings.HasPrefix(strings.ToLower(s), p) {
			return true
		}
	}
	return scpLike().MatchString(s)
}

// ParseGitSource splits URL#ref:subdir. Errors are of kind errs.Usage.
func ParseGitSource(s string) (GitSource, error) {
	if !IsGitURL(s) {
		return GitSource{}, errs.New(errs.Usage, "%q is not a git URL: use https://, ssh://, git://, file:// or user@host:path, optionally followed by #ref:subdir", s)
	}
	raw, frag, _ := strings.Cut(s, "#")
	ref, sub, _ := strings.Cut(frag, ":")
	g := GitSource{URL: raw, Ref: ref}
	if raw == "" || strings.HasSuffix(raw, "://") {
		return GitSource{}, errs.New(errs.Usage, "%q: the git URL has no repository", Redact(s))
	}
	if strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \t\n") {
		// A ref starting with "-" would reach git as an option.
		return GitSource{}, errs.New(errs.Usage, "%q: invalid ref %q", Redact(s), ref)
	}
	if sub != "" {
		clean := path.Clean(strings.TrimPrefix(sub, "/"))
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return GitSource{}, errs.New(errs.Usage, "%q: the subdirectory %q leaves the repository", Redact(s), sub)
		}
		if clean != "." {
			g.Subdir = clean
		}
	}
	return g, nil
}

// String is the source in fragment syntax, with any password in the URL hidden.
func (g GitSource) String() string {
	s := Redact(g.URL)
	if g.Ref != "" || g.Subdir != "" {
		s += "#" + g.Ref
	}
	if g.Subdir != "" {
		s += ":" + g.Subdir
	}
	return s
}

// Redact hides the password (or token) of a URL's user information, so that a source can be shown
// and recorded in a label without leaking it. Non-URL forms are returned unchanged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// labels are the image labels recording this source and the commit built.
func (g GitSource) labels(commit string) map[string]string {
	return map[string]string{
		LabelSourceURL:    stripUserinfo(g.URL),
		LabelSourceCommit: commit,
		LabelSourceRef:    g.Ref,
		LabelSourceSubdir: g.Subdir,
	}
}

// stripUserinfo drops a URL's credentials entirely (a label is world-readable to anyone with the
// image): https://tok@host/r.git → https://host/r.git. scp-like and ssh:// user names stay, they are
// not secrets.
func stripUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || strings.HasPrefix(u.Scheme, "ssh") || strings.HasSuffix(u.Scheme, "+ssh") {
		return raw
	}
	u.User = nil
	return u.String()
}

// describe is how errors name the source.
func (g GitSource) describe() string { return fmt.Sprintf("git source %s", g) }

// labelAttrs turns labels into the Dockerfile frontend's label: attributes (they apply on top of
// the Dockerfile's own LABELs).
func labelAttrs(labels map[string]string) map[string]string {
	attrs := map[string]string{}
	for k, v := range labels {
		attrs["label:"+k] = v
	}
	return attrs
}
