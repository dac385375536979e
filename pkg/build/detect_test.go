package build

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectSource(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want Kind
	}{
		{"empty", "", KindFunction},
		{"plain functions", "def add(a, b):\n    return a + b\n", KindFunction},
		{"from import", "from fastapi import FastAPI\napp = FastAPI()\n", KindHTTP},
		{"from import alias", "from fastapi import FastAPI as F\napp = F(title='x')\n", KindHTTP},
		{"module import", "import fastapi\napp = fastapi.FastAPI()\n", KindHTTP},
		{"module import alias", "import fastapi as fa\napp = fa.FastAPI()\n", KindHTTP},
		{"submodule", "from fastapi.applications import FastAPI\napp = FastAPI()\n", KindHTTP},
		{"starlette", "from starlette.applications import Starlette\napp = Starlette(routes=[])\n", KindHTTP},
		{"starlette dotted import", "import starlette.applications\napp = starlette.applications.Starlette()\n", KindHTTP},
		{"starlette module alias", "import starlette.applications as sa\napp = sa.Starlette()\n", KindHTTP},
		{"from package import module", "from starlette import applications\napp = applications.Starlette()\n", KindHTTP},
		{"star import", "from fastapi import *\napp = FastAPI()\n", KindHTTP},
		{"parenthesised import list", "from fastapi import (\n    Depends,\n    FastAPI as Api,\n)\napp = Api()\n", KindHTTP},
		{"several imports on a line", "import os, fastapi as f\napp = f.FastAPI()\n", KindHTTP},
		{"annotated", "from fastapi import FastAPI\napp: FastAPI = FastAPI()\n", KindHTTP},
		{"annotated string type", "import fastapi\napp: \"fastapi.FastAPI\" = fastapi.FastAPI()\n", KindHTTP},
		{"chained assignment", "from fastapi import FastAPI\napplication = app = FastAPI()\n", KindHTTP},
		{"alias variable", "import fastapi\nApp = fastapi.FastAPI\napp = App()\n", KindHTTP},
		{"subclass", "from fastapi import FastAPI\nclass MyApp(FastAPI):\n    pass\napp = MyApp()\n", KindHTTP},
		{"multi-line call", "from fastapi import FastAPI\napp = FastAPI(\n    title='a',\n    version=\"1\",\n)\n", KindHTTP},
		{"backslash continuation", "from fastapi import FastAPI\napp = \\\n    FastAPI()\n", KindHTTP},
		{"semicolons", "import fastapi; app = fastapi.FastAPI()\n", KindHTTP},
		{"crlf", "from fastapi import FastAPI\r\napp = FastAPI()\r\n", KindHTTP},
		{"bom", "\ufefffrom fastapi import FastAPI\napp = FastAPI()\n", KindHTTP},
		{"try import", "try:\n    from fastapi import FastAPI\nexcept ImportError:\n    raise\napp = FastAPI()\n", KindHTTP},
		{"conditional app", "import os\nfrom fastapi import FastAPI\nif os.environ.get('X'):\n    app = FastAPI(debug=True)\nelse:\n    app = FastAPI()\n", KindHTTP},
		{"one-line if", "from fastapi import FastAPI\nif True: app = FastAPI()\n", KindHTTP},
		{"routes after app", "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/')\ndef root():\n    return {'a': 1}\n", KindHTTP},
		{"app wrapped later", "from fastapi import FastAPI\napp = FastAPI()\napp = Middleware(app)\n", KindHTTP},

		// Things that must not count.
		{"no import", "app = FastAPI()\n", KindFunction},
		{"import after use", "app = FastAPI()\nfrom fastapi import FastAPI\n", KindFunction},
		{"other FastAPI", "from mylib import FastAPI\napp = FastAPI()\n", KindFunction},
		{"relative import", "from .fastapi import FastAPI\napp = FastAPI()\n", KindFunction},
		{"relative dot import", "from . import FastAPI\napp = FastAPI()\n", KindFunction},
		{"inside function", "from fastapi import FastAPI\ndef make():\n    app = FastAPI()\n    return app\n", KindFunction},
		{"inside async function", "from fastapi import FastAPI\nasync def make():\n    app = FastAPI()\n", KindFunction},
		{"inside if inside function", "from fastapi import FastAPI\ndef make():\n    if True:\n        app = FastAPI()\n", KindFunction},
		{"one-line def", "from fastapi import FastAPI\ndef make(): app = FastAPI()\n", KindFunction},
		{"inside class", "from fastapi import FastAPI\nclass Actor:\n    app = FastAPI()\n", KindFunction},
		{"method", "import fastapi\nclass Actor:\n    def __init__(self):\n        self.app = fastapi.FastAPI()\n", KindFunction},
		{"comment", "from fastapi import FastAPI\n# app = FastAPI()\n", KindFunction},
		{"comment after code", "from fastapi import FastAPI\nx = 1  # app = FastAPI()\n", KindFunction},
		{"string", "from fastapi import FastAPI\nDOC = 'app = FastAPI()'\n", KindFunction},
		{"docstring", "\"\"\"Example:\napp = FastAPI()\n\"\"\"\nfrom fastapi import FastAPI\n", KindFunction},
		{"triple single quotes", "from fastapi import FastAPI\nX = '''\napp = FastAPI()\n'''\n", KindFunction},
		{"raw string with escaped quote", "from fastapi import FastAPI\nX = r\"\"\"\\\"\"\"\napp = FastAPI()\n\"\"\"\n", KindFunction},
		{"raw string ending in backslash pair", "from fastapi import FastAPI\nX = r'\\\\'\napp = FastAPI()\n", KindHTTP},
		{"bytes string", "from fastapi import FastAPI\nX = b\"\"\"\napp = FastAPI()\n\"\"\"\n", KindFunction},
		{"prefixed triple string", "from fastapi import FastAPI\nX = Rb'''\napp = FastAPI()\n'''\n", KindFunction},
		{"f-string", "from fastapi import FastAPI\nX = f\"\"\"\n{1}\napp = FastAPI()\n\"\"\"\n", KindFunction},
		{"f-string reusing quotes (3.12)", "from fastapi import FastAPI\nd = {}\nX = f\"{d[\"k\"]}\n\"\"\"\napp = FastAPI()\n\"\"\"\n", KindFunction},
		{"f-string nested format spec", "from fastapi import FastAPI\nw = 3\nX = f'{1:{w}}'\napp = FastAPI()\n", KindHTTP},
		{"f-string braces", "from fastapi import FastAPI\nX = f'{{'\napp = FastAPI()\n", KindHTTP},
		{"string inside brackets", "from fastapi import FastAPI\nX = (\n    'a'\n    \"\"\"\napp = FastAPI()\n\"\"\"\n)\n", KindFunction},
		{"name shadowed", "from fastapi import FastAPI\nFastAPI = dict\napp = FastAPI()\n", KindFunction},
		{"name shadowed by def", "from fastapi import FastAPI\ndef FastAPI():\n    return 1\napp = FastAPI()\n", KindFunction},
		{"other variable", "from fastapi import FastAPI\napi = FastAPI()\n", KindFunction},
		{"attribute target", "from fastapi import FastAPI\nself.app = FastAPI()\n", KindFunction},
		{"tuple target", "from fastapi import FastAPI\napp, x = FastAPI(), 1\n", KindFunction},
		{"comparison", "from fastapi import FastAPI\napp == FastAPI()\n", KindFunction},
		{"not a call", "from fastapi import FastAPI\napp = FastAPI\n", KindFunction},
		{"attribute of call", "from fastapi import FastAPI\napp = FastAPI().router\n", KindFunction},
		{"keyword argument", "from fastapi import FastAPI\nrun(app = FastAPI())\n", KindFunction},
		{"lambda default", "from fastapi import FastAPI\nf = lambda app=FastAPI(): app\n", KindFunction},
		{"fastapi module other class", "import fastapi\napp = fastapi.APIRouter()\n", KindFunction},
		{"match statement variable", "from fastapi import FastAPI\nmatch = 1\napp = FastAPI()\n", KindHTTP},
		{"unterminated string", "from fastapi import FastAPI\nx = 'abc\napp = FastAPI()\n", KindHTTP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DetectSource(tt.src); got != tt.want {
				t.Errorf("DetectSource(%q) = %s, want %s", tt.src, got, tt.want)
			}
		})
	}
}

func TestLexerLogicalLines(t *testing.T) {
	src := "a = (1,\n  2)  # c\n\n  \\\nb = '''x\ny'''\nif x:\n    c = f\"{'}'}\"\n"
	lines := (&lexer{src: src}).lines()
	var got []string
	for _, l := range lines {
		var parts []string
		for _, tk := range l.toks {
			parts = append(parts, tk.text)
		}
		got = append(got, strings.Join(parts, " "))
	}
	want := []string{"a = ( 1 , 2 )", "b = '''x\ny'''", "if x :", "c = f\"{'}'}\""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("logical lines:\n got %q\nwant %q", got, want)
	}
	if lines[3].indent != 4 || lines[2].indent != 0 {
		t.Errorf("indents: %d %d", lines[2].indent, lines[3].indent)
	}
}

func TestDetectErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Detect(dir)
	if !errors.Is(err, ErrNoEnvPy) {
		t.Fatalf("Detect(empty dir) = %v, want ErrNoEnvPy", err)
	}
	want := "no env.py in " + dir + ": an environment directory needs env.py (run \"rfenv init " + dir + "\" to create one)"
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	missing := filepath.Join(dir, "nope")
	if _, err := Detect(missing); !errors.Is(err, ErrNoEnvPy) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Detect(missing dir) = %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "env.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Detect(dir); err == nil || errors.Is(err, ErrNoEnvPy) {
		t.Errorf("Detect(env.py is a dir) = %v", err)
	}

	http := t.TempDir()
	if err := os.WriteFile(filepath.Join(http, "env.py"), []byte("from fastapi import FastAPI\napp = FastAPI()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k, err := Detect(http); err != nil || k != KindHTTP {
		t.Errorf("Detect(http) = %v, %v", k, err)
	}
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"": "", "function": KindFunction, "HTTP": KindHTTP, " http ": KindHTTP} {
		if got, err := ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseKind("grpc"); err == nil {
		t.Error("ParseKind(grpc) succeeded")
	}
}
