#!/usr/bin/env python3
"""Writes the DMARC reports of bench/dmarc-summary.sh: ROWS records (default 1,000,000) about
DOMAIN over the 30 days before NOW, from 4 receivers a day (120 reports, gzip XML), with a large
sender's mix: the platform's 50 sending addresses signing with selector sa1-1 (a few failing), 100
forwarders, 200 of the customer's other senders, and spoofing from a pool of 20,000 addresses.
A receiver writes a record per (source, envelope sender, results), so an address has many
records a day.

Usage: dmarc-summary.py OUT_DIR DOMAIN NOW [ROWS]
       dmarc-summary.py seed URL DOMAIN NOW TOKEN    (an account with TOKEN and DOMAIN connected,
                                                     DKIM verified, its selectors sa1-1 and sa2-1)
"""
import hashlib
import subprocess
import gzip
import os
import random
import sys

DAY = 86400
RECEIVERS = [("google.com", "noreply-dmarc-support@google.com"), ("Enterprise Outlook", "dmarcreport@microsoft.com"),
             ("Yahoo", "dmarchelp@yahooinc.com"), ("comcast.net", "dmarc@comcast.net")]


def record(ip, count, dkim, spf, domain, envelope, signatures):
    auth = "".join(f"<dkim><domain>{d}</domain><selector>{s}</selector><result>{r}</result></dkim>"
                   for d, s, r in signatures)
    return (f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated><disposition>none"
            f"</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row><identifiers>"
            f"<envelope_from>{envelope}</envelope_from><header_from>{domain}</header_from></identifiers><auth_results>"
            f"{auth}<spf><domain>{envelope}</domain><result>{spf}</result></spf></auth_results></record>")


def seed(url, domain, now, token):
    keys = ", ".join(f"(1, 'sa{n}-1', 'sa{n}-1.{domain.replace('.', '-')}.dkim.esp.example', 'rsa-2048', 'placeholder', "
                     f"{{blob}}, 'bench', '{'active' if n == 1 else 'standby'}', {now - 40 * DAY}, {now - 40 * DAY})"
                     for n in (1, 2))
    digest = hashlib.sha256(token.encode()).hexdigest()
    statements = [
        f"INSERT INTO accounts (id, name, created_at) VALUES (1, 'bench', {now - 90 * DAY})",
        f"INSERT INTO api_tokens (account_id, label, token_hash, created_at) VALUES (1, 'bench', {{digest}}, {now})",
        f"INSERT INTO domains (id, account_id, domain, status, created_at, setup_started_at, last_checked_at, next_check_at) "
        f"VALUES (1, 1, '{domain}', 'verified', {now - 40 * DAY}, {now - 40 * DAY}, {now - 3600}, {now + 30 * DAY})",
        "INSERT INTO dkim_keys (domain_id, selector, name, algorithm, public_key, private_key, master_key_id, state, "
        f"created_at, active_at) VALUES {keys}",
        "INSERT INTO verification_results (domain_id, checked_at, status, dkim_status, spf_status, dmarc_status, result_json) "
        f"VALUES (1, {now - 3600}, 'verified', 'verified', 'verified', 'verified', '{{}}')",
    ]
    if url.startswith("sqlite:"):
        import sqlite3
        database = sqlite3.connect(url.removeprefix("sqlite://").removeprefix("sqlite:"))
        for statement in statements:
            database.execute(statement.replace("{digest}", "?").replace("{blob}", "X'00'"),
                             (bytes.fromhex(digest),) if "{digest}" in statement else ())
        database.commit()
    else:
        for statement in statements:
            statement = statement.replace("{digest}", f"'\\x{digest}'").replace("{blob}", "'\\x00'")
            # Identity columns are GENERATED ALWAYS: the seeded ids are given on purpose.
            statement = statement.replace(") VALUES (1,", ") OVERRIDING SYSTEM VALUE VALUES (1,")
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", statement], check=True)


def main():
    if sys.argv[1] == "seed":
        seed(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    out, domain, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rows = int(sys.argv[4]) if len(sys.argv) > 4 else 1_000_000
    os.makedirs(out, exist_ok=True)
    rng = random.Random(9990)
    spoofers = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                for _ in range(20_000)]
    per_report = rows // (30 * len(RECEIVERS))
    today = now // DAY
    written = 0
    for day in range(today - 30, today):
        begin = day * DAY
        for number, (org, email) in enumerate(RECEIVERS):
            parts = [f'<?xml version="1.0"?><feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0"><version>1.0</version>'
                     f"<report_metadata><org_name>{org}</org_name><email>{email}</email><report_id>bench-{day}-{number}"
                     f"</report_id><date_range><begin>{begin}</begin><end>{begin + DAY - 1}</end></date_range>"
                     f"</report_metadata><policy_published><domain>{domain}</domain><p>none</p></policy_published>"]
            for row in range(per_report):
                kind = row % 10
                envelope = f"b{row % 97}.{domain}"
                if kind < 2:  # the platform: 192.0.2.0/24, selector sa1-1; one record in 500 failing
                    ip = f"192.0.2.{row % 50 + 1}"
                    ok = row % 500 != 0
                    parts.append(record(ip, rng.randrange(1, 200), "pass" if ok else "fail", "fail", domain, envelope,
                                        [(domain, "sa1-1", "pass" if ok else "fail")]))
                elif kind < 3:  # forwarded: the platform's signature from elsewhere, broken by a list
                    ip = f"198.51.100.{row % 100 + 1}"
                    parts.append(record(ip, rng.randrange(1, 5), "fail", "fail", domain, "list.example.org",
                                        [(domain, "sa1-1", "fail")]))
                elif kind < 5:  # the customer's other senders, passing
                    ip = f"203.0.113.{row % 200 + 1}" if row % 2 else f"2001:db8:77::{row % 200 + 1:x}"
                    parts.append(record(ip, rng.randrange(1, 50), "pass", "pass", domain, envelope,
                                        [(domain, "google", "pass")]))
                else:  # spoofing
                    ip = rng.choice(spoofers)
                    parts.append(record(ip, rng.randrange(1, 3), "fail", "fail", domain, f"x{rng.randrange(999)}.example",
                                        []))
                written += 1
            parts.append("</feedback>")
            with open(f"{out}/{org.split()[0]}!{domain}!{begin}!{begin + DAY - 1}.xml.gz", "wb") as file:
                file.write(gzip.compress("".join(parts).encode(), 1))
    print(f"{written} records in {30 * len(RECEIVERS)} reports", file=sys.stderr)


if __name__ == "__main__":
    main()
