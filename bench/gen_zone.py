#!/usr/bin/env python3
"""Generates the benchmark's DNS data: one root zone for Knot holding the platform's zone and
N customer domains with a realistic mix of correct and broken setups, plus the bulk input.

Usage: gen_zone.py N OUTDIR [ACCOUNTS]

Writes OUTDIR/root.zone, OUTDIR/domains.jsonl, OUTDIR/queries.txt (for dnsperf) and prints the
mix. The platform is senderauth's default configuration: zone esp.example. Without ACCOUNTS each
domain belongs to a random account id in 1..999; with it, domain i belongs to account
i % ACCOUNTS + 1, so every account holds the same number of domains (the service benchmark).
"""
import json
import os
import random
import sys

# A real 2048-bit RSA public key (SubjectPublicKeyInfo, base64), as the platform would publish.
DKIM_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqlfxeWUq21Mdzm+//cUsrys9qVl0CfGq+1RStb8Slj7F"
    "uZeFUmEgF0+GyELbvgOs71IWWBPv/0vqg4x32J21UWFDPxwvqCJun5PgprYNDFFMLqze+oN2OxaXvxINeuAn88mX"
    "8/56iut3u5Fk59SW+ZMlVZ/bxh184/h24VnSD9mwsUP9xZLlZbh9dNfrFsBXwCKiayxbxKpb7ioOYz9cH013/B2w"
    "X9NuyFqzYplFydDXBxzk7I67Y8zp943HJ+sWc42/IPjoQ+2oM5BJpX7+eTzbpiuhSsTb2gzlMTwJgcScQ+En0XFs"
    "GBpywacY+T2/E7uc69xpVSQLlgjvvaROoQIDAQAB"
)

ZONE_HEADER = """$ORIGIN .
$TTL 3600
.\tIN\tSOA\tns.root.bench. hostmaster.root.bench. 1 3600 600 86400 300
.\tIN\tNS\tns.root.bench.
ns.root.bench.\tIN\tA\t127.0.0.1
"""

PLATFORM = "esp.example"


def txt(value):
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks)


def main():
    count = int(sys.argv[1])
    outdir = sys.argv[2]
    account_count = int(sys.argv[3]) if len(sys.argv) > 3 else None
    os.makedirs(outdir, exist_ok=True)
    rng = random.Random(7208)
    records = []
    add = lambda name, rtype, data: records.append(f"{name}.\t300\tIN\t{rtype}\t{data}")

    # Shared third-party includes, shaped like the big mailbox providers' (nested netblocks).
    add("_spf.mailhost.example", "TXT", txt("v=spf1 include:_netblocks1.mailhost.example include:_netblocks2.mailhost.example include:_netblocks3.mailhost.example ~all"))
    for n in range(1, 4):
        blocks = " ".join(f"ip4:198.{n}.{k}.0/24" for k in range(12))
        add(f"_netblocks{n}.mailhost.example", "TXT", txt(f"v=spf1 {blocks} ~all"))
    add("spf.crm.example", "TXT", txt("v=spf1 ip4:203.0.113.0/24 ip6:2001:db8:77::/48 -all"))
    for n in range(1, 10):
        add(f"svc{n}.tools.example", "TXT", txt(f"v=spf1 a:mta{n}.tools.example -all"))
        add(f"mta{n}.tools.example", "A", f"203.0.113.{n}")

    accounts = set()
    kinds = (
        ["verified"] * 40 + ["verified_other_includes"] * 10 + ["dkim_only"] * 10 + ["inherits_dmarc"] * 10
        + ["nothing"] * 8 + ["wrong_cname"] * 4 + ["flattened"] * 4 + ["pass_all"] * 3 + ["no_include"] * 3
        + ["two_spf"] * 3 + ["too_many_lookups"] * 3 + ["syntax_error"] * 2
    )
    mix = {}
    with open(os.path.join(outdir, "domains.jsonl"), "w", encoding="utf-8") as inputs, \
         open(os.path.join(outdir, "queries.txt"), "w", encoding="utf-8") as queries:
        for index in range(count):
            # A stride coprime with len(kinds): every block of 100 has the whole mix, interleaved.
            kind = kinds[(index * 37) % len(kinds)]
            mix[kind] = mix.get(kind, 0) + 1
            account = str(rng.randint(1, 999) if account_count is None else index % account_count + 1)
            accounts.add(account)
            org = f"customer{index}.example"
            domain = f"mail.{org}" if kind == "inherits_dmarc" or index % 5 == 0 else org
            dashed = domain.replace("-", "--").replace(".", "-")
            add(org, "A", "198.51.100.10")
            add(org, "MX", f"10 mx.{org}.")
            add(f"mx.{org}", "A", "198.51.100.25")
            if domain != org:
                add(domain, "A", "198.51.100.11")
            include = f"include:{account}.spf.{PLATFORM}"
            selectors = [f"sa1-{account}", f"sa2-{account}"]
            for selector in selectors:
                add(f"{selector}.{dashed}.dkim.{PLATFORM}", "TXT", txt(f"v=DKIM1; k=rsa; p={DKIM_KEY}"))
            if kind not in ("nothing", "wrong_cname", "flattened"):
                for selector in selectors:
                    add(f"{selector}._domainkey.{domain}", "CNAME", f"{selector}.{dashed}.dkim.{PLATFORM}.")
            if kind == "wrong_cname":
                add(f"{selectors[0]}._domainkey.{domain}", "CNAME", f"s1.dkim.other-esp.example.")
                add(f"{selectors[1]}._domainkey.{domain}", "CNAME", f"{selectors[1]}.{dashed}.dkim.{PLATFORM}.")
            if kind == "flattened":
                for selector in selectors:
                    add(f"{selector}._domainkey.{domain}", "TXT", txt(f"v=DKIM1; k=rsa; p={DKIM_KEY}"))
            spf = {
                "verified": f"v=spf1 mx {include} -all",
                "verified_other_includes": f"v=spf1 include:_spf.mailhost.example include:spf.crm.example {include} ~all",
                "inherits_dmarc": f"v=spf1 {include} -all",
                "flattened": f"v=spf1 {include} -all",
                "wrong_cname": f"v=spf1 {include} -all",
                "pass_all": f"v=spf1 {include} +all",
                "no_include": "v=spf1 mx include:_spf.mailhost.example ~all",
                "too_many_lookups": "v=spf1 " + " ".join(f"include:svc{n}.tools.example" for n in range(1, 10)) + f" {include} -all",
                "syntax_error": f"v=spf1 {include} ip4:192.0.2.256 -all",
            }.get(kind)
            if kind == "two_spf":
                add(domain, "TXT", txt(f"v=spf1 {include} -all"))
                add(domain, "TXT", txt("v=spf1 mx -all"))
            elif spf:
                add(domain, "TXT", txt(spf))
            add(domain, "TXT", txt(f"site-verification={rng.getrandbits(64):016x}"))
            if kind == "inherits_dmarc":
                add(f"_dmarc.{org}", "TXT", txt("v=DMARC1; p=quarantine; sp=none; rua=mailto:dmarc@" + org))
            elif kind not in ("dkim_only", "nothing"):
                add(f"_dmarc.{domain}", "TXT", txt("v=DMARC1; p=none; rua=mailto:dmarc@" + org))
            inputs.write(json.dumps({"domain": domain, "account": account, "setup": kind}) + "\n")
            queries.write(f"{domain} TXT\n_dmarc.{domain} TXT\n{selectors[0]}._domainkey.{domain} CNAME\n")
            queries.write(f"{selectors[0]}.{dashed}.dkim.{PLATFORM} TXT\n")
    for account in sorted(accounts, key=int):
        add(f"{account}.spf.{PLATFORM}", "TXT", txt("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:5::/48 -all"))
    with open(os.path.join(outdir, "root.zone"), "w", encoding="utf-8") as zone:
        zone.write(ZONE_HEADER)
        zone.write("\n".join(records))
        zone.write("\n")
    print(json.dumps({"domains": count, "records": len(records), "mix": mix}))


if __name__ == "__main__":
    main()
