"""The serve child's life is the Python process's: SIGKILL of Python leaves no server behind and
takes down what it started with cleanup=True (and only that)."""
import json
import os
import signal
import subprocess
import sys
import textwrap

from conftest import PYROOT, RFENV_BIN, env_containers, rfenv_cli, unique, wait_for

CHILD = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, %r)
    import rfenv
    from rfenv import _server
    a = rfenv.load_env(image=sys.argv[1], container_name=sys.argv[2], env_vars={"CHUTES_API_KEY": "k"})
    b = rfenv.load_env(image=sys.argv[1], container_name=sys.argv[3], env_vars={"CHUTES_API_KEY": "k"}, cleanup=False)
    print(json.dumps({"serve_pid": _server.get().proc.pid}), flush=True)
    time.sleep(3600)
""")


def _running(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_sigkill_leaves_no_server_and_no_cleanup_containers(images):
    owned, kept = unique("killed"), unique("kept")
    p = subprocess.Popen([sys.executable, "-c", CHILD % PYROOT, images["affine"], owned, kept],
                         stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        line = p.stdout.readline()
        assert line, "the child exited before loading its environments (exit %s)" % p.poll()
        serve_pid = json.loads(line)["serve_pid"]
        assert _running(serve_pid)
        assert len(env_containers(owned)) == 1 and len(env_containers(kept)) == 1
        p.send_signal(signal.SIGKILL)
        p.wait(60)
        wait_for(lambda: not _running(serve_pid), what="rfenv serve to exit after its parent was killed")
        assert env_containers(owned) == []           # cleanup=True: taken down
        assert len(env_containers(kept)) == 1        # cleanup=False: left running, as asked
        ls = json.loads(rfenv_cli("ls", "--json").stdout)
        assert kept in [e["name"] for e in ls] and owned not in [e["name"] for e in ls]
    finally:
        if p.poll() is None:
            p.kill()
        rfenv_cli("down", kept)
    assert env_containers(kept) == []


LOADER = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, %r)
    import rfenv
    from rfenv import _server
    rfenv.load_env(image=sys.argv[1], container_name=sys.argv[2], env_vars={"CHUTES_API_KEY": "k"})
    os._exit(0)  # no exit handlers: the environment stays for the server to take down
""")


def test_sigterm_of_a_shared_server_takes_down_its_cleanup_environments(images, tmp_path):
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    sock = str(d / "serve.sock")
    serve = subprocess.Popen([RFENV_BIN, "serve", "--socket", sock, "--json"], stdout=subprocess.PIPE, env=dict(os.environ))
    try:
        assert json.loads(serve.stdout.readline())["address"] == sock
        name = unique("term")
        out = subprocess.run([sys.executable, "-c", LOADER % PYROOT, images["affine"], name],
                             env=dict(os.environ, RFENV_SERVE="unix://" + sock), capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert len(env_containers(name)) == 1
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(300) == 0
        assert env_containers(name) == []
        assert not os.path.exists(sock)
    finally:
        if serve.poll() is None:
            serve.kill()
        serve.stdout.close()
