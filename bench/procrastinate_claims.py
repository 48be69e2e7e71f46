"""Procrastinate's no-op job throughput, the peer of the claims bench (issue 17).

    python bench/procrastinate_claims.py        (bench/postgres.sh runs it)

Defers JOBS no-op jobs in one batch, then runs Procrastinate workers
(wait=False: they stop once the queue is empty), 16 async slots in all (one
process of 16, then four of 4), and prints jobs/s, plus p50/p95/p99 of its job fetch (Procrastinate's
claim: one `procrastinate_fetch_job` call), as the taskdaemon bench prints
claim latency. The run uses a database of its own (DATABASE, created and
dropped here) on the server of BENCH_DATABASE_URL (else
TASKDAEMON_TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test).
"""

import asyncio
import multiprocessing
import os
import time
from urllib.parse import urlsplit, urlunsplit

import procrastinate
import psycopg

JOBS = int(os.environ.get("JOBS", "10000"))
# (worker processes, async slots each): one worker of 16 slots (its usual
# shape), and 16 slots over 4 processes, so one Python process's CPU is not
# the only limit on two cores.
SHAPES = [(1, 16), (4, 4)]
DATABASE = os.environ.get("DATABASE", "td_claims_procrastinate")
BASELINE = (380.0, 510.0)


def server_url() -> str:
    return (
        os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("TASKDAEMON_TEST_DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/test"
    )


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def recreate(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def drop(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p))]


def make_app(url: str, slots: int):
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=url, min_size=1, max_size=slots + 4
        )
    )

    @app.task(queue="bench", name="noop")
    async def noop() -> None:
        return None

    return app, noop


async def fill(url: str) -> None:
    app, noop = make_app(url, 1)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        await noop.batch_defer_async(*({} for _ in range(JOBS)))


async def work(url: str, slots: int) -> list[float]:
    """One worker process: runs jobs until the queue is empty; returns its
    fetch latencies (seconds)."""
    app, _ = make_app(url, slots)
    fetches: list[float] = []
    async with app.open_async():
        fetch = app.job_manager.fetch_job

        async def timed_fetch(*args, **kwargs):
            started = time.perf_counter()
            job = await fetch(*args, **kwargs)
            if job is not None:
                fetches.append(time.perf_counter() - started)
            return job

        app.job_manager.fetch_job = timed_fetch
        await app.run_worker_async(
            queues=["bench"],
            concurrency=slots,
            wait=False,
            install_signal_handlers=False,
            listen_notify=False,
        )
    return fetches


def work_process(url: str, slots: int, out) -> None:
    out.put(asyncio.run(work(url, slots)))


def run(url: str, processes: int, slots: int) -> None:
    """`processes` worker processes of `slots` async slots each drain JOBS jobs."""
    asyncio.run(fill(url))
    out = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=work_process, args=(url, slots, out))
        for _ in range(processes)
    ]
    started = time.perf_counter()
    for w in workers:
        w.start()
    fetches: list[float] = []
    for _ in workers:
        fetches.extend(out.get())
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    per_sec = len(fetches) / elapsed
    ms = lambda s: f"{s * 1000:.2f} ms"  # noqa: E731
    print(
        f"  {processes * slots:>7}  {1:>5}  {per_sec:>10.0f}  {ms(percentile(fetches, 0.5)):>9}  "
        f"{ms(percentile(fetches, 0.95)):>9}  {ms(percentile(fetches, 0.99)):>9}  "
        f"{'x%.1f-x%.1f' % (per_sec / BASELINE[1], per_sec / BASELINE[0]):>13}"
        f"  ({len(fetches)} jobs; {processes} worker process(es) x {slots} async slots)",
        flush=True,
    )


def procrastinate_version() -> str:
    try:
        from importlib.metadata import version

        return version("procrastinate")
    except Exception:  # noqa: BLE001
        return "(version unknown)"


def main() -> None:
    server = server_url()
    print(
        f"\nProcrastinate {procrastinate_version()} (same server, database {DATABASE}; "
        f"{JOBS} no-op jobs per run; latency = its job fetch)"
    )
    print(
        f"  {'workers':>7}  {'batch':>5}  {'claims/s':>10}  {'p50':>9}  {'p95':>9}  {'p99':>9}  {'vs 380-510/s':>13}"
    )
    for processes, slots in SHAPES:
        recreate(server)
        try:
            run(with_database(server, DATABASE), processes, slots)
        finally:
            drop(server)


if __name__ == "__main__":
    main()
