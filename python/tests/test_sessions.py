"""Sessions: calls pinned to one replica (env.session()), OpenEnv-style episodes (env.openenv()),
and a session whose replica restarted raising SessionLostError."""
import subprocess

import pytest

import rfenv
from conftest import unique, wait_for

KEY = {"CHUTES_API_KEY": "test-key"}


@pytest.fixture
def env3(images):
    e = rfenv.load_env(image=images["affine"], replicas=3, container_name=unique("sess"), env_vars=KEY)
    yield e
    rfenv.cleanup_all_environments()


async def test_session_pins_calls_to_one_replica(env3):
    async with env3.session() as s:
        assert s.key
        first = await s.reset(seed=3)
        eid = first["episode_id"]
        replicas = set()
        for i in range(12):
            r = await s.step(action=1, episode_id=eid)  # KeyError on any other replica
            assert r["steps"] == i + 1
            replicas.add(r["replica"])
        assert len(replicas) == 1
        listed = await env3._server.aclient().request("GET", "/v1/environments/%s/sessions" % env3.name)
        assert s.key in [x["key"] for x in listed["sessions"]]
    listed = await env3._server.aclient().request("GET", "/v1/environments/%s/sessions" % env3.name)
    assert s.key not in [x["key"] for x in listed["sessions"]]


async def test_openenv_injects_episode_id(env3):
    ep = await env3.openenv().reset(seed=5)
    assert ep.observation["observation"] == 5 and ep.episode_id == ep.observation["episode_id"]
    assert (await ep.step(action=2))["observation"] == 7
    assert (await ep.step(action=1))["steps"] == 2
    assert (await ep.state())["steps"] == 2
    assert await ep.stop() is True
    assert ep.session.key == ""


async def test_session_lost_when_its_replica_restarts(env3):
    s = await env3.session().open()
    eid = (await s.reset(seed=1))["episode_id"]
    replica = (await s.step(action=0, episode_id=eid))["replica"]
    cid = [i["container_id"] for i in env3.info["instances"] if str(i["index"]) == replica][0]
    subprocess.run(["docker", "restart", "-t", "1", cid], check=True, capture_output=True)
    wait_for(lambda: env3.get_stats()["healthy_instances"] == 3, what="the restarted replica to be healthy")
    with pytest.raises(rfenv.SessionLostError):
        await s.step(action=0, episode_id=eid)
    await s.close()


def test_sync_session(images):
    from rfenv import sync
    with sync.load_env(image=images["affine"], replicas=2, env_vars=KEY) as env:
        with env.session() as s:
            eid = s.reset(seed=2)["episode_id"]
            assert [s.step(action=1, episode_id=eid)["steps"] for _ in range(5)] == [1, 2, 3, 4, 5]
