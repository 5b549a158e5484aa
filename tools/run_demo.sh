#!/usr/bin/env bash
# `make run`: the host LwM2M server in the background, the MicroPython client (compiled tree) in the
# foreground. Ctrl-C reaches the client, which deregisters on SIGINT itself; the EXIT trap then stops
# the server (a background job of a non-interactive shell ignores SIGINT, so it needs a kill).
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-5683}
ENDPOINT=${ENDPOINT:-lwm2m-mpy-demo}
BOARD=${BOARD-unix}        # the board profile: unix = simulated sensors, button, LED, lamp and GNSS; empty: none
HEAP=${HEAP:-160k}         # the unix profile needs about 133-141k on this 64-bit port; a 32-bit board needs far less
CLIENT_ARGS=${CLIENT_ARGS:-}  # more client options, e.g. CLIENT_ARGS="--lifetime 60"
SERVER_ARGS=${SERVER_ARGS:-}  # more server options, e.g. SERVER_ARGS="--observe /3/0/13 --pmax 5"
# The unix profile's simulated room temperature and button, observed unless other server options are given
if [ -z "$SERVER_ARGS" ] && [ "$BOARD" = unix ]; then
  SERVER_ARGS="--observe /3303/0/5700 --observe /3347/0/5501 --pmin 2 --pmax 10"
fi

.venv/bin/python tools/lwm2m_server.py --port "$PORT" $SERVER_ARGS &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# Wait (bounded, 5 s) until the server's UDP port shows up, so the first Register is not lost.
# /proc/net/udp* is Linux only; elsewhere this just waits out the 5 s.
port_hex=$(printf ':%04X ' "$PORT")
for _ in $(seq 50); do
  kill -0 "$server" 2>/dev/null || { echo "run_demo: server exited (port $PORT in use?)" >&2; exit 1; }
  grep -qs "$port_hex" /proc/net/udp /proc/net/udp6 && break
  sleep 0.1
done

# Run from build/mpy: MicroPython puts the current directory first on sys.path, so from the repo root
# it would import the .py sources instead of the compiled tree a board runs. .frozen keeps the
# interpreter's frozen modules (asyncio) importable: MICROPYPATH replaces sys.path.
cd build/mpy
MICROPYPATH=.frozen ../../.venv/bin/micropython -X heapsize="$HEAP" -m lwm2m_mpy \
  --server "coap://$HOST:$PORT" --endpoint "$ENDPOINT" ${BOARD:+--board "$BOARD"} $CLIENT_ARGS
