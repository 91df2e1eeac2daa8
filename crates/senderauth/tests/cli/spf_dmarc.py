"""Evaluates a relayed message as a receiver would, with SPF by Debian's pyspf (python3-spf) and
DMARC by authheaders (PyPI): names in the platform's zone asked of the platform's DNS server,
any other name of the customer's (CNAMEs followed from one to the other, as a resolver would).

usage: spf_dmarc.py MESSAGE_FILE CUSTOMER_DNS PLATFORM_DNS PLATFORM_ZONE MAIL_FROM IP [IP...]
  *_DNS  IP:PORT
Prints "spf IP RESULT" for MAIL_FROM from each IP (pyspf's check2), then the
Authentication-Results authheaders writes for the message from the first IP with MAIL_FROM.
"""
import importlib.util
import sys

import dns.flags
import dns.message
import dns.query
import dns.rdatatype

# Debian's pyspf, under its module name, before authheaders imports it.
spec = importlib.util.spec_from_file_location("spf", "/usr/lib/python3/dist-packages/spf.py")
spf = importlib.util.module_from_spec(spec)
sys.modules["spf"] = spf
spec.loader.exec_module(spf)

import authheaders  # noqa: E402


def address(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main():
    path, customer, platform, zone, mail_from = sys.argv[1:6]
    ips = sys.argv[6:]
    customer, platform = address(customer), address(platform)
    zone = zone.lower().rstrip(".")

    def server_for(name):
        return platform if name == zone or name.endswith("." + zone) else customer

    def ask(name, kind):
        name = name.lower().rstrip(".")
        server = server_for(name)
        query = dns.message.make_query(name, kind, use_edns=0, payload=1232)
        answer = dns.query.udp(query, server[0], port=server[1], timeout=3)
        if answer.flags & dns.flags.TC:
            answer = dns.query.tcp(query, server[0], port=server[1], timeout=3)
        return answer

    def lookup(name, qtype, strict=True, timeout=30):
        """pyspf's DNSLookup: the records at name (its CNAME too, which pyspf follows)."""
        name = str(name).lower().rstrip(".")
        found = []
        for rrset in ask(name, qtype).answer:
            owner = rrset.name.to_text(True).lower()
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.CNAME:
                    found.append(((owner, "CNAME"), rdata.target.to_text(True)))
                elif rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                    found.append(((owner, qtype), rdata.address))
                elif rrset.rdtype == dns.rdatatype.MX:
                    found.append(((owner, qtype), (rdata.preference, rdata.exchange)))
                elif rrset.rdtype == dns.rdatatype.TXT:
                    found.append(((owner, qtype), list(rdata.strings)))
                elif rrset.rdtype == dns.rdatatype.PTR:
                    found.append(((owner, qtype), rdata.target.to_text(True)))
        return found

    spf.DNSLookup = lookup

    def txt(name, timeout=5):
        """A TXT record for dkimpy and authheaders, CNAMEs followed."""
        name = (name.decode() if isinstance(name, bytes) else name).lower().rstrip(".")
        for _ in range(8):
            records = lookup(name, "TXT")
            cname = next((value for key, value in records if key[1] == "CNAME"), None)
            texts = [b"".join(value) for key, value in records if key[1] == "TXT"]
            if texts:
                return texts[0]
            if not cname:
                return None
            name = cname.lower().rstrip(".")
        return None

    def dmarc_txt(name, timeout=5):
        found = txt(name, timeout)
        return found.decode() if found else None

    for ip in ips:
        result, explanation = spf.check2(i=ip, s=mail_from, h="gateway.test")
        print("spf %s %s" % (ip, result))
    message = open(path, "rb").read()
    header = authheaders.authenticate_message(
        message,
        "receiver.test",
        spf=True,
        dkim=True,
        dmarc=True,
        ip=ips[0],
        mail_from=mail_from,
        helo="gateway.test",
        dnsfunc=dmarc_txt,
    )
    print(header)
    return 0


if __name__ == "__main__":
    sys.exit(main())
