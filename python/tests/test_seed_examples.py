"""Every example of the seed library's README, run through rayfine_env against the real daemon."""
import asyncio
import os

import pytest

import rayfine_env as rf_env
from conftest import env_containers, unique

KEY = {"CHUTES_API_KEY": "test-key"}


async def test_basic_single_instance(images):
    image = rf_env.build_image_from_env(env_path=os.path.join(os.path.dirname(__file__), "envs", "affine"),
                                        image_tag=images["affine"], quiet=True)
    assert image == images["affine"]
    env = rf_env.load_env(image=image, env_vars=KEY)
    assert env.name in rf_env.list_active_environments()
    assert len(env_containers(env.name)) == 1
    result = await env.evaluate(task_type="sat", num_samples=5)
    assert result["total_score"] == 1.0 and result["samples"] == 5 and result["task_name"] == "sat"
    await env.cleanup()
    assert env.name not in rf_env.list_active_environments()
    assert env_containers(env.name) == []


async def test_multi_instance_with_load_balancing(images):
    env = rf_env.load_env(image=images["affine"], replicas=3, load_balance="round_robin", env_vars=KEY)
    try:
        stats = env.get_stats()
        assert stats["total_instances"] == 3
        assert stats["healthy_instances"] == 3
        results = await asyncio.gather(*[env.evaluate(task_type="abd", num_samples=1) for _ in range(10)])
        assert len(results) == 10
        assert {r["replica"] for r in results} == {"0", "1", "2"}  # round robin reached every replica
        stats = env.get_stats()
        per = [inst["requests"] for inst in stats["instances"]]
        assert all(n > 0 for n in per) and sum(per) >= 10
        for inst in stats["instances"]:
            assert {"host", "port", "healthy", "requests"} <= set(inst)
    finally:
        await env.cleanup()


async def test_ssh_remote_deployment(images, sshd):
    # Mixed deployment: one replica on localhost, one through the test sshd (same daemon behind it).
    env = rf_env.load_env(image=images["affine"], replicas=2, hosts=["localhost", sshd["target"]], env_vars=KEY)
    try:
        hosts = sorted(inst["host"] for inst in env.info["instances"])
        assert hosts[0] == "localhost" and hosts[1].startswith("ssh://root@127.0.0.1:")
        results = await asyncio.gather(*[env.evaluate(task_type="sat", num_samples=5) for _ in range(8)])
        assert all(r["total_score"] == 1.0 for r in results)
        stats = env.get_stats()
        assert stats["healthy_instances"] == 2
        by_host = {inst["host"]: inst["requests"] for inst in stats["instances"]}
        assert sum(by_host.values()) >= 8
    finally:
        await env.cleanup()
    assert env_containers(env.name) == []


async def test_concurrent_multi_environment(images):
    env1 = rf_env.load_env(image=images["affine"], replicas=3, env_vars={"API_KEY": "key1", **KEY})
    env2 = rf_env.load_env(image=images["webshop"], replicas=2, env_vars={"API_KEY": "key2"})
    try:
        tasks = []
        for _ in range(5):
            tasks.append(env1.evaluate(task_type="abd", num_samples=1))
            tasks.append(env2.evaluate(ids=[0], max_round=10))
        results = await asyncio.gather(*tasks)
        assert [r.get("task_name") for r in results[0::2]] == ["abd"] * 5
        assert results[1::2] == [{"ids": [0], "max_round": 10, "api_key_set": True}] * 5
    finally:
        await env1.cleanup()
        await env2.cleanup()


async def test_container_reuse_and_force_recreate(images):
    name = unique("my-affine")
    env1 = rf_env.load_env(image=images["affine"], container_name=name, env_vars=KEY)
    first = env_containers(name)
    assert env1.name == name and len(first) == 1
    # Loaded again by name, the running replica that matches is reused.
    env2 = rf_env.load_env(image=images["affine"], container_name=name, env_vars=KEY)
    assert env_containers(name) == first
    assert [i["container_id"] for i in env2.info["instances"]] == first
    # force_recreate replaces it.
    env3 = rf_env.load_env(image=images["affine"], container_name=name, env_vars=KEY, force_recreate=True)
    third = env_containers(name)
    assert len(third) == 1 and third != first
    assert (await env3.add(2, b=3)) == 5
    await env3.cleanup()
    assert env_containers(name) == []
    # After cleanup, the same name starts afresh.
    env4 = rf_env.load_env(image=images["affine"], container_name=name, env_vars=KEY)
    assert len(env_containers(name)) == 1
    await env4.cleanup()


async def test_async_context_manager(images):
    async with rf_env.load_env(image=images["affine"], env_vars=KEY) as env:
        result = await env.evaluate(task_type="sat", num_samples=5)
        assert result["samples"] == 5
        name = env.name
        assert len(env_containers(name)) == 1
    assert env_containers(name) == []
    assert rf_env.get_environment(name) is None


async def test_call_level_timeout(images):
    env = rf_env.load_env(image=images["affine"], env_vars=KEY)
    try:
        with pytest.raises(rf_env.DeadlineError) as ei:
            await env.sleep(seconds=30, _timeout=1)
        assert isinstance(ei.value, TimeoutError) and isinstance(ei.value, asyncio.TimeoutError)
        assert ei.value.kind == "deadline"
        # A call within its deadline still succeeds, on the same environment.
        assert await env.sleep(seconds=0.01, _timeout=90) == 0.01
    finally:
        await env.cleanup()


async def test_image_pull_before_deployment(images):
    # No registry is reachable here: pull=True falls back to the local copy, as rfenv up --pull does.
    env = rf_env.load_env(image=images["affine"], pull=True, env_vars=KEY)
    try:
        assert (await env.evaluate(task_type="sat"))["total_score"] == 1.0
    finally:
        await env.cleanup()
