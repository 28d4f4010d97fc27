#!/usr/bin/env bash
# A real Flower 1.42 deployment on this machine, with SuperNodes killed mid-round.
#
# Starts one SuperLink and NODES (>= 10) SuperNodes as separate processes on loopback, provisions
# every node's Ed25519 key and the operator's roster, builds a wheel of this repository that the
# example app (examples/flower) depends on, and runs the app with `flwr run` in verify mode:
#   round 1: one SuperNode is SIGKILLed at the share stage and one at the consistency stage;
#            the round must complete with the exact weighted sum of the surviving nodes' vectors;
#   round 2: just enough SuperNodes are SIGKILLed at the masked stage that the round must abort;
#   round 3: training goes on with the nodes left and must complete exactly again.
# Every process it started is stopped on exit (each SuperNode runs in its own process group,
# with the SuperExec and ClientApp processes it spawns). The last line of output is one JSON object:
#   {"nodes", "killed", "rounds_completed", "rounds_aborted", "max_abs_error", "seconds", ...}
# and the exit status is 0 only if every check held.
#
# --insecure: this runs plain HTTP on 127.0.0.1. A production deployment needs TLS on the SuperLink
# (--ssl-certfile/--ssl-keyfile/--ssl-ca-certfile, --root-certificates on SuperNodes), SuperNode
# authentication (--enable-supernode-auth), and the roster distributed out of band (see docs/flower.md).
#
# Usage: scripts/flower-deployment.sh [NODES] (default 10). Took 390-490 s on 2 loaded cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODES=${1:-10}
# Seconds a stage waits for silent nodes. Every message starts a fresh ClientApp process on its
# SuperNode, which takes tens of seconds on a loaded 2-core machine; the SuperLink reports a killed
# SuperNode as unavailable once its heartbeats stop (within about 60 s), which ends the wait early.
STAGE_TIMEOUT=${STAGE_TIMEOUT:-90}
[ "$NODES" -ge 10 ] || { echo "error: NODES must be at least 10" >&2; exit 2; }
START=$(date +%s.%N)

scripts/bootstrap.sh
VENV=$ROOT/.venv
export PATH=$VENV/bin:$PATH  # the SuperLink and SuperNodes spawn flower-superexec from PATH

WORK=$(mktemp -d /tmp/secagg-flower-XXXXXX)
export FLWR_HOME=$WORK/flwr-home
PGIDS=()
cleanup() {
    local status=$?
    for pg in "${PGIDS[@]}"; do kill -TERM -- "-$pg" 2>/dev/null || true; done
    sleep 1
    for pg in "${PGIDS[@]}"; do kill -KILL -- "-$pg" 2>/dev/null || true; done
    [ -n "${KILLER_PID:-}" ] && kill "$KILLER_PID" 2>/dev/null || true
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
    exit $status
}
trap cleanup EXIT INT TERM

# Starts a command in a process group of its own; its pgid goes to PGIDS and to $LAST_PG.
spawn() {
    local log=$1; shift
    setsid "$@" >"$log" 2>&1 &
    LAST_PG=$!
    disown "$LAST_PG"  # no job notices after the JSON line
    PGIDS+=("$LAST_PG")
}

# --- the wheel the app depends on (rebuilt only when the sources change) -----------------------
stamp=$(cat pyproject.toml setup.py $(git ls-files secagg fl csrc | sort) | sha256sum | cut -c1-16)
WHEELS=$ROOT/build/flower-wheel/$stamp
if ! ls "$WHEELS"/secagg-*.whl >/dev/null 2>&1; then
    rm -rf "$ROOT/build/flower-wheel"
    mkdir -p "$WHEELS"
    "$VENV/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WHEELS" . >&2
fi
WHEEL=$(ls "$WHEELS"/secagg-*.whl | head -1)

# --- the app, pointed at the wheel and at this deployment's SuperLink ---------------------------
read -r LINK_PORT NODE_PORTS <<<"$("$VENV/bin/python" - "$NODES" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]) + 1)]
for s in socks:
    s.bind(("127.0.0.1", 0))
ports = [s.getsockname()[1] for s in socks]
print(ports[0], ",".join(map(str, ports[1:])))
EOF
)"
IFS=, read -r -a NODE_PORT <<<"$NODE_PORTS"
APP=$WORK/app
cp -r examples/flower "$APP"
sed -i "s|^    \"secagg\",|    \"secagg @ file://$WHEEL\",|; s|address = \"127.0.0.1:8000\"|address = \"127.0.0.1:$LINK_PORT\"|" \
    "$APP/pyproject.toml"
grep -q "secagg @ file://" "$APP/pyproject.toml" || { echo "error: could not point the app at the wheel" >&2; exit 1; }

# --- identities: each node's key, and the roster the operator hands to every node ---------------
KEYS=$WORK/keys
CONTROL=$WORK/control
mkdir -p "$KEYS" "$CONTROL"
for i in $(seq 0 $((NODES - 1))); do
    "$VENV/bin/python" -m secagg.flower keygen --id "site-$i" --out "$KEYS/site-$i.json" >>"$KEYS/entries.jsonl"
done
"$VENV/bin/python" -m secagg.flower roster --out "$KEYS/roster.json" "$KEYS/entries.jsonl" 2>/dev/null

# --- SuperLink and SuperNodes -------------------------------------------------------------------
wait_port() {  # wait_port PORT SECONDS
    "$VENV/bin/python" - "$1" "$2" <<'EOF'
import socket, sys, time
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
}
spawn "$WORK/superlink.log" flower-superlink --insecure --host 127.0.0.1 --port "$LINK_PORT"
wait_port "$LINK_PORT" 60 || { echo "error: the SuperLink did not start; see below" >&2; tail -20 "$WORK/superlink.log" >&2; exit 1; }
declare -A NODE_PG
for i in $(seq 0 $((NODES - 1))); do
    spawn "$WORK/supernode-$i.log" flower-supernode --insecure --superlink "127.0.0.1:$LINK_PORT" \
        --host 127.0.0.1 --port "${NODE_PORT[$i]}" \
        --node-config "partition-id=$i num-partitions=$NODES secagg-id=\"site-$i\" secagg-key=\"$KEYS/site-$i.json\" secagg-roster=\"$KEYS/roster.json\""
    NODE_PG[site-$i]=$LAST_PG
done

# --- the killer: the ServerApp asks (kill-ID.req) at the stage it wants, we SIGKILL and confirm ---
killer() {
    while true; do
        for req in "$CONTROL"/kill-*.req; do
            [ -e "$req" ] || continue
            id=$(cat "$req"); pg=${NODE_PG[$id]:-}
            if [ -n "$pg" ]; then
                kill -KILL -- "-$pg" 2>/dev/null || true
                while ps -o stat= -p "$pg" 2>/dev/null | grep -qv '^Z'; do sleep 0.05; done
                echo "killed $id (process group $pg)" >&2
            fi
            mv "$req" "${req%.req}.done"
        done
        sleep 0.1
    done
}
killer &
KILLER_PID=$!
disown "$KILLER_PID"

# --- the run ------------------------------------------------------------------------------------
RUN_CONFIG="mode=\"verify\" num-server-rounds=3 verify-length=1000 timeout=$STAGE_TIMEOUT train-timeout=$STAGE_TIMEOUT"
RUN_CONFIG+=" control-dir=\"$CONTROL\" kill-plan=\"1:share:1,1:consistency:1,2:masked:abort\""
if ! timeout 900 flwr run "$APP" local-deployment --stream --run-config "$RUN_CONFIG" >"$WORK/run.log" 2>&1; then
    echo "error: flwr run failed; its log ends with:" >&2; tail -30 "$WORK/run.log" >&2
fi
kill "$KILLER_PID" 2>/dev/null || true

"$VENV/bin/python" - "$CONTROL/result.json" "$NODES" "$START" <<'EOF'
import json, sys, time
path, nodes, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    result = json.load(open(path))
except (OSError, ValueError) as exc:
    print(json.dumps({"nodes": nodes, "killed": 0, "rounds_completed": 0, "rounds_aborted": 0,
                      "max_abs_error": None, "seconds": round(time.time() - start, 1), "ok": False,
                      "error": f"no result from the ServerApp: {exc}"}))
    sys.exit(1)
rounds = result["rounds"]
done = [r for r in rounds if r["completed"]]
errors = [r["max_abs_error"] for r in done] + [r["weight_error"] for r in done]
checks = {
    "round 1 completed despite 2 kills": len(rounds) > 0 and rounds[0]["completed"],
    "round 2 aborted": len(rounds) > 1 and not rounds[1]["completed"],
    "round 3 completed": len(rounds) > 2 and rounds[2]["completed"],
    "sums exact": bool(done) and max(errors) == 0.0,
}
for name, ok in checks.items():
    print(f"{'ok  ' if ok else 'FAIL'} {name}", file=sys.stderr)
for r in rounds:
    print(f"round {r['round']}: members {r['members']}, completed {r['completed']}, "
          f"dropped {sorted(r['dropped'])}, aborted {r['aborted']}", file=sys.stderr)
print(json.dumps({
    "nodes": nodes, "killed": len(result["killed"]), "rounds_completed": len(done),
    "rounds_aborted": len(rounds) - len(done), "max_abs_error": max(errors) if errors else None,
    "seconds": round(time.time() - start, 1), "ok": all(checks.values()),
    "stage_seconds_round1": {k: round(v, 2) for k, v in rounds[0]["stage_seconds"].items()} if rounds else {},
}))
sys.exit(0 if all(checks.values()) else 1)
EOF
