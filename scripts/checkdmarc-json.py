#!/usr/bin/env python3
"""Runs checkdmarc's SPF and DMARC checks against one nameserver and prints JSON Lines.

Usage: checkdmarc-json.py --nameserver IP:PORT [--processes N] (DOMAIN... | --input FILE)

Each output line: {"domain", "spf_valid", "spf_lookups", "spf_void_lookups", "spf_error",
"dmarc_valid", "dmarc_location", "dmarc_record", "dmarc_error"}. Used by the second-opinion test
and by bench/verify.sh.
"""
import argparse
import json
import multiprocessing
import sys
import time

import checkdmarc.dmarc
import checkdmarc.spf
import dns.resolver

RESOLVER = None


def make_resolver(nameserver):
    host, _, port = nameserver.rpartition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host.strip("[]")]
    resolver.port = int(port)
    resolver.timeout = 2.0
    resolver.lifetime = 4.0
    resolver.cache = None
    return resolver


def init(nameserver):
    global RESOLVER
    RESOLVER = make_resolver(nameserver)


def check(domain):
    spf = checkdmarc.spf.check_spf(domain, resolver=RESOLVER, timeout=2.0)
    dmarc = checkdmarc.dmarc.check_dmarc(domain, resolver=RESOLVER, timeout=2.0)
    return {
        "domain": domain,
        "spf_valid": bool(spf.get("valid")),
        "spf_lookups": spf.get("dns_lookups"),
        "spf_void_lookups": spf.get("void_dns_lookups"),
        "spf_error": spf.get("error"),
        "dmarc_valid": bool(dmarc.get("valid")),
        "dmarc_location": dmarc.get("location"),
        "dmarc_record": dmarc.get("record"),
        "dmarc_error": dmarc.get("error"),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nameserver", required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--input")
    parser.add_argument("domains", nargs="*")
    args = parser.parse_args()
    domains = list(args.domains)
    if args.input:
        with open(args.input, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line:
                    domains.append(json.loads(line)["domain"] if line.startswith("{") else line.split(",")[0])
    started = time.monotonic()
    out = sys.stdout
    if args.processes > 1:
        with multiprocessing.Pool(args.processes, initializer=init, initargs=(args.nameserver,)) as pool:
            for result in pool.imap_unordered(check, domains, chunksize=16):
                out.write(json.dumps(result) + "\n")
    else:
        init(args.nameserver)
        for domain in domains:
            out.write(json.dumps(check(domain)) + "\n")
    elapsed = time.monotonic() - started
    print(
        f"checkdmarc: checked {len(domains)} domains in {elapsed:.1f}s ({len(domains) / max(elapsed, 0.001):.1f} domains/s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
