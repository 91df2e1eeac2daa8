#!/usr/bin/env python3
"""SMTP load for the gateway benchmark: CONNECTIONS sessions, each signed in with the account
token, send FROM's messages of SIZE bytes for SECONDS, pipelined (a message's content and the
next MAIL/RCPT/DATA in one write). Prints one JSON line: messages sent, messages per second,
latency p50/p99 in ms (from the write carrying a message's MAIL to the reply to the message, which
the gateway gives once the upstream has it), and replies other than 250.

Usage: smtp-load.py HOST:PORT TOKEN FROM SIZE SECONDS CONNECTIONS
"""
import asyncio
import base64
import json
import sys
import time


async def reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the gateway closed the connection")
        if line[3:4] != b"-":
            return line


async def session(host, port, token, sender, message, deadline, latencies, failures):
    reader, writer = await asyncio.open_connection(host, port)
    await reply(reader)
    writer.write(b"EHLO load.example\r\n")
    await reply(reader)
    plain = base64.b64encode(b"\0load\0" + token.encode()).decode()
    writer.write(f"AUTH PLAIN {plain}\r\n".encode())
    if not (await reply(reader)).startswith(b"235"):
        raise SystemExit("authentication failed")
    envelope = f"MAIL FROM:<{sender}>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n".encode()
    # Pipelined as RFC 2920 allows: a message's content, then the next transaction's MAIL, RCPT
    # and DATA, in one write.
    started = time.monotonic()
    writer.write(envelope)
    for _ in range(3):
        await reply(reader)
    while True:
        more = time.monotonic() < deadline
        writer.write(message + envelope if more else message)
        answer = await reply(reader)
        now = time.monotonic()
        latencies.append(now - started)
        started = now
        if not answer.startswith(b"250"):
            failures.append(answer.decode(errors="replace").strip())
        if not more:
            break
        for _ in range(3):
            await reply(reader)
    writer.write(b"QUIT\r\n")
    writer.close()


async def main():
    address, token, sender, size, seconds, connections = sys.argv[1:7]
    host, port = address.rsplit(":", 1)
    size, seconds, connections = int(size), float(seconds), int(connections)
    head = f"From: Load <{sender}>\r\nTo: someone@example.net\r\nSubject: load\r\nMessage-ID: <load@bench.example>\r\n\r\n"
    line = "The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    message = (head + body + ".\r\n").encode()
    latencies, failures = [], []
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(session(host, int(port), token, sender, message, deadline, latencies, failures)
                           for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else None
    print(json.dumps({"messages": len(latencies), "per_second": round(len(latencies) / elapsed),
                      "p50_ms": pick(0.50), "p99_ms": pick(0.99), "size": len(message) - 3,
                      "failures": len(failures), "first_failure": failures[0] if failures else None}))


asyncio.run(main())
