package state

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Backends an entry can record (Environment.Backend); pkg/backend names its kinds after these.
const (
	BackendDocker   = "docker"
	BackendKube     = "kubernetes"
	BackendAttached = "attached"
)

// migrations[v] rewrites the raw JSON of a schema-v file into schema v+1.
var migrations = map[int]func(raw []byte) ([]byte, error){
	1: migrate1to2,
}

// migrate1to2 records each environment's backend, which schema 1 left to be guessed from its hosts
// and the attached flag, in the way rfenv of schema 1 guessed it. Every other field is kept as is.
func migrate1to2(raw []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	var envs map[string]map[string]json.RawMessage
	if e, ok := top["environments"]; ok {
		if err := json.Unmarshal(e, &envs); err != nil {
			return nil, err
		}
	}
	for name, e := range envs {
		if e == nil {
			continue // a null entry: decode reports it
		}
		var v1 struct {
			Attached  bool     `json:"attached"`
			Hosts     []string `json:"hosts"`
			Instances []struct {
				Host string `json:"host"`
			} `json:"instances"`
		}
		b, _ := json.Marshal(e)
		if err := json.Unmarshal(b, &v1); err != nil {
			return nil, fmt.Errorf("environment %q: %w", name, err)
		}
		kind := BackendDocker
		hosts := v1.Hosts
		for _, in := range v1.Instances {
			hosts = append(hosts, in.Host)
		}
		for _, h := range hosts {
			if strings.HasPrefix(h, "k8s://") {
				kind = BackendKube
			}
		}
		if v1.Attached {
			kind = BackendAttached
		}
		e["backend"], _ = json.Marshal(kind)
	}
	if envs != nil {
		top["environments"], _ = json.Marshal(envs)
	}
	top["schema"] = json.RawMessage("2")
	return json.Marshal(top)
}
