"""The rest of the Python API: errors, registry, list_methods, sync variant, sharing with the CLI."""
import asyncio
import json
import os

import pytest

import rfenv
from rfenv import sync as rfenv_sync
from conftest import ROOT, env_containers, rfenv_cli, unique

KEY = {"CHUTES_API_KEY": "test-key"}


@pytest.fixture
def env(images):
    e = rfenv.load_env(image=images["affine"], container_name=unique("api"), env_vars=KEY)
    yield e
    rfenv.cleanup_all_environments()


async def test_errors_map_to_exceptions(env):
    with pytest.raises(rfenv.MethodError) as ei:
        await env.fail(message="bad input")
    e = ei.value
    assert e.kind == "method_raised" and e.remote_type == "ValueError" and e.message == "bad input"
    assert "ValueError" in e.remote_traceback
    with pytest.raises(rfenv.NotFoundError):
        await env.no_such_method()
    with pytest.raises(rfenv.NotFoundError):
        await rfenv.Environment("no-such-env-" + unique("x"), {}, False, env._server).add(1)
    assert rfenv.get_environment(unique("missing")) is None


def test_bad_requests_name_the_field(images):
    with pytest.raises(rfenv.UsageError) as ei:
        rfenv.load_env(image=images["affine"], replicas=-1)
    assert ei.value.field == "replicas"
    with pytest.raises(rfenv.UsageError) as ei:
        rfenv.load_env(image=images["affine"], mem_limit="lots")
    assert ei.value.field == "mem_limit"
    with pytest.raises(rfenv.NotFoundError):
        rfenv.load_env(image="rfenv-no-such-image-%s:latest" % unique("i"), container_name=unique("none"))


async def test_positional_args_list_methods_stats(env):
    assert await env.add(2, 3) == 5
    assert await env.call("add", a=4) == 5
    names = {m["name"] for m in await env.list_methods()}
    assert {"evaluate", "reset", "step", "add"} <= names
    assert env.is_ready()
    stats = await env.get_stats_async()
    assert stats["total_instances"] == 1


def test_registry_and_cleanup_all(images):
    a = rfenv.load_env(image=images["affine"], env_vars=KEY)
    b = rfenv.load_env(image=images["affine"], env_vars=KEY, cleanup=False)
    assert {a.name, b.name} <= set(rfenv.list_active_environments())
    assert rfenv.get_environment(a.name) is a
    rfenv.cleanup_all_environments()  # explicit: both, even cleanup=False
    assert rfenv.list_active_environments() == []
    assert env_containers(a.name) == [] and env_containers(b.name) == []


def test_sync_variant(images):
    with rfenv_sync.load_env(image=images["affine"], env_vars=KEY) as env:
        assert env.add(1, b=2) == 3
        assert env.evaluate(task_type="x")["task_name"] == "x"
        assert any(m["name"] == "evaluate" for m in env.list_methods())
        with pytest.raises(rfenv.DeadlineError):
            env.sleep(seconds=30, _timeout=1)
        name = env.name
    assert env_containers(name) == []


def test_shares_state_with_the_cli(images):
    env = rfenv.load_env(image=images["affine"], env_vars=KEY)
    ls = rfenv_cli("ls", "--json")
    assert ls.returncode == 0, ls.stderr
    assert env.name in [e["name"] for e in json.loads(ls.stdout)]
    call = rfenv_cli("call", env.name, "add", "--arg", "a=40", "--arg", "b=2")
    assert call.returncode == 0 and json.loads(call.stdout) == 42
    # Down through the CLI: the package sees it gone.
    assert rfenv_cli("down", env.name).returncode == 0
    assert rfenv.get_environment(env.name) is env  # still in this process's registry ...
    assert env.name not in [e["name"] for e in rfenv.list_environments()]  # ... but not in rfenv's state
    rfenv.cleanup_all_environments()
    # And the other way: an environment the CLI started is reachable by name.
    name = unique("cli")
    up = rfenv_cli("up", images["affine"], "--name", name, "-e", "CHUTES_API_KEY=k")
    assert up.returncode == 0, up.stderr
    try:
        got = rfenv.get_environment(name)
        assert got is not None and got.get_stats()["healthy_instances"] == 1
    finally:
        rfenv_cli("down", name)


async def test_load_env_async_starts_environments_at_once(images):
    a, b = await asyncio.gather(rfenv.load_env_async(image=images["affine"], env_vars=KEY),
                                rfenv.load_env_async(image=images["webshop"], replicas=2))
    try:
        assert await a.add(1, b=1) == 2
        assert (await b.evaluate(ids=[1]))["ids"] == [1]
        assert len(env_containers(b.name)) == 2
        with pytest.warns(UserWarning, match="enable_logging"):
            c = rfenv.load_env(image=images["affine"], env_vars=KEY, enable_logging=True)
        await c.cleanup()
    finally:
        await a.cleanup()
        await b.cleanup()


async def test_url_mode_attaches_a_running_server(images):
    # A user's own http server (the repository's FastAPI fixture), started by rfenv, then attached
    # by URL as the seed's mode="url" does: calls go to its routes, cleanup only forgets it.
    tag = rfenv.build_image_from_env(os.path.join(ROOT, "testdata", "envs", "http"), "rfenv-pytest-http:latest", quiet=True)
    server = rfenv.load_env(image=tag, env_type="http")
    try:
        inst = server.info["instances"][0]
        url = "http://%s:%d" % (inst["address"], inst["port"])
        name = unique("url")
        attached = rfenv.load_env(mode="url", base_url=url, container_name=name, env_type="http")
        assert attached.info["attached"] is True
        assert await attached.add(a=2, b=3) == {"sum": 5}
        await attached.cleanup()
        assert rfenv.get_environment(name) is None
        assert len(env_containers(server.name)) == 1  # forgetting it left the server alone
    finally:
        await server.cleanup()
