package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// Kind is how an environment is served.
type Kind string

const (
	// KindFunction: rfenv injects its shim, which serves env.py's Actor class or public functions.
	KindFunction Kind = protocol.KindFunction
	// KindHTTP: env.py defines a module-level FastAPI or Starlette `app`, served by uvicorn as is.
	KindHTTP Kind = protocol.KindHTTP
)

// ParseKind checks a kind given by a user (the --type flag). The empty string means "detect".
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case "", KindFunction, KindHTTP:
		return k, nil
	}
	return "", fmt.Errorf("unknown environment type %q: use %q or %q (or leave it empty to detect it from env.py)", s, KindFunction, KindHTTP)
}

// ErrNoEnvPy is matched (errors.Is) by the error Detect and Build return when the directory has no
// env.py.
var ErrNoEnvPy = errors.New("no env.py in the environment directory")

// NoEnvPyError says which directory lacks env.py. It matches ErrNoEnvPy.
type NoEnvPyError struct {
	Dir     string
	Missing bool // the directory itself does not exist
}

func (e *NoEnvPyError) Error() string {
	if e.Missing {
		return fmt.Sprintf("no env.py in %s: the directory does not exist (run \"rfenv init %s\" to create one)", e.Dir, e.Dir)
	}
	return fmt.Sprintf("no env.py in %s: an environment directory needs env.py (run \"rfenv init %s\" to create one)", e.Dir, e.Dir)
}

// Is makes errors.Is(err, ErrNoEnvPy) and errors.Is(err, errs.Usage) true.
func (e *NoEnvPyError) Is(target error) bool { return target == ErrNoEnvPy || target == errs.Usage }

// Detect reads DIR/env.py and tells its kind: KindHTTP when it defines, at module scope, an `app`
// built by calling FastAPI or Starlette (resolved through the file's imports), else KindFunction.
// The file is scanned, never executed.
func Detect(dir string) (Kind, error) {
	src, err := readEnvPy(dir)
	if err != nil {
		return "", err
	}
	return DetectSource(src), nil
}

func readEnvPy(dir string) (string, error) {
	p := filepath.Join(dir, "env.py")
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
			return "", &NoEnvPyError{Dir: dir, Missing: true}
		}
		return "", &NoEnvPyError{Dir: dir}
	}
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file: env.py must be a Python source file", p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", p, err)
	}
	return string(b), nil
}

// DetectSource tells the kind of an env.py from its source text (see Detect).
func DetectSource(src string) Kind {
	if findHTTPApp(src) {
		return KindHTTP
	}
	return KindFunction
}

// appClasses are the callables whose result makes `app` an ASGI application rfenv serves with
// uvicorn. Keys are fully qualified names as reached through imports.
var appClasses = map[string]bool{
	"fastapi.FastAPI":                  true,
	"fastapi.applications.FastAPI":     true,
	"starlette.applications.Starlette": true,
}

type block struct {
	indent int
	def    bool // a def or class body: not module scope
}

// pyModule follows, statement by statement, which names at module scope refer to FastAPI or
// Starlette (or to modules on the way to them).
type pyModule struct {
	// names maps a module-level name to the dotted path it was imported as ("fastapi",
	// "fastapi.FastAPI"). A name rebound to something else is deleted.
	names map[string]string
	found bool
}

// findHTTPApp reports whether src assigns a FastAPI/Starlette instance to `app` at module scope.
//
// Module scope means column 0, or inside an if/try/with/for/while/match block at module scope (so
// `try: from fastapi import FastAPI` counts), but never inside a def or class body. Statements are
// processed in order, so an import after the assignment, or a name shadowed before it, does not
// count. `app = FastAPI()` inside strings, comments or function bodies never counts.
func findHTTPApp(src string) bool {
	src = strings.TrimPrefix(src, "\ufeff")
	m := &pyModule{names: map[string]string{}}
	var stack []block
	for _, ll := range (&lexer{src: src}).lines() {
		for len(stack) > 0 && ll.indent <= stack[len(stack)-1].indent {
			stack = stack[:len(stack)-1]
		}
		moduleScope := true
		for _, b := range stack {
			if b.def {
				moduleScope = false
				break
			}
		}
		hdr, body, isDef, ok := splitCompound(ll.toks)
		if !ok {
			if moduleScope {
				for _, st := range splitTop(ll.toks, ";") {
					m.simple(st)
				}
			}
			continue
		}
		if moduleScope && isDef {
			m.defOrClass(hdr)
		}
		if len(body) == 0 {
			stack = append(stack, block{indent: ll.indent, def: isDef})
			continue
		}
		// A one-line compound statement (`if x: y = 1`): its body shares the header's scope,
		// unless the header is a def or class.
		if moduleScope && !isDef {
			for _, st := range splitTop(body, ";") {
				m.simple(st)
			}
		}
	}
	return m.found
}

var compoundKeywords = map[string]bool{
	"if": true, "elif": true, "else": true, "try": true, "except": true, "finally": true,
	"with": true, "for": true, "while": true, "def": true, "class": true, "async": true,
}

// splitCompound recognises a compound statement's header: it returns the tokens up to the colon that
// ends it, the tokens after the colon (a one-line body, else empty), and whether it opens a def or
// class body.
func splitCompound(toks []token) (hdr, body []token, isDef, ok bool) {
	if len(toks) == 0 || toks[0].kind != tokName {
		return nil, nil, false, false
	}
	kw := toks[0].text
	switch {
	case compoundKeywords[kw]:
		if kw == "async" && (len(toks) < 2 || toks[1].kind != tokName || (toks[1].text != "def" && toks[1].text != "with" && toks[1].text != "for")) {
			return nil, nil, false, false
		}
	case kw == "match" || kw == "case":
		// Soft keywords: `match = 1`, `match.x()` or `match: int = 1` are ordinary statements.
		if len(toks) < 3 || (toks[1].kind == tokOp && toks[1].text != "(" && toks[1].text != "[" && toks[1].text != "{" && toks[1].text != "-" && toks[1].text != "*") {
			return nil, nil, false, false
		}
	default:
		return nil, nil, false, false
	}
	depth := 0
	lambdas := 0
	for i, t := range toks {
		if t.kind == tokName && t.text == "lambda" && depth == 0 {
			lambdas++
			continue
		}
		if t.kind != tokOp {
			continue
		}
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		case ":":
			if depth != 0 {
				continue
			}
			if lambdas > 0 {
				lambdas--
				continue
			}
			isDef = kw == "def" || kw == "class" || (kw == "async" && toks[1].text == "def")
			return toks[:i], toks[i+1:], isDef, true
		}
	}
	return nil, nil, false, false
}

// splitTop splits tokens on an operator at bracket depth 0.
func splitTop(toks []token, sep string) [][]token {
	var out [][]token
	depth, start := 0, 0
	for i, t := range toks {
		if t.kind != tokOp {
			continue
		}
		switch t.text {
		case "(", "[", "{":
			depth++
		case ")", "]", "}":
			depth--
		case sep:
			if depth == 0 {
				out = append(out, toks[start:i])
				start = i + 1
			}
		}
	}
	return append(out, toks[start:])
}

// dotted returns the dotted name the tokens spell exactly (`a.b.c`), or "".
func dotted(toks []token) string {
	if len(toks) == 0 || len(toks)%2 == 0 {
		return ""
	}
	var sb strings.Builder
	for i, t := range toks {
		if i%2 == 0 {
			if t.kind != tokName {
				return ""
			}
			sb.WriteString(t.text)
		} else {
			if t.kind != tokOp || t.text != "." {
				return ""
			}
			sb.WriteByte('.')
		}
	}
	return sb.String()
}

// resolve maps a dotted name used in the module to the path it refers to through the imports, or "".
func (m *pyModule) resolve(name string) string {
	first, rest, _ := strings.Cut(name, ".")
	p, ok := m.names[first]
	if !ok {
		return ""
	}
	if rest != "" {
		p += "." + rest
	}
	return p
}

// bind records what a module-level name now refers to ("" = something rfenv does not track).
func (m *pyModule) bind(name, path string) {
	if path == "" {
		delete(m.names, name)
		return
	}
	m.names[name] = path
}

func (m *pyModule) defOrClass(hdr []token) {
	i := 1
	if hdr[0].text == "async" {
		i = 2
	}
	if i >= len(hdr) || hdr[i].kind != tokName {
		return
	}
	name := hdr[i].text
	path := ""
	// class MyApp(FastAPI): instances of MyApp are FastAPI applications too.
	if hdr[i-1].text == "class" && i+1 < len(hdr) && hdr[i+1].text == "(" && hdr[len(hdr)-1].text == ")" {
		for _, base := range splitTop(hdr[i+2:len(hdr)-1], ",") {
			if p := m.resolve(dotted(base)); appClasses[p] {
				path = p
			}
		}
	}
	m.bind(name, path)
}

// simple handles one simple statement at module scope.
func (m *pyModule) simple(st []token) {
	if len(st) == 0 {
		return
	}
	if st[0].kind == tokName {
		switch st[0].text {
		case "import":
			m.importStmt(st[1:])
			return
		case "from":
			m.fromStmt(st[1:])
			return
		}
	}
	// Annotated assignment: NAME ':' annotation ['=' value].
	if len(st) >= 2 && st[0].kind == tokName && st[1].kind == tokOp && st[1].text == ":" {
		for i := 2; i < len(st); i++ {
			if st[i].kind == tokOp && st[i].text == "=" {
				parts := splitTop(st[2:], "=")
				if len(parts) == 2 {
					m.assign([][]token{st[:1]}, parts[1])
				}
				return
			}
		}
		return
	}
	parts := splitTop(st, "=")
	if len(parts) < 2 {
		return
	}
	m.assign(parts[:len(parts)-1], parts[len(parts)-1])
}

// assign handles `t1 = t2 = ... = value`.
func (m *pyModule) assign(targets [][]token, value []token) {
	isApp := false
	if call := m.callee(value); call != "" && appClasses[m.resolve(call)] {
		isApp = true
	}
	// `App = fastapi.FastAPI` makes App an alias.
	alias := m.resolve(dotted(value))
	for _, t := range targets {
		if len(t) != 1 || t[0].kind != tokName {
			continue // tuple targets, attributes and subscripts bind nothing rfenv tracks
		}
		if t[0].text == "app" && isApp {
			m.found = true
		}
		m.bind(t[0].text, alias)
	}
}

// callee returns the dotted name called when value is exactly `a.b.c(...)`, else "".
func (m *pyModule) callee(value []token) string {
	for i, t := range value {
		if t.kind == tokOp && t.text == "(" {
			name := dotted(value[:i])
			if name == "" {
				return ""
			}
			depth := 0
			for j := i; j < len(value); j++ {
				if value[j].kind != tokOp {
					continue
				}
				switch value[j].text {
				case "(", "[", "{":
					depth++
				case ")", "]", "}":
					depth--
					if depth == 0 {
						if j == len(value)-1 {
							return name
						}
						return ""
					}
				}
			}
			return ""
		}
	}
	return ""
}

// importStmt handles `import a.b [as c], d`.
func (m *pyModule) importStmt(rest []token) {
	for _, item := range splitTop(rest, ",") {
		name, as := splitAs(item)
		mod := dotted(name)
		if mod == "" {
			continue
		}
		if as != "" {
			m.bind(as, mod)
		} else {
			first, _, _ := strings.Cut(mod, ".")
			m.bind(first, first)
		}
	}
}

// fromStmt handles `from mod import a [as b], (c, d)` and `from mod import *`.
func (m *pyModule) fromStmt(rest []token) {
	idx := -1
	for i, t := range rest {
		if t.kind == tokName && t.text == "import" {
			idx = i
			break
		}
	}
	if idx < 0 {
		return
	}
	mod := dotted(rest[:idx]) // "" for relative imports: their names are then untracked
	names := rest[idx+1:]
	if len(names) > 0 && names[0].text == "(" && names[len(names)-1].text == ")" {
		names = names[1 : len(names)-1]
	}
	if len(names) == 1 && names[0].kind == tokOp && names[0].text == "*" {
		for cls := range appClasses {
			if pkg, name, _ := cutLast(cls); pkg == mod && mod != "" {
				m.bind(name, cls)
			}
		}
		return
	}
	for _, item := range splitTop(names, ",") {
		name, as := splitAs(item)
		if len(name) != 1 || name[0].kind != tokName {
			continue
		}
		target := as
		if target == "" {
			target = name[0].text
		}
		if mod == "" {
			m.bind(target, "")
		} else {
			m.bind(target, mod+"."+name[0].text)
		}
	}
}

func cutLast(s string) (before, after string, found bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", s, false
	}
	return s[:i], s[i+1:], true
}

// splitAs splits `x.y as z` into the tokens of `x.y` and "z".
func splitAs(item []token) ([]token, string) {
	n := len(item)
	if n >= 3 && item[n-2].kind == tokName && item[n-2].text == "as" && item[n-1].kind == tokName {
		return item[:n-2], item[n-1].text
	}
	return item, ""
}
