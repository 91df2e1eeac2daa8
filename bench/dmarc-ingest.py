#!/usr/bin/env python3
"""SMTP load for the DMARC report listener: COUNT distinct report messages (each a gzip report
attached to a mail message, as receivers send them, a different report id each), sent over
CONNECTIONS sessions at once. Prints one JSON line: messages, messages per second, latency p50
and p99 in ms from the end of DATA (the CRLF.CRLF written) to the reply, and replies other than
250.

Usage: dmarc-ingest.py HOST:PORT RCPT COUNT CONNECTIONS DOMAIN
"""
import base64
import gzip
import sys

from inbound_load import run


def report(number, domain):
    begin = 1_796_083_200 + (number % 30) * 86_400
    xml = (
        f'<?xml version="1.0"?><feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0"><version>1.0</version>'
        f"<report_metadata><org_name>receiver{number % 7}.example</org_name><email>noreply@receiver.example</email>"
        f"<report_id>load-{number}</report_id><date_range><begin>{begin}</begin><end>{begin + 86399}</end>"
        f"</date_range></report_metadata><policy_published><domain>{domain}</domain><p>none</p></policy_published>"
    )
    for row in range(3):
        xml += (
            f"<record><row><source_ip>192.0.2.{row + 1}</source_ip><count>{row + 1}</count><policy_evaluated>"
            f"<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>"
            f"<identifiers><header_from>{domain}</header_from></identifiers><auth_results><dkim><domain>{domain}"
            f"</domain><selector>sa1-1</selector><result>pass</result></dkim><spf><domain>{domain}</domain>"
            f"<result>pass</result></spf></auth_results></record>"
        )
    xml += "</feedback>"
    packed = base64.encodebytes(gzip.compress(xml.encode())).replace(b"\n", b"\r\n")
    head = (
        f"From: noreply@receiver.example\r\nTo: dmarc@reports.esp.example\r\nSubject: Report domain: {domain} "
        f"Report-ID: load-{number}\r\nMIME-Version: 1.0\r\nContent-Type: application/gzip\r\n"
        f'Content-Disposition: attachment; filename="receiver!{domain}!{begin}!{begin + 86399}.xml.gz"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + packed


def main():
    address, rcpt, count, connections, domain = sys.argv[1:6]
    messages = [(rcpt, report(number, domain) + b"\r\n") for number in range(int(count))]
    run(address, "noreply@receiver.example", messages, int(connections))


main()
