"""Signs a message with a DKIM private key and verifies it with dkimpy, resolving the key the
way a receiver's resolver would: the selector's CNAME from the customer's DNS server, then the
key at the CNAME's target from the platform's DNS server.

usage: dkim_sign_verify.py KEY_FILE ALGORITHM SELECTOR DOMAIN CUSTOMER_DNS PLATFORM_DNS
  KEY_FILE     a PKCS#8 PEM (rsa-sha256) or the base64 of an Ed25519 seed (ed25519-sha256)
  ALGORITHM    rsa-sha256 or ed25519-sha256
  *_DNS        IP:PORT
Prints "pass" or "fail: ..." and exits 0 or 1.
"""
import sys

import dkim
import dns.rdatatype

from dkim_verify import address, ask


def main():
    key_file, algorithm, selector, domain, customer, platform = sys.argv[1:7]
    customer, platform = address(customer), address(platform)

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        target = None
        for rrset in ask(customer, name, "TXT").answer:
            if rrset.rdtype == dns.rdatatype.CNAME:
                target = rrset[0].target.to_text()
        if target is None:
            return None
        texts = [
            b"".join(record.strings)
            for rrset in ask(platform, target, "TXT").answer
            if rrset.rdtype == dns.rdatatype.TXT
            for record in rrset
        ]
        return texts[0] if texts else None

    private_key = open(key_file, "rb").read().strip()
    message = (
        b"From: Shop <news@" + domain.encode() + b">\r\n"
        b"To: someone@example.net\r\n"
        b"Subject: signed with a key senderauth holds\r\n"
        b"Message-ID: <1@" + domain.encode() + b">\r\n"
        b"\r\n"
        b"Hello.\r\n"
    )
    signature = dkim.sign(
        message,
        selector.encode(),
        domain.encode(),
        private_key,
        signature_algorithm=algorithm.encode(),
        include_headers=[b"from", b"to", b"subject", b"message-id"],
    )
    if dkim.verify(signature + message, dnsfunc=dnsfunc):
        print("pass")
        return 0
    print("fail: dkimpy did not verify the signature")
    return 1


if __name__ == "__main__":
    sys.exit(main())
