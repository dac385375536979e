package serve

import (
	"encoding/json"
	"time"

	"github.com/rfenv/rfenv/pkg/state"
)

// The wire types of the /v1 API. Field names are snake_case JSON; every request type is decoded
// strictly (an unknown field is a 400 naming it), so that a misspelt option never passes silently.

// UpRequest is POST /v1/environments: `rfenv up` with all of its options, or, with URLs, `rfenv
// attach` of servers rfenv did not start.
type UpRequest struct {
	Image            string            `json:"image"`
	Name             string            `json:"name,omitempty"`
	Replicas         int               `json:"replicas,omitempty"`
	Hosts            []string          `json:"hosts,omitempty"`
	Env              map[string]string `json:"env,omitempty"`
	Secrets          map[string]string `json:"secrets,omitempty"`
	Type             string            `json:"type,omitempty"`
	Balancer         string            `json:"balancer,omitempty"`
	ForceRecreate    bool              `json:"force_recreate,omitempty"`
	ReadyTimeoutMs   int64             `json:"ready_timeout_ms,omitempty"`
	Memory           int64             `json:"memory,omitempty"` // bytes
	CPUs             float64           `json:"cpus,omitempty"`
	GPUs             string            `json:"gpus,omitempty"`
	Network          string            `json:"network,omitempty"`
	Volumes          []string          `json:"volumes,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	NoTransfer       bool              `json:"no_transfer,omitempty"`
	Pull             bool              `json:"pull,omitempty"`
	PullPolicy       string            `json:"pull_policy,omitempty"`
	MaxInflight      int               `json:"max_inflight,omitempty"`
	MaxSessions      int               `json:"max_sessions,omitempty"`
	SessionTTLMs     int64             `json:"session_ttl_ms,omitempty"`
	OverdueRestartMs int64             `json:"overdue_restart_ms,omitempty"`
	Transport        string            `json:"transport,omitempty"`
	// URLs attach running servers instead of starting containers (Image must then be empty).
	URLs  []string `json:"urls,omitempty"`
	Token string   `json:"token,omitempty"` // the attached servers' bearer token
	// Cleanup marks the environment as this server's own: it is taken down when the server exits
	// (SIGTERM, or --watch-stdin seeing EOF because the process that started it died).
	Cleanup bool `json:"cleanup,omitempty"`
}

// CallRequest is POST /v1/environments/{name}/calls.
type CallRequest struct {
	Method    string          `json:"method"`
	Args      []any           `json:"args,omitempty"`
	Kwargs    json.RawMessage `json:"kwargs,omitempty"`
	TimeoutMs int64           `json:"timeout_ms,omitempty"`
	Session   string          `json:"session,omitempty"`
}

// BuildRequest is POST /v1/builds.
type BuildRequest struct {
	Path      string            `json:"path"`
	Tag       string            `json:"tag"`
	Type      string            `json:"type,omitempty"`
	BaseImage string            `json:"base_image,omitempty"`
	BuildArgs map[string]string `json:"build_args,omitempty"`
	NoCache   bool              `json:"no_cache,omitempty"`
	Hosts     []string          `json:"hosts,omitempty"`
	// Quiet keeps BuildKit's progress off the server's stderr.
	Quiet bool `json:"quiet,omitempty"`
}

// BuildResult is one host's build in the answer to POST /v1/builds.
type BuildResult struct {
	Host       string `json:"host"`
	Image      string `json:"image"`
	ImageID    string `json:"image_id"`
	Type       string `json:"type"`
	Port       int    `json:"port"`
	BaseImage  string `json:"base_image,omitempty"`
	DurationMs int64  `json:"duration_ms"`
}

// EnvView is an environment as the API shows it: everything but the token, a credential.
type EnvView struct {
	Name      string         `json:"name"`
	Image     string         `json:"image,omitempty"`
	ImageID   string         `json:"image_id,omitempty"`
	Type      string         `json:"type"`
	Port      int            `json:"port,omitempty"`
	Balancer  string         `json:"balancer"`
	Hosts     []string       `json:"hosts,omitempty"`
	EnvKeys   []string       `json:"env_keys,omitempty"`
	Attached  bool           `json:"attached,omitempty"`
	CreatedAt time.Time      `json:"created_at,omitzero"`
	Replicas  int            `json:"replicas"`
	Instances []InstanceView `json:"instances"`
	// Owned is true for an environment this server takes down when it exits (up with cleanup).
	Owned bool `json:"owned,omitempty"`
}

// InstanceView is one replica of an EnvView.
type InstanceView struct {
	Index     int    `json:"index"`
	Host      string `json:"host,omitempty"`
	Container string `json:"container,omitempty"`
	ID        string `json:"container_id,omitempty"`
	Address   string `json:"address,omitempty"`
	Port      int    `json:"port,omitempty"`
	URL       string `json:"url,omitempty"`
}

// ErrorBody is every error answer: {"error": {...}}.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo says what failed. Kind is one of the Kind* constants (the CLI's exit codes by name);
// Type, Message and Traceback are the remote exception's for kind method_raised.
type ErrorInfo struct {
	Kind      string `json:"kind"`
	Type      string `json:"type,omitempty"`
	Message   string `json:"message"`
	Traceback string `json:"traceback,omitempty"`
	Field     string `json:"field,omitempty"` // the request field a usage error is about
}

func viewOf(e *state.Environment, owned bool) EnvView {
	v := EnvView{
		Name: e.Name, Image: e.Image, ImageID: e.ImageID, Type: e.Type, Port: e.Port, Balancer: e.Balancer,
		Hosts: e.Hosts, EnvKeys: e.EnvKeys, Attached: e.Attached, CreatedAt: e.CreatedAt,
		Replicas: len(e.Instances), Instances: []InstanceView{}, Owned: owned,
	}
	for _, in := range e.Instances {
		port := in.Port
		if port == 0 {
			port = e.Port
		}
		v.Instances = append(v.Instances, InstanceView{
			Index: in.Index, Host: in.Host, Container: in.ContainerName, ID: in.ContainerID, Address: in.Address, Port: port, URL: in.URL,
		})
	}
	return v
}
