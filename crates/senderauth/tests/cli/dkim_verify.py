"""Verifies the DKIM signatures of a message with dkimpy, resolving keys the way a receiver's
resolver would: a name in the platform's zone from the platform's DNS server; any other name
(a customer's selector) from the customer's DNS server, following its CNAME into the platform's.

usage: dkim_verify.py MESSAGE_FILE CUSTOMER_DNS PLATFORM_DNS PLATFORM_ZONE
  *_DNS  IP:PORT
Prints "pass d=DOMAIN s=SELECTOR a=ALGORITHM" for each signature that verifies, or "fail: ...",
then (with authheaders installed) the DMARC result, "dmarc=pass ... header.from=...", and exits 0
when every signature verifies.
"""
import sys

import dkim
import dns.flags
import dns.message
import dns.query
import dns.rdatatype


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def ask(server, name, kind):
    """One DNS question to server (host, port): over UDP, again over TCP when truncated."""
    query = dns.message.make_query(name, kind, use_edns=0, payload=1232)
    answer = dns.query.udp(query, server[0], port=server[1], timeout=3)
    if answer.flags & dns.flags.TC:
        answer = dns.query.tcp(query, server[0], port=server[1], timeout=3)
    return answer


def main():
    path, customer, platform, zone = sys.argv[1:5]
    customer, platform = address(customer), address(platform)
    zone = zone.lower().rstrip(".")

    def texts(server, name):
        return [
            b"".join(record.strings)
            for rrset in ask(server, name, "TXT").answer
            if rrset.rdtype == dns.rdatatype.TXT
            for record in rrset
        ]

    def dnsfunc(name, timeout=5):
        name = (name.decode() if isinstance(name, bytes) else name).lower().rstrip(".")
        if name == zone or name.endswith("." + zone):
            found = texts(platform, name)
        else:
            target = None
            for rrset in ask(customer, name, "TXT").answer:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    target = rrset[0].target.to_text()
            found = texts(platform, target) if target else texts(customer, name)
        return found[0] if found else None

    message = open(path, "rb").read()
    signatures = message.count(b"DKIM-Signature:")
    if signatures == 0:
        print("fail: no DKIM-Signature")
        return 1
    verifier = dkim.DKIM(message)
    ok = True
    for index in range(signatures):
        if verifier.verify(idx=index, dnsfunc=dnsfunc):
            tags = verifier.signature_fields
            print("pass d=%s s=%s a=%s" % (tags[b"d"].decode(), tags[b"s"].decode(), tags[b"a"].decode()))
        else:
            print("fail: signature %d does not verify" % index)
            ok = False
    # DMARC as a receiver evaluates it (authheaders, PyPI): the From domain's policy, passed by
    # an aligned DKIM signature.
    try:
        import authheaders
    except ImportError:
        return 0 if ok else 1

    def dmarc_dnsfunc(name, timeout=5):
        found = dnsfunc(name, timeout)
        return found.decode() if found else None

    dkim_result = authheaders.check_dkim(message, dnsfunc=dnsfunc)
    print(str(authheaders.check_dmarc(message, dkim_result=dkim_result, dnsfunc=dmarc_dnsfunc)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
