#!/usr/bin/env bash
# make up: start private PostgreSQL and Redis, build and start seller-svc and
# buyer-svc, seed demo data and print tokens and example calls. Ctrl-C stops
# everything this script started. Logs are under .data/dev/logs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export SOUK_DATA_DIR="${SOUK_DATA_DIR:-$root/.data/dev}"
stack=internal/devenv/stack.sh

echo "starting PostgreSQL and Redis..."
$stack start
set -a
eval "$($stack env)"
set +a
# Development: the documented development secrets are allowed (and the
# defaults); the services refuse them otherwise.
export SOUK_ENV=development

echo "building the services..."
mkdir -p bin "$SOUK_DATA_DIR/logs"
go build -o bin/ ./buyer-svc ./seller-svc ./internal/devenv/seed

pids=()
stopping=0
# cleanup runs once, as the EXIT trap, whatever ended the script. No trap
# is changed inside a trap: bash ("run_pending_traps: bad value in
# trap_list") could then skip the rest of the handler and leave PostgreSQL
# and Redis running. A signal during the clean-up is ignored, and the
# stack is stopped in a session of its own, so a second Ctrl-C (sent to the
# whole foreground group) cannot cut it short. The script waits for it
# itself: `setsid -w` stays in the foreground group, and a Ctrl-C killed it
# mid-wait, so the script ended while PostgreSQL was still stopping. A
# trapped signal ends a `wait` early, so it waits until the stop is gone.
# The signal's trap calls no function and the clean-up has no local
# variables: a trap that ran a function in the middle of the clean-up's
# wait ended the script there ("pop_var_context: head of shell_variables
# not a function context"), the stack still running.
cleanup() {
	stopping=1
	echo
	echo "stopping..."
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null; do wait "$pid" 2>/dev/null || true; done
	done
	# A signal can still land on the stop before it is in its session of
	# its own (between bash's fork and setsid's call the child takes
	# Ctrl-C as the group does; seen: "stopped." printed, PostgreSQL and
	# Redis still running, when the stop ran once): a stop ended by a
	# signal runs again. Its status is the wait's that saw it end, or, when
	# it ended before any, one's now (a wait a signal cut short counts as
	# cut: the stop runs again, which does no harm).
	stop_tries=0
	while :; do
		setsid "$stack" stop &
		stop_pid=$!
		stop_rc=
		while kill -0 "$stop_pid" 2>/dev/null; do
			stop_rc=0
			wait "$stop_pid" || stop_rc=$?
		done
		if [ -z "$stop_rc" ]; then
			stop_rc=0
			wait "$stop_pid" 2>/dev/null || stop_rc=$?
		fi
		[ "$stop_rc" -gt 128 ] && [ $((stop_tries += 1)) -lt 5 ] || break
		echo "the stop was cut short (status $stop_rc); stopping again..."
	done
	echo "stopped. (make down also deletes the demo data)"
}
# The first signal starts the clean-up (stopping is set before the exit,
# so a signal that lands before cleanup's first line cannot exit from
# inside the EXIT trap, which would end the script there); later ones are
# ignored.
trap 'if [ "$stopping" = 0 ]; then stopping=1; exit 0; fi' INT TERM
trap cleanup EXIT

bin/seller-svc >"$SOUK_DATA_DIR/logs/seller-svc.log" 2>&1 &
pids+=($!)
# buyer-svc migrates too; the migrator's advisory lock makes that safe.
bin/buyer-svc >"$SOUK_DATA_DIR/logs/buyer-svc.log" 2>&1 &
pids+=($!)

if ! bin/seed; then
	echo "the services did not start; their logs:" >&2
	tail -n 20 "$SOUK_DATA_DIR"/logs/*.log >&2
	exit 1
fi
echo "logs: tail -f $SOUK_DATA_DIR/logs/*.log"
rc=0
wait -n "${pids[@]}" || rc=$?
# The services exit 0 when told to stop; anything else is a failure.
[ "$rc" = 0 ] || echo "a service exited with status $rc; see its log under $SOUK_DATA_DIR/logs" >&2
