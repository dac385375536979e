package rfenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rfenv/rfenv/pkg/state"
)

// ReloadError is a reload the shim refused: env.py failed to import or its Actor to construct.
// Until the next good reload the replica answers calls with this same error.
type ReloadError struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback,omitempty"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
}

func (e *ReloadError) Error() string {
	where := ""
	if e.File != "" && !strings.Contains(e.Message, e.File) {
		where = e.File
		if e.Line > 0 {
			where += ":" + strconv.Itoa(e.Line)
		}
		where += ": "
	}
	return where + e.Type + ": " + e.Message
}

// localPaths rewrites the container's code directory in the error to the directory on this
// machine that is mounted there, so that an editor can jump to the file and line.
func (e *ReloadError) localPaths(codeDir, dir string) {
	from, to := strings.TrimSuffix(codeDir, "/")+"/", strings.TrimSuffix(dir, "/")+"/"
	e.File = strings.ReplaceAll(e.File, from, to)
	e.Message = strings.ReplaceAll(e.Message, from, to)
	e.Traceback = strings.ReplaceAll(e.Traceback, from, to)
}

// ReplicaReload is one replica's answer to a reload.
type ReplicaReload struct {
	Replica int
	Methods []string // the methods env.py now offers (on success)
	Err     error    // a *ReloadError when the new code failed; else the request failed
	Took    time.Duration
}

// reloadClient posts /reload to the replicas of a local environment.
type reloadClient struct {
	http  *http.Client
	token string
}

func newReloadClient(token string) *reloadClient {
	return &reloadClient{token: token, http: &http.Client{Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext, MaxIdleConnsPerHost: 4,
	}}}
}

// reload asks one replica to re-import env.py.
func (r *reloadClient) reload(ctx context.Context, rec *state.Environment, in state.Instance) ReplicaReload {
	t0 := time.Now()
	out := ReplicaReload{Replica: in.Index}
	port := in.Port
	if port == 0 {
		port = rec.Port
	}
	addr := net.JoinHostPort(in.Address, strconv.Itoa(port))
	if in.URL != "" {
		addr = strings.TrimPrefix(in.URL, "http://")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/reload", bytes.NewReader([]byte("{}")))
	if err != nil {
		out.Err = err
		return out
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		out.Err, out.Took = fmt.Errorf("replica %d: %w", in.Index, err), time.Since(t0)
		return out
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	out.Took = time.Since(t0)
	switch resp.StatusCode {
	case http.StatusOK:
		var ok struct {
			Methods []string `json:"methods"`
		}
		_ = json.Unmarshal(body, &ok)
		out.Methods = ok.Methods
	case http.StatusNotFound:
		out.Err = fmt.Errorf("replica %d does not offer /reload: its image has an older rfenv shim; rebuild it with this rfenv", in.Index)
	default:
		var fail struct {
			Error *ReloadError `json:"error"`
		}
		if json.Unmarshal(body, &fail) == nil && fail.Error != nil {
			out.Err = fail.Error
		} else {
			out.Err = fmt.Errorf("replica %d answered /reload with %s: %.300s", in.Index, resp.Status, body)
		}
	}
	return out
}
