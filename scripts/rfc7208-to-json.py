#!/usr/bin/python3
"""Converts the openspf RFC 7208 test suite (YAML, from Debian's python3-spf) to JSON.

Usage: rfc7208-to-json.py [INPUT.yml[.gz]] OUTPUT.json
"""
import gzip
import json
import sys

import yaml

DEFAULT_INPUT = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"


def main():
    args = sys.argv[1:]
    source = args[0] if len(args) == 2 else DEFAULT_INPUT
    target = args[-1]
    opener = gzip.open if source.endswith(".gz") else open
    with opener(source, "rt", encoding="utf-8") as handle:
        scenarios = [doc for doc in yaml.safe_load_all(handle) if doc]
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(scenarios, handle, indent=1, default=str)


if __name__ == "__main__":
    main()
