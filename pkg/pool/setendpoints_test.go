package pool

import "testing"

func TestSetEndpointsKeepsReplicas(t *testing.T) {
	p, err := New([]Endpoint{{Index: 0, Host: "h", Address: "127.0.0.1:1"}, {Index: 1, Host: "h", Address: "127.0.0.2:1"}}, Options{Name: "e"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	kept := p.list()[1]
	kept.requests.Add(7)
	wake := p.health.wait()
	p.SetEndpoints([]Endpoint{{Index: 1, Host: "h", Address: "127.0.0.2:1"}, {Index: 0, Host: "h", Address: "127.0.0.3:1"}})
	got := p.list()
	if len(got) != 2 || got[0] != kept || got[0].requests.Load() != 7 {
		t.Fatalf("the unchanged replica was not kept with its counters: %+v", got)
	}
	if got[1].ep.Address != "127.0.0.3:1" {
		t.Errorf("the new replica: %+v", got[1].ep)
	}
	select {
	case <-wake:
	default:
		t.Error("adding a replica did not wake calls waiting for one")
	}
}
