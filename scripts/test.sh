#!/usr/bin/env bash
# Runs every test. Installs what the tests need first (it is safe to run again):
#   Debian: python3-spf (the openspf RFC 7208 test suite), python3-yaml (to read it),
#           postgresql (a throwaway cluster on 127.0.0.1:5433 for the store's tests)
#           knot, knot-dnsutils (Knot DNS receives the dynamic updates; kdig asks the embedded DNS server)
#           chromium, chromium-driver (the web UI's tests, in a headless browser)
#           opendkim-tools (opendkim-testmsg verifies the gateway's signatures), postfix (the
#           gateway's upstream in an end-to-end test, a private instance), dovecot-imapd (the
#           mailbox the DMARC report IMAP pull reads, a private instance), libmail-dmarc-perl (an
#           independent DMARC report generator), swaks (sends a receiver's report message to Postfix),
#           unbound (the recursive resolver a private Postfix finds a return-path's MX through),
#           opendmarc (a second receiver's DMARC check, as a milter in a private Postfix)
#   PyPI, in .venv: checkdmarc, dkimpy (with PyNaCl for Ed25519), authheaders (DMARC),
#   parsedmarc (DMARC reports) and flufl.bounce (bounces), the independent second opinions
# With CI=true, a test whose external tool is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(python3-spf python3-yaml python3-venv postgresql knot knot-dnsutils chromium chromium-driver opendkim-tools postfix
  dovecot-imapd libmail-dmarc-perl swaks unbound opendmarc)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  sudo_prefix=""
  [ "$(id -u)" -eq 0 ] || sudo_prefix="sudo"
  $sudo_prefix apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_prefix apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python_packages=(checkdmarc==6.0.4 dkimpy==1.1.8 pynacl==1.6.2 authheaders==0.16.3 parsedmarc==11.1.0 flufl.bounce==6.0.0)
if ! .venv/bin/python3 -c "import checkdmarc, dkim, nacl, authheaders, parsedmarc, flufl.bounce" >/dev/null 2>&1; then
  echo "== creating .venv with ${python_packages[*]}"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "${python_packages[@]}"
fi

# A PostgreSQL cluster of the tests' own, on loopback, removed when the tests end.
pg_dir=$(mktemp -d /tmp/senderauth-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
SENDERAUTH_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pg_dir" "${SENDERAUTH_TEST_POSTGRES_PORT:-5433}")
export SENDERAUTH_TEST_POSTGRES_URL

echo "== cargo test"
cargo test --workspace --locked "$@"
