package host

import "testing"

func TestParseK8s(t *testing.T) {
	for _, c := range []struct{ in, raw, ctx, ns string }{
		{"k8s://", "k8s://", "", ""},
		{"k8s://prod", "k8s://prod", "prod", ""},
		{"k8s://prod/evals", "k8s://prod/evals", "prod", "evals"},
		{"k8s:///evals", "k8s:///evals", "", "evals"},
		{"k8s://arn:aws:eks:us-east-1:1:cluster/x/team-a", "k8s://arn:aws:eks:us-east-1:1:cluster/x/team-a", "arn:aws:eks:us-east-1:1:cluster/x", "team-a"},
	} {
		sp, err := Parse(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if sp.Kind != K8s || sp.Raw != c.raw || sp.Context != c.ctx || sp.Namespace != c.ns {
			t.Errorf("%s: got %+v", c.in, sp)
		}
		again, err := Parse(sp.Raw)
		if err != nil || again != sp {
			t.Errorf("%s: the canonical form does not parse back: %+v %v", c.in, again, err)
		}
	}
	for _, bad := range []string{"k8s://ctx/Bad_NS", "k8s://ctx/ns?x=1", "k8s://ctx/-ns"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
