package cmd

import (
	"time"

	"github.com/rfenv/rfenv/pkg/state"
)

// envView is an environment as commands print it: everything but the token, which is a credential.
type envView struct {
	Name      string         `json:"name"`
	Image     string         `json:"image,omitempty"`
	ImageID   string         `json:"image_id,omitempty"`
	Type      string         `json:"type"`
	Port      int            `json:"port,omitempty"`
	Balancer  string         `json:"balancer"`
	Transport string         `json:"transport,omitempty"` // Docker hosts: direct or published
	Hosts     []string       `json:"hosts,omitempty"`
	EnvKeys   []string       `json:"env_keys,omitempty"`
	Attached  bool           `json:"attached,omitempty"`
	CreatedAt time.Time      `json:"created_at,omitzero"`
	Replicas  int            `json:"replicas"`
	Healthy   *int           `json:"healthy,omitempty"`
	Sessions  *int           `json:"sessions,omitempty"` // live sessions, when ls could count them
	Instances []instanceView `json:"instances"`
}

type instanceView struct {
	Index     int    `json:"index"`
	Host      string `json:"host,omitempty"`
	Container string `json:"container,omitempty"`
	ID        string `json:"container_id,omitempty"`
	Address   string `json:"address,omitempty"`
	Port      int    `json:"port,omitempty"`
	URL       string `json:"url,omitempty"`
	Healthy   *bool  `json:"healthy,omitempty"`
	Status    string `json:"status,omitempty"`
}

func viewOf(e *state.Environment) envView {
	v := envView{
		Name: e.Name, Image: e.Image, ImageID: e.ImageID, Type: e.Type, Port: e.Port, Balancer: e.Balancer,
		Transport: e.Transport, Hosts: e.Hosts, EnvKeys: e.EnvKeys, Attached: e.Attached, CreatedAt: e.CreatedAt,
		Replicas: len(e.Instances), Instances: []instanceView{},
	}
	for _, in := range e.Instances {
		port := in.Port
		if port == 0 {
			port = e.Port
		}
		v.Instances = append(v.Instances, instanceView{
			Index: in.Index, Host: in.Host, Container: in.ContainerName, ID: in.ContainerID,
			Address: in.Address, Port: port, URL: in.URL,
		})
	}
	return v
}
