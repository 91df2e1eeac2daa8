#!/usr/bin/env python3
"""SMTP load for the bounce listener: COUNT delivery status notifications (RFC 3464, as Postfix
writes them), each to one of 100 envelope senders `b+ACCOUNT.TOKEN@HOST`, sent over CONNECTIONS
sessions at once from the null sender. The tokens are made as the gateway makes them (the
operator's master key file is at hand: crates/senderauth-service/src/bounces.rs has the format),
for the connected domain DOMAIN_ID, so each bounce is tied to it as a real one would be. Prints
one JSON line: messages, messages per second, latency p50 and p99 in ms from the end of DATA
(the CRLF.CRLF written) to the reply, and replies other than 250.

Usage: bounce-intake.py HOST:PORT MASTER_KEY_FILE ACCOUNT DOMAIN_ID HOST COUNT CONNECTIONS
"""
import base64
import hashlib
import hmac
import os
import sys
import time

from inbound_load import run


def tokens(master_key_file, account, domain_id, count):
    """Bounce tokens as the gateway issues them, under the file's first (current) master key."""
    line = next(line for line in open(master_key_file) if line.strip() and not line.startswith("#"))
    master = base64.b64decode(line.split(":", 1)[1].strip())
    key = hmac.new(master, b"senderauth bounce token v1", hashlib.sha256).digest()
    made = []
    for _ in range(count):
        body = domain_id.to_bytes(8, "big") + int(time.time()).to_bytes(4, "big") + os.urandom(4)
        tag = hmac.new(key, account.to_bytes(8, "big") + body, hashlib.sha256).digest()[:8]
        made.append((body + tag).hex())
    return made


def dsn(number, envelope):
    recipient = f"user{number}@example.net"
    hard = number % 4 != 0
    action, status, reply = (
        ("failed", "5.1.1", f"550 5.1.1 <{recipient}>: Recipient address rejected: User unknown")
        if hard
        else ("delayed", "4.2.2", "452 4.2.2 Mailbox full")
    )
    return (
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: {envelope}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B{number}\"\r\n\r\n"
        f"--B{number}\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\n"
        f"<{recipient}>: host mx.example.net[192.0.2.9] said: {reply} (in reply to RCPT TO command)\r\n\r\n"
        f"--B{number}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n"
        f"X-Postfix-Queue-ID: Q{number}\r\nArrival-Date: Wed, 2 Dec 2026 12:00:00 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\nAction: {action}\r\n"
        f"Status: {status}\r\nRemote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; {reply}\r\n\r\n"
        f"--B{number}\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@shop.example.com\r\n"
        f"To: {recipient}\r\nSubject: News\r\nMessage-ID: <m{number}@shop.example.com>\r\n\r\n--B{number}--\r\n"
    ).encode()


def main():
    address, master_key_file, account, domain_id, envelope_host, count, connections = sys.argv[1:8]
    account = int(account)
    envelopes = [f"b+{account}.{token}@{envelope_host}" for token in tokens(master_key_file, account, int(domain_id), 100)]
    messages = [(envelopes[number % 100], dsn(number, envelopes[number % 100])) for number in range(int(count))]
    run(address, "", messages, int(connections))


main()
