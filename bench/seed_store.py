#!/usr/bin/env python3
"""Fills an empty senderauth store (schema made by `senderauth serve`) with the service
benchmark's data: ACCOUNTS accounts with one API token each, the domains of DOMAINS_JSONL (made by
gen_zone.py with the same ACCOUNTS), each verified a day ago with one status change in its history,
and every domain due for its recheck now (the most overdue by up to an hour).

Usage: seed_store.py DOMAINS_JSONL ACCOUNTS sqlite:PATH|postgres://... TARGETS

With SEED_KEYS=1 every domain also gets its two hosted DKIM keys (the first active, the second on
standby) and its SPF include host, as connecting it through the API would, named as the default
configuration names them; the public keys are real RSA-2048 keys (a pool of 64 made with openssl,
reused), the sealed private halves placeholders (the DNS server never opens them). With
SEED_NOT_DUE=1 no domain is due for a check for 30 days (the DNS benchmark wants the verifier idle).

Writes TARGETS: "token<TAB>domain" lines for a random 100,000 of the domains (or all), for the load
generator (bench/api-load.lua). PostgreSQL is filled with psql's COPY; SQLite with Python's sqlite3.
"""
import hashlib
import io
import json
import random
import sqlite3
import subprocess
import sys
import time

DAY = 86400


def token(account):
    return f"bench-{account}-" + hashlib.sha256(f"senderauth-bench-{account}".encode()).hexdigest()[:32]


def public_keys(count):
    """Real RSA-2048 public keys (SubjectPublicKeyInfo, base64), made with openssl."""
    import base64
    keys = []
    for _ in range(count):
        private = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                                 check=True, capture_output=True).stdout
        public = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=private,
                                check=True, capture_output=True).stdout
        keys.append(base64.b64encode(public).decode())
    return keys


def rows(domains_path, accounts, now):
    """Yields (table, columns, rows) in insertion order."""
    import os
    with_keys = os.environ.get("SEED_KEYS") == "1"
    due_offset = 30 * DAY if os.environ.get("SEED_NOT_DUE") == "1" else 0
    yield "accounts", ("id", "name", "created_at"), ((a, f"bench account {a}", now - 90 * DAY) for a in range(1, accounts + 1))
    yield "api_tokens", ("account_id", "label", "token_hash", "created_at"), (
        (a, "bench", hashlib.sha256(token(a).encode()).digest(), now - 90 * DAY) for a in range(1, accounts + 1)
    )

    def domains():
        with open(domains_path, encoding="utf-8") as lines:
            for index, line in enumerate(lines):
                entry = json.loads(line)
                status = "partially_verified" if entry["setup"] == "dkim_only" else "verified"
                yield index + 1, int(entry["account"]), entry["domain"], status

    connected = now - 30 * DAY
    columns = ("id", "account_id", "domain", "status", "created_at", "setup_started_at", "last_checked_at", "next_check_at")
    if with_keys:
        yield "domains", columns + ("spf_include",), (
            (i, a, d, s, connected, connected, now - DAY, now - i % 3600 + due_offset, f"{a}.spf.esp.example")
            for i, a, d, s in domains()
        )
        pool = public_keys(64)
        placeholder = b"placeholder: not a sealed key"
        yield "dkim_keys", (
            "domain_id", "selector", "name", "algorithm", "public_key", "private_key", "master_key_id", "state",
            "created_at", "active_at",
        ), (
            (i, f"sa{n}-{a}", f"sa{n}-{a}.{d.replace('-', '--').replace('.', '-')}.dkim.esp.example", "rsa-2048", pool[(2 * i + n) % 64],
             placeholder, "bench", "active" if n == 1 else "standby", connected, connected if n == 1 else None)
            for i, a, d, _ in domains() for n in (1, 2)
        )
    else:
        yield "domains", columns, ((i, a, d, s, connected, connected, now - DAY, now - i % 3600 + due_offset)
                                   for i, a, d, s in domains())
    yield "status_events", ("domain_id", "at", "from_status", "to_status", "event"), (
        (i, connected + 600, "not_verified", s, "domain." + s) for i, _, _, s in domains()
    )


def seed_sqlite(path, tables):
    database = sqlite3.connect(path)
    database.execute("PRAGMA journal_mode = WAL")
    for table, columns, values in tables:
        database.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", values
        )
    database.commit()
    database.execute("ANALYZE")
    database.close()


def seed_postgres(url, tables):
    def copy(table, columns, values):
        buffer = io.StringIO()
        for row in values:
            buffer.write("\t".join("\\\\x" + v.hex() if isinstance(v, bytes) else ("\\N" if v is None else str(v))
                                    for v in row) + "\n")
        subprocess.run(
            ["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", f"COPY {table} ({', '.join(columns)}) FROM STDIN"],
            input=buffer.getvalue(), text=True, check=True,
        )

    for table, columns, values in tables:
        if "id" in columns:
            # Identity columns are GENERATED ALWAYS: take the given ids, then move the sequence on.
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                            f"ALTER TABLE {table} ALTER COLUMN id SET GENERATED BY DEFAULT"], check=True)
            copy(table, columns, values)
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c",
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table})); "
                            f"ALTER TABLE {table} ALTER COLUMN id SET GENERATED ALWAYS"], check=True,
                           stdout=subprocess.DEVNULL)
        else:
            copy(table, columns, values)
    subprocess.run(["psql", "-q", url, "-c", "VACUUM ANALYZE"], check=True)


def main():
    domains_path, accounts, url, targets_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    now = int(time.time())
    started = time.monotonic()
    tables = rows(domains_path, accounts, now)
    if url.startswith("sqlite:"):
        seed_sqlite(url.removeprefix("sqlite://").removeprefix("sqlite:"), tables)
    else:
        seed_postgres(url, tables)
    rng = random.Random(8080)
    with open(domains_path, encoding="utf-8") as lines:
        total = sum(1 for _ in lines)
        sample = sorted(rng.sample(range(total), min(total, 100_000)))
    with open(domains_path, encoding="utf-8") as lines, open(targets_path, "w", encoding="utf-8") as targets:
        wanted = iter(sample)
        next_index = next(wanted, None)
        for index, line in enumerate(lines):
            if index == next_index:
                entry = json.loads(line)
                targets.write(f"{token(int(entry['account']))}\t{entry['domain']}\n")
                next_index = next(wanted, None)
    print(f"seeded {url.split(':')[0]} in {time.monotonic() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
