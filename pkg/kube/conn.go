// Package kube runs an environment's replicas on a Kubernetes cluster: a Deployment of the image with
// rfenv's labels, a readiness probe on /health and the token and -e values in a Secret, and reaches the
// pods either through the API server (a port-forward stream per connection, with the kubeconfig's
// credentials) or, from inside the cluster, straight at their pod IPs.
//
// Only the two API groups rfenv needs (apps/v1 and core/v1) are used, through client-go's REST client
// over a scheme of just those groups (see api.go), to keep the CLI's start-up cost small.
package kube

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/host"
)

// TransportEnv overrides how calls reach pods: "direct" (pod IPs) or "apiserver" (port-forward
// through the API server). Default: direct inside a cluster (KUBERNETES_SERVICE_HOST is set), else
// apiserver.
const TransportEnv = "RFENV_KUBE_TRANSPORT"

// Conn is one cluster namespace reached with one set of credentials.
type Conn struct {
	Spec      host.Spec
	Namespace string
	Config    *rest.Config
	core      resources // core/v1
	apps      resources // apps/v1
	// Direct: calls go straight to pod IPs instead of through the API server.
	Direct bool

	spdyOnce sync.Once
	spdy     *spdyClient
	spdyErr  error
}

// Open loads the kubeconfig (KUBECONFIG, else ~/.kube/config; in a pod without one, the in-cluster
// service account) for the spec's context and namespace and makes the clients. It makes no request.
func Open(spec host.Spec) (*Conn, error) {
	if spec.Kind != host.K8s {
		return nil, errs.New(errs.Usage, "host %s is not a Kubernetes host", spec)
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{CurrentContext: spec.Context}
	if spec.Namespace != "" {
		overrides.Context.Namespace = spec.Namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		hint := "check KUBECONFIG or ~/.kube/config"
		if spec.Context != "" {
			hint = fmt.Sprintf("is %q a context of your kubeconfig? (kubectl config get-contexts)", spec.Context)
		}
		return nil, errs.Wrap(errs.Infra, fmt.Errorf("host %s: load the Kubernetes client configuration: %w (%s)", spec, err, hint))
	}
	ns := spec.Namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	// rfenv lists pods on every `call` and polls during up: the client-side defaults (5 QPS) would
	// throttle a 16-replica up noticeably.
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "rfenv"
	cfg.Timeout = 0
	core, err := restClient(cfg, "/api", corev1.SchemeGroupVersion)
	if err != nil {
		return nil, errs.Wrap(errs.Infra, fmt.Errorf("host %s: %w", spec, err))
	}
	apps, err := restClient(cfg, "/apis", appsv1.SchemeGroupVersion)
	if err != nil {
		return nil, errs.Wrap(errs.Infra, fmt.Errorf("host %s: %w", spec, err))
	}
	c := &Conn{Spec: spec, Namespace: ns, Config: cfg, core: resources{core, ns}, apps: resources{apps, ns}}
	switch strings.ToLower(os.Getenv(TransportEnv)) {
	case "direct":
		c.Direct = true
	case "apiserver", "api", "port-forward", "portforward":
		c.Direct = false
	default:
		c.Direct = os.Getenv("KUBERNETES_SERVICE_HOST") != ""
	}
	return c, nil
}

// Connector shares one Conn per spec for the life of a process.
type Connector struct {
	mu    sync.Mutex
	conns map[string]*Conn
}

// Get returns the Conn of spec, opening it on first use.
func (k *Connector) Get(spec host.Spec) (*Conn, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.conns[spec.Raw]; ok {
		return c, nil
	}
	c, err := Open(spec)
	if err != nil {
		return nil, err
	}
	if k.conns == nil {
		k.conns = map[string]*Conn{}
	}
	k.conns[spec.Raw] = c
	return c, nil
}

// apiError turns a failed API request into an infrastructure error naming the cluster.
func (c *Conn) apiError(what string, err error) error {
	if err == nil {
		return nil
	}
	return errs.Wrap(errs.Infra, fmt.Errorf("%s on %s (namespace %s): %w", what, c.Spec, c.Namespace, err))
}

// pollInterval is how often up re-reads the Deployment and its pods while waiting.
const pollInterval = 150 * time.Millisecond

// ValidateName checks that an environment name can name a Deployment and a Secret.
func ValidateName(name string) error {
	if len(name) > 50 {
		return errs.New(errs.Usage, "environment name %q: on Kubernetes a name must be at most 50 characters (set one with --name)", name)
	}
	for i, ch := range name {
		ok := ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' && i > 0 && i < len(name)-1
		if !ok {
			return errs.New(errs.Usage, "environment name %q: on Kubernetes a name must be lowercase letters, digits and '-', starting and ending with a letter or digit (set one with --name)", name)
		}
	}
	return nil
}

// DeploymentName is the Deployment of an environment.
func DeploymentName(env string) string { return env }

// SecretName is the Secret holding an environment's token and -e values.
func SecretName(env string) string { return env + "-rfenv-env" }
