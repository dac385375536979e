// Package netutil finds room on this machine's network for the test hosts that harnesses create
// (network namespaces, a second Docker daemon's bridge).
package netutil

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os/exec"
	"strings"
)

// UsedPrefixes lists the IPv4 prefixes that this machine's addresses and routes (every table) cover,
// including the unreachable routes other harnesses leave while a link is cut.
func UsedPrefixes() ([]netip.Prefix, error) {
	var used []netip.Prefix
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			used = append(used, p.Masked())
		}
	}
	if out, err := exec.Command("ip", "-4", "route", "show", "table", "all").Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Bits() >= 8 {
				used = append(used, p.Masked())
			} else if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
				used = append(used, netip.PrefixFrom(a, 32))
			}
		}
	}
	return used, nil
}

// FreeSubnet picks, at random, an aligned /bits subnet inside within that overlaps nothing in use.
func FreeSubnet(within netip.Prefix, bits int) (netip.Prefix, error) {
	used, err := UsedPrefixes()
	if err != nil {
		return netip.Prefix{}, err
	}
	slots := int64(1) << (bits - within.Bits())
	base := within.Masked().Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for range 1000 {
		n, err := rand.Int(rand.Reader, big.NewInt(slots))
		if err != nil {
			return netip.Prefix{}, err
		}
		v := start + uint32(n.Int64())<<(32-bits)
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits)
		clash := false
		for _, u := range used {
			if u.Overlaps(p) {
				clash = true
				break
			}
		}
		if !clash {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d in %s", bits, within)
}
