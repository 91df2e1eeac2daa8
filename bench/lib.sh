# Helpers shared by the service benchmarks (bench/service.sh, bench/ui.sh). Source it after
# setting api_port, dns_port and api; admin_token is optional.

install_missing() { # PACKAGE...: installs the Debian packages not installed yet
  local need=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

serve() { # DIR URL [ARGS...]: starts the service, returns once it answers
  local dir=$1 url=$2
  shift 2
  env ${admin_token:+SENDERAUTH_ADMIN_TOKEN=$admin_token} target/release/senderauth serve \
    --listen "127.0.0.1:$api_port" --data-dir "$dir" --database-url "$url" --nameserver "127.0.0.1:$dns_port" "$@" \
    >>"$dir/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 600); do
    curl -sf "$api/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$serve_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/serve.log" >&2
  echo "senderauth serve did not start" >&2
  exit 1
}

stop_serve() {
  kill -TERM "$serve_pid"
  wait "$serve_pid" || true
  serve_pid=""
}

sql() { # BACKEND URL STATEMENT: runs it, prints the first column of the first row
  if [ "$1" = sqlite ]; then
    python3 -c "import sqlite3, sys
database = sqlite3.connect(sys.argv[1], timeout=60)
row = database.execute(sys.argv[2]).fetchone()
database.commit()
print(row[0] if row else '')" "${2#sqlite://}" "$3"
  else
    psql -tA "$2" -c "$3"
  fi
}

milliseconds() { # wrk's latency "1.23ms", "456.00us" or "1.02s" as milliseconds
  awk -v value="$1" 'BEGIN {
    number = value + 0
    if (value ~ /us$/) number /= 1000; else if (value ~ /ms$/) number += 0; else if (value ~ /s$/) number *= 1000
    printf "%.2f", number
  }'
}

wrk_latency() { # WRK_OUTPUT: sets p50 and p99 (ms) and errors (non-2xx responses) from wrk --latency's output
  p50=$(milliseconds "$(awk '$1 == "50%" { print $2 }' "$1")")
  p99=$(milliseconds "$(awk '$1 == "99%" { print $2 }' "$1")")
  errors=$(awk '/Non-2xx or 3xx responses/ { print $NF }' "$1")
}

start_knot() { # ZONE_DIR COUNT ACCOUNTS: generates the customers' zone once (kept between runs),
  # starts Knot on dns_port with it, and arranges for Knot, the service and PostgreSQL
  # (pg_dir) to be stopped on exit
  local zone=$1
  if [ ! -f "$zone/mix.json" ]; then
    echo "== generating $2 domains in $3 accounts"
    mkdir -p "$zone"
    python3 bench/gen_zone.py "$2" "$zone" "$3" >"$zone/mix.json.tmp"
    mv "$zone/mix.json.tmp" "$zone/mix.json"
  fi
  rm -rf "$zone/run" "$zone/db"
  knot_pid=$(scripts/knot.sh start "$zone" "$dns_port")
  serve_pid=""
  pg_dir=""
  trap cleanup EXIT
}

cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
  [ -n "$pg_dir" ] && scripts/postgres.sh stop "$pg_dir"
  kill "$knot_pid" 2>/dev/null || true
}

open_store() { # BACKEND DIR: an empty DIR, and url set to a fresh store of BACKEND (PostgreSQL:
  # a throwaway cluster on pg_port, stopped by close_store or on exit)
  rm -rf "$2" && mkdir -p "$2"
  case "$1" in
  sqlite) url="sqlite://$2/senderauth.db" ;;
  postgres)
    pg_dir=$(mktemp -d /tmp/senderauth-bench-pg.XXXXXX)
    url=$(scripts/postgres.sh start "$pg_dir" "$pg_port" durable)
    ;;
  *) echo "unknown backend $1" >&2 && exit 2 ;;
  esac
}

close_store() { # stops the PostgreSQL cluster open_store started, if any
  if [ -n "$pg_dir" ]; then scripts/postgres.sh stop "$pg_dir" && rm -rf "$pg_dir" && pg_dir=""; fi
}
