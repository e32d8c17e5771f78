"""Campaign figures for `make bench`: generation beside a raw COPY, its peak memory, and
validation latency in a tenant with a million codes against one with a hundred.

On a fresh database of its own (the main bench's loaded one would make both sides
pay for its autovacuum and checkpoints), with a CHECKPOINT before each timed step:

- Floor: a raw COPY of BENCH_CAMPAIGN_CODES ready-made codes (made before the clock
  starts) into a table with a unique index, timed before and after ours.
- Ours: `flask campaign generate` (the CLI, one process) making as many codes in a
  tenant; its own figure (seconds, from its JSON line) and its peak RSS (wait4). A
  run of a tenth as many codes shows whether memory grows with the count.
- Validation p99: wrk on one code's validation in a tenant holding a hundred codes
  and in the tenant holding the million, alternated three times (medians), one gunicorn.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODES = int(os.environ.get("BENCH_CAMPAIGN_CODES", "1000000"))
TARGET_RATIO = 2.0  # generation within twice the raw COPY
TARGET_P99_GROWTH = 1.2  # big tenant's validation p99 within 20% of the small one's


def checkpoint(url: str) -> None:
    """Write dirty pages out now, so the next timed step does not pay for the last one."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute("CHECKPOINT")


def raw_copy_seconds(url: str, codes: list[str]) -> float:
    """COPY ready-made codes into a fresh table with a unique index; seconds."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_raw_codes")
        connection.execute("CREATE TABLE bench_raw_codes (code text UNIQUE)")
        data = "".join(f"{code}\n" for code in codes)
        connection.execute("CHECKPOINT")
        started = time.perf_counter()
        with connection.transaction():
            with (
                connection.cursor() as cursor,
                cursor.copy("COPY bench_raw_codes FROM STDIN") as copy,
            ):
                for start in range(0, len(data), 1 << 20):
                    copy.write(data[start : start + (1 << 20)])
        seconds = time.perf_counter() - started
        connection.execute("DROP TABLE bench_raw_codes")
    return seconds


def generate(env: dict, tenant: str, count: int, *extra: str) -> dict:
    """Run the CLI; its JSON line plus wall seconds and peak RSS (MiB) of the process."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "app",
            "campaign",
            "generate",
            tenant,
            "--count",
            str(count),
            "--percent",
            "10",
            "--max-redemptions",
            "1",
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.perf_counter()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out, err = process.stdout.read(), process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"campaign generate failed: {err.strip()}")
    summary = json.loads(out.strip().splitlines()[-1])
    return {
        **summary,
        "wall_seconds": round(wall, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
    }


def run(pg_url: str, bench) -> dict:
    """Every campaign figure; `bench` is bench/run.py's module (its helpers)."""
    with bench.new_postgres_database(pg_url, "coupon_campaigns") as url:
        env = bench.service_env(url, "http://127.0.0.1:9")
        bench.flask(env, "db", "upgrade")
        process, service_url = bench.start_gunicorn(env, bench.WORKERS)
        try:
            return _measure(url, env, service_url, bench)
        finally:
            bench.stop(process)


def _measure(url: str, env: dict, service_url: str, bench) -> dict:
    import requests

    from app.engine.codes import CodeSpec

    tenants = {
        slug: json.loads(
            bench.flask(
                env, "tenant", "create", slug, "--currency", "USD", "--api-token", f"{slug}-token"
            )
        )
        for slug in ("camp-small", "camp-big")
    }
    floors = [raw_copy_seconds(url, CodeSpec.build(length=10).draw(CODES))]
    checkpoint(url)
    tenth = generate(env, "camp-big", max(CODES // 10, 1), "--prefix", "T-")
    checkpoint(url)
    full = generate(env, "camp-big", CODES, "--prefix", "M-")
    floors.append(raw_copy_seconds(url, CodeSpec.build(length=10).draw(CODES)))
    generate(env, "camp-small", 100, "--prefix", "S-", "--max-redemptions", "-1")
    ratio = round(full["seconds"] / (sum(floors) / len(floors)), 2)

    body = (
        '{"orderTotal": {"amount": 100, "currency": "USD"}, '
        '"discount": {"amount": 10, "currency": "USD"}, "customerNumber": "C1"}'
    )
    scenarios = {}
    for slug, creds in tenants.items():
        # The tenant's newest code; its first lookup (here) makes it a coupon row.
        (code,) = bench.sql(
            url,
            "SELECT c.code FROM codes c JOIN tenants t ON t.id = c.tenant_id "
            "WHERE t.slug = :slug ORDER BY c.campaign_id DESC, c.position DESC LIMIT 1",
            slug=slug,
        )[0]
        token = bench.client_token(service_url, creds, "hybris.coupon_redeem_on_behalf")
        path = f"/coupon/v1/{slug}/coupons/{code}/validation"
        headers = {**token, "Content-Type": "application/json"}
        requests.post(service_url + path, data=body, headers=headers, timeout=10).raise_for_status()
        scenarios[slug] = bench.Scenario(f"validation in {slug}", {"service": path}, body, token)
    runs: dict[str, list[dict]] = {slug: [] for slug in scenarios}
    for _ in range(3):  # alternated, so drift hits both alike; the median of three
        for slug, scenario in scenarios.items():
            runs[slug].append(bench.wrk(service_url, scenario, "service"))
    p99 = {slug: sorted(r["p99_ms"] for r in rs)[1] for slug, rs in runs.items()}
    rps = {slug: sorted(r["rps"] for r in rs)[1] for slug, rs in runs.items()}
    growth = round(p99["camp-big"] / p99["camp-small"], 2) if p99["camp-small"] else None
    return {
        "codes": CODES,
        "raw_copy_seconds": [round(f, 2) for f in floors],
        "generate": full,
        "generate_tenth": tenth,
        "ratio_to_raw_copy": ratio,
        "ratio_met": ratio <= TARGET_RATIO,
        "big_tenant_codes": tenth["generated"] + full["generated"],
        "validation_p99_ms": p99,
        "validation_rps": rps,
        "validation_p99_growth": growth,
        "validation_met": growth is not None and growth <= TARGET_P99_GROWTH,
    }


def print_summary(result: dict) -> None:
    g, t = result["generate"], result["generate_tenth"]
    print()
    print(f"campaigns ({result['codes']:,} codes):")
    print(
        f"  raw COPY into a table with a unique index: "
        f"{result['raw_copy_seconds']} s (before, after)"
    )
    print(
        f"  flask campaign generate: {g['seconds']} s ({g['generated']:,} codes), "
        f"ratio {result['ratio_to_raw_copy']} to the raw COPY's mean "
        f"{'ok' if result['ratio_met'] else 'MISSED'} (<= {TARGET_RATIO}x)"
    )
    print(
        f"  peak RSS of the generating process: {g['peak_rss_mib']} MiB for {g['generated']:,}, "
        f"{t['peak_rss_mib']} MiB for {t['generated']:,}"
    )
    p = result["validation_p99_ms"]
    print(
        f"  validation p99: {p['camp-small']} ms with 100 codes, {p['camp-big']} ms with "
        f"{result['big_tenant_codes']:,} ({result['validation_rps']} req/s), growth "
        f"{result['validation_p99_growth']} "
        f"{'ok' if result['validation_met'] else 'MISSED'} (<= {TARGET_P99_GROWTH})"
    )
