"""Benchmarks of the Python package through rfenv serve (bench items 9 and 10), run by bench/python.go.

Item 9: sequential calls from Python through rfenv serve (env.echo(x=1)) against a raw httpx POST of
the same call straight to the same replica, interleaved in rounds (alternating which side goes
first) in one event loop. Item 10: 2,000 calls in one asyncio.gather, repeated.

Input (environment): RFENV_BENCH_ENV (the environment, in RFENV_STATE_DIR), RFENV_BENCH_ADDR and
RFENV_BENCH_TOKEN (its replica 0), RFENV_BENCH_ROUNDS, RFENV_BENCH_PER_ROUND, RFENV_BENCH_GATHER_RUNS,
RFENV_BENCH_ITEMS ("9,10"). Output: one JSON object on stdout (times in nanoseconds).
"""
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "python"))

import httpx  # noqa: E402

import rfenv  # noqa: E402

GATHER_N = 2000


async def main() -> None:
    name = os.environ["RFENV_BENCH_ENV"]
    items = set(os.environ.get("RFENV_BENCH_ITEMS", "9,10").split(","))
    rounds = int(os.environ.get("RFENV_BENCH_ROUNDS", "20"))
    per = int(os.environ.get("RFENV_BENCH_PER_ROUND", "250"))
    env = rfenv.get_environment(name)
    assert env is not None, "environment %s not found" % name
    out = {"serve_ns": [], "raw_ns": [], "gather_s": []}
    await env.echo(x=1)  # start the server, open a connection
    if "9" in items:
        url = "http://%s/call" % os.environ["RFENV_BENCH_ADDR"]
        headers = {"Authorization": "Bearer " + os.environ["RFENV_BENCH_TOKEN"], "Content-Type": "application/json",
                   "X-Rfenv-Timeout-Ms": "299950"}
        body = json.dumps({"method": "echo", "args": [], "kwargs": {"x": 1}}).encode()
        async with httpx.AsyncClient() as hc:

            async def raw() -> None:
                r = await hc.post(url, content=body, headers=headers)
                r.raise_for_status()
                r.json()

            async def via_serve() -> None:
                await env.echo(x=1)

            for _ in range(per // 5):  # warm both sides
                await raw()
                await via_serve()
            for i in range(rounds):
                order = [(via_serve, "serve_ns"), (raw, "raw_ns")]
                if i % 2:
                    order.reverse()
                for fn, key in order:
                    ts = out[key]
                    for _ in range(per):
                        t0 = time.perf_counter_ns()
                        await fn()
                        ts.append(time.perf_counter_ns() - t0)
    if "10" in items:
        for _ in range(int(os.environ.get("RFENV_BENCH_GATHER_RUNS", "5"))):
            t0 = time.perf_counter()
            res = await asyncio.gather(*[env.echo(x=i) for i in range(GATHER_N)])
            out["gather_s"].append(time.perf_counter() - t0)
            assert res[-1] == GATHER_N - 1
    print(json.dumps(out))


asyncio.run(main())
