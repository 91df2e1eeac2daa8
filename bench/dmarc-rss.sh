#!/usr/bin/env bash
# Benchmark: peak memory while one 200 MB (uncompressed) DMARC report is stored, and how fast a
# bomb is refused. The report (about 480,000 records, gzip) is made here; `senderauth dmarc
# import` stores it into a fresh SQLite store through the same intake as the report listener
# (a blocking parser thread streaming batches to one transaction); GNU time reads the peak RSS.
#
# Usage: bench/dmarc-rss.sh [MEGABYTES]      (200 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
megabytes=${1:-200}
source bench/lib.sh
install_missing time
cargo build --release --locked -p senderauth >/dev/null 2>&1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/big.xml.gz" "$megabytes" <<'PY'
import gzip, sys
path, megabytes = sys.argv[1], int(sys.argv[2])
record = ('<record><row><source_ip>198.51.100.{i}</source_ip><count>{c}</count><policy_evaluated><disposition>none'
          '</disposition><dkim>fail</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>'
          'shop.example.com</header_from></identifiers><auth_results><dkim><domain>shop.example.com</domain><selector>'
          's{i}</selector><result>fail</result></dkim><spf><domain>shop.example.com</domain><result>pass</result></spf>'
          '</auth_results></record>\n')
head = ('<?xml version="1.0"?><feedback><report_metadata><org_name>big.example</org_name><email>r@big.example</email>'
        '<report_id>big-1</report_id><date_range><begin>1796083200</begin><end>1796169599</end></date_range>'
        '</report_metadata><policy_published><domain>shop.example.com</domain><p>none</p></policy_published>\n')
with gzip.open(path, 'wt', compresslevel=6) as out:
    out.write(head)
    size, count = len(head), 0
    while size < megabytes * 1024 * 1024:
        line = record.format(i=count % 250, c=count % 97 + 1)
        out.write(line)
        size += len(line)
        count += 1
    out.write('</feedback>\n')
print(f"report: {count} records, {size} bytes of XML")
PY
ls -l "$work/big.xml.gz" | awk '{ print "packed: " $5 " bytes" }'
/usr/bin/time -v target/release/senderauth dmarc import --data-dir "$work/data" "$work/big.xml.gz" 2>"$work/time.txt"
grep -E "Maximum resident|Elapsed" "$work/time.txt"
