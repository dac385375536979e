// Command floorsrv is the benchmark's floor for an HTTP call into a container: a minimal Go server
// that does the shim's work for the trivial method (check the bearer token, decode the
// {"method","args","kwargs"} body, answer {"result": kwargs["x"]}) with Go's net/http. `go run ./bench`
// builds it statically and imports it as a one-file image.
package main

import (
	"encoding/json"
	"net/http"
	"os"
)

func main() {
	auth := "Bearer " + os.Getenv("RFENV_TOKEN")
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok","overdue":0}`))
	})
	http.HandleFunc("/call", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != auth {
			http.Error(w, `{"error":{"type":"Unauthorized","message":"bad token"}}`, http.StatusUnauthorized)
			return
		}
		var req struct {
			Method string                     `json:"method"`
			Args   []json.RawMessage          `json:"args"`
			Kwargs map[string]json.RawMessage `json:"kwargs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Method != "echo" {
			http.Error(w, `{"error":{"type":"BadRequest","message":"echo only"}}`, http.StatusBadRequest)
			return
		}
		res := req.Kwargs["x"]
		if res == nil {
			res = json.RawMessage("null")
		}
		out, _ := json.Marshal(struct {
			Result json.RawMessage `json:"result"`
		}{res})
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
	port := os.Getenv("RFENV_PORT")
	if port == "" {
		port = "8000"
	}
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
