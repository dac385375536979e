package kube

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestDeploymentKeepsValuesInTheSecret(t *testing.T) {
	s := Spec{Env: "affine", StateID: "abc123", Image: "reg:5000/affine:v1", Replicas: 3, Port: 8000,
		Vars: map[string]string{"RFENV_TOKEN": "tok-value", "API_KEY": "key-value"}, ConfigHash: strings.Repeat("a", 64),
		NanoCPUs: 1.5e9, Memory: 512 << 20, GPUs: 2, Labels: map[string]string{"team": "x"}}
	d := s.deployment()
	blob, _ := json.Marshal(d)
	for _, v := range []string{"tok-value", "key-value"} {
		if strings.Contains(string(blob), v) {
			t.Errorf("the deployment holds the value %q", v)
		}
	}
	sec := s.secret()
	if string(sec.Data["API_KEY"]) != "key-value" || string(sec.Data["RFENV_TOKEN"]) != "tok-value" {
		t.Errorf("secret data: %v", sec.Data)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("pull policy %s", c.ImagePullPolicy)
	}
	if c.EnvFrom[0].SecretRef.Name != "affine-rfenv-env" {
		t.Errorf("envFrom: %+v", c.EnvFrom)
	}
	if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/health" {
		t.Errorf("probe: %+v", c.ReadinessProbe)
	}
	if got := c.Resources.Limits.Cpu().MilliValue(); got != 1500 {
		t.Errorf("cpu limit %dm", got)
	}
	if got := c.Resources.Requests.Memory().Value(); got != 512<<20 {
		t.Errorf("memory request %d", got)
	}
	if got := c.Resources.Limits["nvidia.com/gpu"]; got.Value() != 2 {
		t.Errorf("gpu limit %v", got.String())
	}
	if d.Spec.Template.Labels["team"] != "x" || d.Spec.Template.Labels["rfenv.env"] != "affine" || d.Spec.Selector.MatchLabels["rfenv.state"] != "abc123" {
		t.Errorf("labels: %v / %v", d.Spec.Template.Labels, d.Spec.Selector.MatchLabels)
	}
	if *d.Spec.Template.Spec.AutomountServiceAccountToken {
		t.Error("the service account token is mounted")
	}
	s.HTTP = true
	if p := s.deployment().Spec.Template.Spec.Containers[0].ReadinessProbe; p.TCPSocket == nil || p.HTTPGet != nil {
		t.Errorf("http environments need a TCP probe: %+v", p)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"affine", "a-1", "x"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"Affine", "a_b", "a.b", "-a", "a-", strings.Repeat("a", 51)} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestPodsReapOrphans (issue 11, defect 7): pods share their process namespace, so the pause process
// is PID 1 and reaps orphaned processes (Docker replicas run docker-init for the same reason).
func TestPodsReapOrphans(t *testing.T) {
	s := Spec{Env: "affine", StateID: "abc123", Image: "affine:1", Replicas: 1, Port: 8000}
	d := s.deployment()
	if sp := d.Spec.Template.Spec.ShareProcessNamespace; sp == nil || !*sp {
		t.Errorf("pod template: ShareProcessNamespace = %v, want true", sp)
	}
}
