#!/bin/sh
# "redis-server [flags]": without a config file Redis binds every interface but, in protected
# mode, refuses every client that is not on loopback; in a container the clients never are.
# Like the official image, turn protected mode off (later flags still override) and keep no data.
set -eu

if [ "$#" -eq 0 ]; then
    set -- redis-server
elif [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "${2:-}" != --version ] && [ "${2:-}" != -v ] && [ "${2:-}" != --help ]; then
    shift
    set -- redis-server --protected-mode no --save "" --appendonly no "$@"
fi

exec "$@"
