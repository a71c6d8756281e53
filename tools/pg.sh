#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, in a directory of its own.
#   tools/pg.sh start DIR     create the cluster if needed (database `metrics`, trust auth, only
#                             127.0.0.1 on a random free port, Unix socket inside DIR), start it
#                             and print its DSN on stdout
#   tools/pg.sh stop DIR      stop it (fast shutdown); nothing to do if it is not running
#   tools/pg.sh restart DIR   stop and start the same cluster on the same port
# Installs PostgreSQL from Debian if no server binaries are found. As root the server runs as
# the `postgres` user (initdb refuses root) and DIR is handed to it; otherwise as the caller.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|restart DIR" >&2
    exit 2
}
(($# == 2)) || usage
command=$1
dir=$2
[[ -n "$dir" ]] || usage
data="$dir/data"

find_bin() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
    done
    return 1
}

if ! bin=$(find_bin); then
    echo "pg.sh: installing postgresql" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 ||
        { "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
    bin=$(find_bin) || { echo "pg.sh: no PostgreSQL server binaries after install" >&2; exit 1; }
fi

# Runs a server tool as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() {
    [[ -f "$data/postmaster.pid" ]] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# A port nothing listens on now (the server binding it later may still race: start retries).
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

init_cluster() {
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
        chown postgres: "$dir"
    fi
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale \
        --no-instructions >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    # Throwaway data: durability is not needed, speed is.
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
}

start() {
    [[ -f "$data/PG_VERSION" ]] || init_cluster
    local port attempt
    if ! running; then
        for attempt in 1 2 3 4 5; do
            if [[ -f "$dir/port" ]]; then
                port=$(cat "$dir/port")
            else
                port=$(free_port) || { echo "pg.sh: no free port" >&2; exit 1; }
            fi
            if as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null; then
                echo "$port" >"$dir/port.tmp" && mv "$dir/port.tmp" "$dir/port"
                break
            fi
            # A fresh cluster may have lost a race for its random port: pick another one.
            [[ -f "$dir/port" ]] && { tail -20 "$dir/server.log" >&2; exit 1; }
            ((attempt < 5)) || { tail -20 "$dir/server.log" >&2; exit 1; }
        done
    fi
    port=$(cat "$dir/port")
    local exists
    exists=$("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'metrics'")
    [[ "$exists" == 1 ]] || "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres metrics
    echo "postgres://postgres@127.0.0.1:$port/metrics?sslmode=disable"
}

stop() {
    if running; then
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    fi
}

case "$command" in
start) start ;;
stop) stop ;;
restart) stop && start >/dev/null ;;
*) usage ;;
esac
