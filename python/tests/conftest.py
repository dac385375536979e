"""Shared set-up of the Python tests: a real rfenv serve (started by the package itself), the real
Docker daemon, images built from tests/envs, and the repository's test sshd (for ssh:// hosts).

Everything runs under a fresh state directory; at the end every container labelled with it is
removed, so a failing test leaks nothing. The serve child gets a HOME of its own whose ~/.ssh
trusts the test sshd and holds its client key (nothing of the machine's ssh setup is used).
"""
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYROOT = os.path.dirname(HERE)
ROOT = os.path.dirname(PYROOT)
sys.path.insert(0, PYROOT)

TMP = tempfile.mkdtemp(prefix="rfenv-pytest-")
STATE_DIR = os.path.join(TMP, "state")
os.environ["RFENV_STATE_DIR"] = STATE_DIR
os.environ.setdefault("RFENV_BIN", os.path.join(ROOT, "bin", "rfenv"))
os.environ.setdefault("RFENV_BASE_IMAGE", "rfenv-python:bookworm")
os.environ.pop("RFENV_SERVE", None)
RFENV_BIN = os.environ["RFENV_BIN"]
STATE_ID = hashlib.sha256(os.path.abspath(STATE_DIR).encode()).hexdigest()[:12]


def _start_sshd():
    """The repository's test sshd (pkg/testutil/sshd) through its helper command."""
    helper = os.environ.get("RFENV_TESTSSHD") or os.path.join(ROOT, "bin", "testsshd")
    argv = [helper] if os.access(helper, os.X_OK) else ["go", "run", "./pkg/testutil/sshd/testsshd"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError("the test sshd did not start (exit %s)" % proc.wait())
    return proc, json.loads(line)


SSHD_PROC, SSHD = _start_sshd()
HOME = os.path.join(TMP, "home")
os.makedirs(os.path.join(HOME, ".ssh"), mode=0o700)
shutil.copy(SSHD["client_key"], os.path.join(HOME, ".ssh", "id_ed25519"))
os.chmod(os.path.join(HOME, ".ssh", "id_ed25519"), 0o600)
with open(os.path.join(HOME, ".ssh", "known_hosts"), "w") as f:
    f.write(SSHD["known_hosts_line"] + "\n")
os.environ["HOME"] = HOME  # read by the rfenv serve child (ssh keys and known_hosts)
os.environ.pop("SSH_AUTH_SOCK", None)

import rfenv  # noqa: E402  (after the environment above is set)


def unique(prefix: str) -> str:
    """A per-run environment name."""
    return "%s-%s" % (prefix, secrets.token_hex(4))


def docker_ids(*filters: str):
    """IDs of the containers (running or not) of this run's state directory matching filters."""
    argv = ["docker", "ps", "-aq", "--no-trunc", "--filter", "label=rfenv.state=" + STATE_ID]
    for f in filters:
        argv += ["--filter", f]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()


def env_containers(name: str):
    return docker_ids("label=rfenv.env=" + name)


def rfenv_cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI on the same state directory (with the machine's HOME it does not need)."""
    return subprocess.run([RFENV_BIN, *args], capture_output=True, text=True, env=dict(os.environ))


def wait_for(cond, timeout: float = 120.0, what: str = "condition"):
    """Poll cond until it holds; fail after timeout (generous: CI machines are loaded)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


@pytest.fixture(scope="session")
def images():
    """The fixture environments, built with the package's own build_image_from_env."""
    out = {}
    for name in ("affine", "webshop"):
        tag = "rfenv-pytest-%s:latest" % name
        out[name] = rfenv.build_image_from_env(os.path.join(HERE, "envs", name), tag, quiet=True)
    return out


@pytest.fixture(scope="session")
def sshd():
    return SSHD


def pytest_sessionfinish(session, exitstatus):
    try:
        rfenv.cleanup_all_environments()
    except Exception:
        pass
    from rfenv import _server
    _server.shutdown()
    ids = docker_ids()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    SSHD_PROC.stdin.close()
    SSHD_PROC.wait(60)
    shutil.rmtree(TMP, ignore_errors=True)
