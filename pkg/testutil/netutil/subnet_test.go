package netutil

import (
	"net/netip"
	"testing"
)

func TestFreeSubnet(t *testing.T) {
	within := netip.MustParsePrefix("10.200.0.0/16")
	used, err := UsedPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		p, err := FreeSubnet(within, 30)
		if err != nil {
			t.Fatal(err)
		}
		if p.Bits() != 30 || p.Masked() != p || !within.Contains(p.Addr()) {
			t.Fatalf("%s is not an aligned /30 inside %s", p, within)
		}
		for _, u := range used {
			if u.Overlaps(p) {
				t.Fatalf("%s overlaps %s, which is in use", p, u)
			}
		}
	}
	lo := netip.MustParsePrefix("127.0.0.0/24")
	if _, err := FreeSubnet(lo, 30); err == nil {
		t.Error("found a free subnet inside loopback, which is in use")
	}
}
