"""The SMTP load the inbound listeners' benchmarks share (the report address's, the bounce
hosts'): messages sent over CONNECTIONS sessions at once, MAIL/RCPT/DATA pipelined, each
message's latency from the end of DATA (the CRLF.CRLF written) to its reply. `run` prints one
JSON line: messages, messages per second, latency p50 and p99 in ms, and replies other than 250
(the first of them)."""
import asyncio
import json
import time


async def reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the listener closed the connection")
        if line[3:4] != b"-":
            return line


async def session(host, port, mail_from, messages, latencies, failures):
    """One session sending `messages`, each (recipient, bytes without the final dot)."""
    reader, writer = await asyncio.open_connection(host, port)
    await reply(reader)
    writer.write(b"EHLO load.example\r\n")
    await reply(reader)
    for recipient, message in messages:
        writer.write(f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
        for _ in range(3):
            line = await reply(reader)
            if line[:3] not in (b"250", b"354"):
                failures.append(line.decode(errors="replace").strip())
        writer.write(message + b".\r\n")
        sent = time.perf_counter()
        line = await reply(reader)
        latencies.append(time.perf_counter() - sent)
        if not line.startswith(b"250"):
            failures.append(line.decode(errors="replace").strip())
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


def run(address, mail_from, messages, connections):
    """Sends `messages` (recipient, bytes) to HOST:PORT over `connections` sessions; prints the
    JSON line."""
    host, port = address.rsplit(":", 1)
    shares = [messages[index::connections] for index in range(connections)]
    latencies, failures = [], []

    async def all_sessions():
        await asyncio.gather(*(session(host, int(port), mail_from, share, latencies, failures) for share in shares))

    started = time.perf_counter()
    asyncio.run(all_sessions())
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(json.dumps({
        "messages": len(messages),
        "per_second": round(len(messages) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
    }))
