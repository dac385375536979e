package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
)

// Param is one parameter of a method.
type Param struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind"`
	Annotation *string `json:"annotation"`
	Default    *string `json:"default"`
	HasDefault bool    `json:"has_default"`
}

// Method is one callable method of an environment.
type Method struct {
	Name       string  `json:"name"`
	Signature  string  `json:"signature"`
	Doc        string  `json:"doc"`
	Async      bool    `json:"async"`
	Source     string  `json:"source"`
	Parameters []Param `json:"parameters"`
}

// Methods lists the environment's methods, asking the first replica that answers.
func (p *Pool) Methods(ctx context.Context) ([]Method, error) {
	var lastErr error
	for _, r := range p.orderForReads() {
		var ms []Method
		var err error
		if p.opts.Kind == KindHTTP {
			ms, err = p.openAPIMethods(ctx, r)
		} else {
			var reply struct {
				Methods []Method `json:"methods"`
			}
			err = p.getJSON(ctx, r, "/methods", &reply)
			ms = reply.Methods
		}
		if err == nil {
			return ms, nil
		}
		if ctx.Err() != nil {
			return nil, p.contextError(ctx, "methods", err)
		}
		lastErr = err
	}
	return nil, errs.Wrap(errs.Infra, fmt.Errorf("no replica of %s answered: %w", p.opts.Name, lastErr))
}

// orderForReads puts available replicas first.
func (p *Pool) orderForReads() []*replica {
	replicas := p.list()
	out := make([]*replica, 0, len(replicas))
	for _, r := range replicas {
		if r.available() {
			out = append(out, r)
		}
	}
	for _, r := range replicas {
		if !r.available() {
			out = append(out, r)
		}
	}
	return out
}

// openAPIMethods lists the POST routes of a user's FastAPI server as methods.
func (p *Pool) openAPIMethods(ctx context.Context, r *replica) ([]Method, error) {
	var doc struct {
		Paths map[string]map[string]struct {
			Summary     string `json:"summary"`
			Description string `json:"description"`
			RequestBody struct {
				Content map[string]struct {
					Schema json.RawMessage `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := p.getJSON(ctx, r, "/openapi.json", &doc); err != nil {
		return nil, err
	}
	var out []Method
	for path, ops := range doc.Paths {
		op, ok := ops["post"]
		if !ok {
			continue
		}
		m := Method{Name: strings.TrimPrefix(path, "/"), Doc: firstLine(op.Summary), Source: "http"}
		if m.Doc == "" {
			m.Doc = firstLine(op.Description)
		}
		if c, ok := op.RequestBody.Content["application/json"]; ok {
			m.Parameters = schemaParams(c.Schema, doc.Components.Schemas)
		}
		m.Signature = signatureOf(m.Parameters)
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func schemaParams(raw json.RawMessage, defs map[string]json.RawMessage) []Param {
	var s struct {
		Ref        string                     `json:"$ref"`
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	if s.Ref != "" {
		name := s.Ref[strings.LastIndex(s.Ref, "/")+1:]
		if def, ok := defs[name]; ok {
			return schemaParams(def, defs)
		}
		return nil
	}
	required := map[string]bool{}
	for _, n := range s.Required {
		required[n] = true
	}
	var out []Param
	for name, prop := range s.Properties {
		var ps struct {
			Type    string          `json:"type"`
			Default json.RawMessage `json:"default"`
		}
		json.Unmarshal(prop, &ps)
		p := Param{Name: name, Kind: "KEYWORD_ONLY", HasDefault: !required[name]}
		if ps.Type != "" {
			t := ps.Type
			p.Annotation = &t
		}
		if len(ps.Default) > 0 {
			d := string(ps.Default)
			p.Default = &d
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].HasDefault != out[j].HasDefault {
			return !out[i].HasDefault
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func signatureOf(ps []Param) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		s := p.Name
		if p.Annotation != nil {
			s += ": " + *p.Annotation
		}
		if p.Default != nil {
			s += " = " + *p.Default
		}
		parts = append(parts, s)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
