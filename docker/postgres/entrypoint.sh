#!/bin/sh
# First start: initdb into $PGDATA with the official image's variables, then run the server.
#
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_PASSWORD          its password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_DB                database created at first start (default: $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  auth for TCP clients (default scram-sha-256 with a password)
#
# Arguments starting with "-" are server flags ("-c fsync=off"), as with the official image.
set -eu

if [ "$#" -eq 0 ]; then
    set -- postgres
elif [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    method="${POSTGRES_HOST_AUTH_METHOD:-}"
    if [ -z "$method" ]; then
        if [ -z "${POSTGRES_PASSWORD:-}" ]; then
            echo "error: the database is uninitialised and no superuser password is set." >&2
            echo "Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust for a throw-away test database." >&2
            exit 1
        fi
        method=scram-sha-256
    fi
    pwfile="$(mktemp)"
    printf '%s' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    pwopt=""
    [ -n "${POSTGRES_PASSWORD:-}" ] && pwopt="--pwfile=$pwfile"
    # shellcheck disable=SC2086 # pwopt is one word or empty
    initdb --username="$user" $pwopt --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host="$method" -D "$PGDATA" > /dev/null
    rm -f "$pwfile"
    echo "host all all all $method" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        # Single-user mode: no server to start and stop just to create one database.
        # Its chatter (checkpoint lines) is shown only if it fails.
        if ! out="$(printf 'CREATE DATABASE "%s";\n' "$(printf '%s' "$db" | sed 's/"/""/g')" \
                | postgres --single -D "$PGDATA" postgres 2>&1)"; then
            printf '%s\n' "$out" >&2
            exit 1
        fi
    fi
    echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
