#!/usr/bin/env python3
"""SMTP load for the DMARC report listener: COUNT distinct report messages (each a gzip report
attached to a mail message, as receivers send them, a different report id each), sent over
CONNECTIONS sessions at once. Prints one JSON line: messages, messages per second, latency p50
and p99 in ms from the end of DATA (the CRLF.CRLF written) to the reply, and replies other than
250.

Usage: dmarc-ingest.py HOST:PORT RCPT COUNT CONNECTIONS DOMAIN
"""
import asyncio
import base64
import gzip
import json
import sys
import time


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


async def reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the listener closed the connection")
        if line[3:4] != b"-":
            return line


async def session(host, port, rcpt, messages, latencies, failures):
    reader, writer = await asyncio.open_connection(host, port)
    await reply(reader)
    writer.write(b"EHLO load.example\r\n")
    await reply(reader)
    for message in messages:
        writer.write(f"MAIL FROM:<noreply@receiver.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for _ in range(3):
            line = await reply(reader)
            if line[:3] not in (b"250", b"354"):
                failures.append(line.decode(errors="replace").strip())
        writer.write(message + b"\r\n.\r\n")
        sent = time.perf_counter()
        line = await reply(reader)
        latencies.append(time.perf_counter() - sent)
        if not line.startswith(b"250"):
            failures.append(line.decode(errors="replace").strip())
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


async def main():
    address, rcpt, count, connections, domain = sys.argv[1:6]
    host, port = address.rsplit(":", 1)
    count, connections = int(count), int(connections)
    messages = [report(number, domain) for number in range(count)]
    shares = [messages[index::connections] for index in range(connections)]
    latencies, failures = [], []
    started = time.perf_counter()
    await asyncio.gather(*(session(host, int(port), rcpt, share, latencies, failures) for share in shares))
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(json.dumps({
        "messages": count,
        "per_second": round(count / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
    }))


asyncio.run(main())
