package backend

import (
	"strconv"
	"strings"

	"github.com/moby/moby/client"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/protocol"
)

func ImageInfoFrom(res client.ImageInspectResult, ids map[string]string) ImageInfo {
	info := ImageInfo{ID: res.ID, Kind: pool.KindFunction, Port: protocol.DefaultPort, IDs: ids}
	if res.Config == nil {
		return info
	}
	labels := res.Config.Labels
	if t := labels[protocol.LabelType]; t == pool.KindHTTP || t == pool.KindFunction {
		info.Kind = t
	}
	if p, err := strconv.Atoi(labels[protocol.LabelPort]); err == nil && p > 0 && p < 65536 {
		info.Port = p
	} else if len(res.Config.ExposedPorts) == 1 {
		// A user's http image without rfenv's label: its single EXPOSEd port is the server's.
		for p := range res.Config.ExposedPorts {
			if n, err := strconv.Atoi(strings.Split(p, "/")[0]); err == nil {
				info.Port = n
			}
		}
	}
	return info
}
