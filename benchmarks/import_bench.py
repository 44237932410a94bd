"""Benchmark: participant CSV import (validate every row, then one bulk insert) of 100,000 rows.

On SQLite and, when reachable, PostgreSQL, it times `import_csv` from the raw bytes to the
commit: the full per-row validation (E.164 phones, emails, ages, formula cells, duplicate
references), the personal-link token hash of every participant, and the insert. The named
peer in the same run is pandas `read_csv` + `DataFrame.to_sql(method="multi")` of the same
file into a scratch table of the same database: a plain bulk load with no validation and
no tokens. The acceptance target is under 30 s per database.

    .venv/bin/python benchmarks/import_bench.py [--rows 100000] [--repeats 2] [--pg URL]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_csv(rows: int) -> bytes:
    out = io.StringIO()
    out.write(
        "external_ref,first_name,email,phone,age,gender,se_safety,se_environment,se_health,"
        "cluster,consent_basis,locale\n"
    )
    for i in range(rows):
        out.write(
            f"REF-{i:07d},Resident{i},resident{i}@example.org,+4477{i:08d},{18 + i % 70},"
            f"{'woman' if i % 2 else 'man'},{1 + i % 5},{1 + (i // 5) % 5},{1 + (i // 25) % 5},"
            f"street-{i % 900},public-task,en-GB\n"
        )
    return out.getvalue().encode()


def run_ours(url: str, data: bytes, instance: Path) -> tuple[float, int]:
    from nudge_app import create_app
    from nudge_app.cli.db import upgrade
    from nudge_app.extensions import db
    from nudge_app.services import campaigns
    from nudge_app.services.councils import create_council
    from nudge_app.services.participants_import import import_csv, participant_count

    upgrade(url)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "benchmark-secret-key-benchmark-secret",
            "INSTANCE_PATH": str(instance),
            "ENV_NAME": "testing",
        }
    )
    from experiments.design import load_design

    with app.app_context():
        council = create_council("bench", "Bench Council")
        design = load_design(str(ROOT / "experiments/catalog/self-efficacy-cleanup.toml"))
        campaign = campaigns.create_campaign(council, design)
        db.session.commit()
        start = time.perf_counter()
        result = import_csv(campaign, data, actor="benchmark")
        db.session.commit()
        elapsed = time.perf_counter() - start
        assert result.imported == participant_count(campaign.id)
        db.session.remove()
        db.engine.dispose()
    return elapsed, result.imported


def run_peer(url: str, data: bytes) -> float:
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(url)
    start = time.perf_counter()
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    frame.to_sql(
        "peer_participant", engine, if_exists="replace", index=False, method="multi", chunksize=1000
    )
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def pg_database(server: str) -> tuple[str, callable]:
    import psycopg
    from sqlalchemy.engine import make_url

    from config import normalize_database_url

    base = make_url(normalize_database_url(server))
    admin = base.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    name = f"nudge_import_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs of ours (best is kept)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    data = make_csv(args.rows)
    print(f"{args.rows:,} rows, {len(data) / 1e6:.1f} MB CSV")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        counter = iter(range(1_000_000))

        def sqlite_db():
            return f"sqlite:///{tmp / f'bench-{next(counter)}.sqlite3'}", None

        def pg_db():
            return pg_database(args.pg)

        targets = [("SQLite", sqlite_db)]
        try:
            _, drop = pg_db()
            drop()
            targets.append(("PostgreSQL", pg_db))
        except Exception as exc:  # noqa: BLE001 (report and carry on with SQLite)
            print(f"PostgreSQL skipped: {exc}")
        for label, new_db in targets:
            runs = []
            for i in range(args.repeats):
                url, drop = new_db()
                try:
                    seconds, n = run_ours(url, data, tmp / f"instance-{label}-{i}")
                    runs.append(seconds)
                    if i == 0:
                        peer = run_peer(url, data)
                finally:
                    if drop:
                        drop()
            ours = min(runs)
            verdict = "PASS" if max(runs) < 30 else "FAIL"
            results.append(
                {
                    "database": label,
                    "rows": n,
                    "nudge_seconds": round(ours, 2),
                    "nudge_runs": [round(r, 2) for r in runs],
                    "peer": "pandas read_csv + DataFrame.to_sql(method='multi')",
                    "peer_seconds": round(peer, 2),
                    "ratio": round(ours / peer, 3),
                    "target_seconds": 30,
                }
            )
            print(
                f"{label:<10} nudge import_csv best {ours:6.2f} s of "
                f"{', '.join(f'{r:.2f}' for r in runs)} ({n / ours:,.0f} rows/s, {verdict} "
                f"< 30 s) | peer pandas read_csv+to_sql {peer:6.2f} s | ratio ours/peer "
                f"{ours / peer:.2f}"
            )
    out = ROOT / "benchmarks" / "results" / "import_bench.json"
    out.parent.mkdir(exist_ok=True)
    conditions = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    out.write_text(json.dumps({"conditions": conditions, "results": results}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
