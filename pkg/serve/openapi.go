package serve

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/rfenv/rfenv/pkg/pool"
	"github.com/rfenv/rfenv/pkg/rfenv"
)

// APIVersion is the version of the /v1 schema (its info.version).
const APIVersion = "1.0.0"

// operation describes one route for the schema. The table below must list exactly the routes the
// server registers (TestOpenAPIMatchesRoutes).
type operation struct {
	method, path, summary string
	request               any // body type (nil: none)
	response              any // 200 body type (nil: text or none)
	query                 []string
	text                  bool // the 200 answer is text/plain
}

func operations() []operation {
	return []operation{
		{method: "GET", path: "/v1/openapi.json", summary: "This schema"},
		{method: "GET", path: "/v1/health", summary: "The server answers", response: struct {
			Status string `json:"status"`
		}{}},
		{method: "POST", path: "/v1/builds", summary: "Build an environment directory into an image (rfenv build)", request: BuildRequest{}, response: struct {
			Builds []BuildResult `json:"builds"`
		}{}},
		{method: "POST", path: "/v1/environments", summary: "Bring up (or attach) an environment (rfenv up / attach)", request: UpRequest{}, response: EnvView{}},
		{method: "GET", path: "/v1/environments", summary: "List environments (rfenv ls)", response: struct {
			Environments []EnvView `json:"environments"`
		}{}},
		{method: "GET", path: "/v1/environments/{name}", summary: "One environment", response: EnvView{}},
		{method: "DELETE", path: "/v1/environments/{name}", summary: "Take an environment down (rfenv down)", response: rfenv.DownResult{}},
		{method: "POST", path: "/v1/environments/{name}/calls", summary: "Call a method (rfenv call)", request: CallRequest{}, response: struct {
			Result any `json:"result"`
		}{}},
		{method: "GET", path: "/v1/environments/{name}/methods", summary: "The environment's methods (rfenv methods)", response: struct {
			Methods []pool.Method `json:"methods"`
		}{}},
		{method: "GET", path: "/v1/environments/{name}/stats", summary: "Each replica's health and counters (rfenv stats)", response: pool.Stats{}},
		{method: "POST", path: "/v1/environments/{name}/sessions", summary: "Open a session: later calls naming its key run on its replica", response: SessionView{}},
		{method: "GET", path: "/v1/environments/{name}/sessions", summary: "The environment's open sessions", response: struct {
			Sessions []SessionView `json:"sessions"`
		}{}},
		{method: "DELETE", path: "/v1/environments/{name}/sessions/{key}", summary: "Close a session", response: struct {
			Key    string `json:"key"`
			Closed bool   `json:"closed"`
		}{}},
		{method: "GET", path: "/v1/environments/{name}/logs", summary: "The containers' output (rfenv logs)", query: []string{"replica", "tail", "follow", "timestamps"}, text: true},
	}
}

var (
	specOnce sync.Once
	specJSON []byte
)

// OpenAPI is the /v1 schema (OpenAPI 3.0), its body schemas generated from the Go wire types.
func OpenAPI() []byte {
	specOnce.Do(func() {
		paths := map[string]map[string]any{}
		for _, op := range operations() {
			o := map[string]any{"summary": op.summary, "responses": responses(op)}
			var params []any
			for _, p := range []string{"name", "key"} {
				if strings.Contains(op.path, "{"+p+"}") {
					params = append(params, map[string]any{"name": p, "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
				}
			}
			for _, q := range op.query {
				params = append(params, map[string]any{"name": q, "in": "query", "schema": map[string]any{"type": "string"}})
			}
			if params != nil {
				o["parameters"] = params
			}
			if op.request != nil {
				o["requestBody"] = map[string]any{"required": true, "content": map[string]any{
					"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(op.request))}}}
			}
			if paths[op.path] == nil {
				paths[op.path] = map[string]any{}
			}
			paths[op.path][strings.ToLower(op.method)] = o
		}
		spec := map[string]any{
			"openapi": "3.0.3",
			"info": map[string]any{"title": "rfenv serve", "version": APIVersion,
				"description": "The rfenv library over HTTP/JSON. Errors are {\"error\": {kind, type, message, traceback, field}} with kind one of: " + strings.Join(Kinds(), ", ") + " (the CLI's exit codes by name)."},
			"paths": paths,
			"components": map[string]any{
				"schemas":         map[string]any{"Error": schemaOf(reflect.TypeOf(ErrorBody{}))},
				"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "TCP listeners only; the token is in the file rfenv serve names at start"}},
			},
		}
		specJSON, _ = json.MarshalIndent(spec, "", "  ")
	})
	return specJSON
}

func responses(op operation) map[string]any {
	ok := map[string]any{"description": "OK"}
	switch {
	case op.text:
		ok["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
	case op.response != nil:
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(op.response))}}
	case op.path == "/v1/openapi.json":
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
	}
	errRef := map[string]any{"description": "An error; see its kind", "content": map[string]any{
		"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}
	return map[string]any{"200": ok, "default": errRef}
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf is a JSON schema of a Go type as encoding/json writes it.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if t == reflect.TypeOf(json.RawMessage{}) {
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		addFields(t, props)
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}

func addFields(t reflect.Type, props map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if f.Anonymous && tag == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(ft, props)
			}
			continue
		}
		if !f.IsExported() || tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		props[name] = schemaOf(f.Type)
	}
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	writeBody(w, http.StatusOK, OpenAPI())
}
