"""Connecting to a running rfenv serve (RFENV_SERVE), over TCP with its bearer token, and installing
the package offline."""
import json
import os
import subprocess
import sys
import textwrap

from conftest import PYROOT, RFENV_BIN, TMP, unique

PROBE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, %r)
    import rfenv
    try:
        print(json.dumps({"envs": [e["name"] for e in rfenv.list_environments()]}))
    except rfenv.RfenvError as e:
        print(json.dumps({"error": e.kind, "field": e.field}))
""")


def _serve_tcp(token_file):
    p = subprocess.Popen([RFENV_BIN, "serve", "--listen", "127.0.0.1:0", "--token-file", token_file, "--json", "--watch-stdin"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    info = json.loads(p.stdout.readline())
    return p, info


def _probe(env):
    out = subprocess.run([sys.executable, "-c", PROBE % PYROOT], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_connects_to_a_tcp_server_with_its_token():
    token_file = os.path.join(TMP, unique("token"))
    p, info = _serve_tcp(token_file)
    try:
        assert info["url"].startswith("http://127.0.0.1:") and info["token_file"] == token_file
        assert oct(os.stat(token_file).st_mode & 0o777) == "0o600"
        token = open(token_file).read().strip()
        env = dict(os.environ, RFENV_SERVE=info["url"], RFENV_SERVE_TOKEN_FILE=token_file)
        assert "envs" in _probe(env)
        # A wrong token is refused.
        bad = os.path.join(TMP, unique("bad"))
        with open(bad, "w") as f:
            f.write("0" * 64)
        assert _probe(dict(env, RFENV_SERVE_TOKEN_FILE=bad)) == {"error": "usage", "field": "Authorization"}
    finally:
        p.stdin.close()
        p.wait(120)
        err = p.stderr.read().decode()
        p.stderr.close()
        p.stdout.close()
    assert token not in err  # the token is never printed
    assert not os.path.exists(token_file)  # removed at exit


def test_pip_install_offline(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--no-cache-dir", "-q"]
    out = subprocess.run(pip + [PYROOT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    check = "import rfenv, rayfine_env, os; print(os.path.exists(os.path.join(os.path.dirname(rfenv.__file__), 'py.typed')))"
    assert subprocess.run([str(venv / "bin" / "python"), "-c", check], capture_output=True, text=True, cwd=str(tmp_path)).stdout.strip() == "True"
    # A platform wheel carries the binary, found without RFENV_BIN or PATH.
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, os.path.join(PYROOT, "_build", "backend.py"), "--out", str(wheels), "--binary", RFENV_BIN,
                    "--plat", "manylinux2014_x86_64"], check=True, capture_output=True)
    whl = next(wheels.glob("*.whl"))
    out = subprocess.run(pip + ["--force-reinstall", str(whl)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    env = {k: v for k, v in os.environ.items() if k != "RFENV_BIN"}
    env["PATH"] = "/usr/bin:/bin"
    found = subprocess.run([str(venv / "bin" / "python"), "-c", "from rfenv import _server; print(_server.find_binary())"],
                           capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert found.stdout.strip().endswith("site-packages/rfenv/bin/rfenv"), found.stderr
    assert os.access(found.stdout.strip(), os.X_OK)


async def test_reconnects_after_the_server_restarts(tmp_path):
    from rfenv._transport import AsyncClient, Target
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    sock = str(d / "serve.sock")

    def start():
        p = subprocess.Popen([RFENV_BIN, "serve", "--socket", sock, "--json", "--watch-stdin"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ))
        assert json.loads(p.stdout.readline())["address"] == sock
        return p

    def stop(p):
        p.stdin.close()
        assert p.wait(120) == 0
        p.stdout.close()

    c = AsyncClient(Target("unix://" + sock))
    p = start()
    assert await c.request("GET", "/v1/health") == {"status": "ok"}
    stop(p)  # the idle keep-alive connection is now closed by the server
    p = start()
    try:
        assert await c.request("GET", "/v1/health") == {"status": "ok"}
    finally:
        c.close()
        stop(p)
