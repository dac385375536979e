package state

import (
	"context"
	"encoding/json"
	"os"
	"testing"
)

// TestMigrate1to2: a schema-1 file (as rfenv of schema 1 wrote it) loads with each environment's
// backend recorded and every other field kept; the next write stores schema 2.
func TestMigrate1to2(t *testing.T) {
	v1 := `{"schema":1,"environments":{
	 "calc":{"name":"calc","image":"calc:1","token":"t1","hosts":["localhost","ssh://u@h:22"],"port":8000,
	   "instances":[{"index":0,"host":"localhost","container_id":"abc","address":"172.17.0.2"}]},
	 "pods":{"name":"pods","hosts":["k8s://ctx/ns"],"instances":[{"index":0,"host":"k8s://ctx/ns","container_name":"pods-x"}]},
	 "shared":{"name":"shared","attached":true,"hosts":["attached"],"instances":[{"index":0,"host":"attached","url":"http://10.0.0.5:8000"}]},
	 "lost":{"name":"lost","instances":[{"index":0,"host":"k8s://c/n"}]}
	}}`
	s := openTemp(t)
	if err := os.MkdirAll(s.Dir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"calc": BackendDocker, "pods": BackendKube, "shared": BackendAttached, "lost": BackendKube}
	for name, b := range want {
		if got := f.Environments[name].Backend; got != b {
			t.Errorf("%s: backend %q, want %q", name, got, b)
		}
	}
	c := f.Environments["calc"]
	if f.Schema != SchemaVersion || c.Image != "calc:1" || c.Token != "t1" || c.Port != 8000 || len(c.Hosts) != 2 ||
		len(c.Instances) != 1 || c.Instances[0].ContainerID != "abc" || c.Instances[0].Address != "172.17.0.2" {
		t.Errorf("fields lost in migration: %+v", c)
	}
	if !f.Environments["shared"].Attached || f.Environments["shared"].Instances[0].URL != "http://10.0.0.5:8000" {
		t.Errorf("attached entry changed: %+v", f.Environments["shared"])
	}
	// A write stores the migrated file.
	if err := s.Update(context.Background(), func(*File) error { return nil }); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	var onDisk struct {
		Schema       int `json:"schema"`
		Environments map[string]struct {
			Backend string `json:"backend"`
		} `json:"environments"`
	}
	if err := json.Unmarshal(raw, &onDisk); err != nil || onDisk.Schema != 2 || onDisk.Environments["pods"].Backend != BackendKube {
		t.Errorf("written file: schema %d, %+v (%v)", onDisk.Schema, onDisk.Environments, err)
	}
}
