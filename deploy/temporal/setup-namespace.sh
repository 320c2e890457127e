#!/bin/sh
# One-shot job (temporalio/admin-tools): the namespace Countersign runs in and its search
# attributes (core/names.ts SEARCH_ATTRIBUTES; test/compose.test.ts keeps this list in step),
# as the embedded dev server gets them from its command line. Safe on every start.
set -eu
namespace=${TEMPORAL_NAMESPACE:-default}
retention=${TEMPORAL_RETENTION:-720h}

# By IP: Go's gRPC resolver also asks DNS for a TXT record, which Docker's DNS on an internal
# network leaves unanswered on some engines (20.10 here) until the client's deadline has passed.
host=${TEMPORAL_ADDRESS%:*}
ip=$(getent hosts "$host" | awk '{ print $1; exit }')
export TEMPORAL_ADDRESS="${ip:-$host}:${TEMPORAL_ADDRESS##*:}"

tries=0
until temporal operator cluster health >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "Temporal at $TEMPORAL_ADDRESS did not become healthy" >&2; exit 1; }
  sleep 2
done

# An existing namespace keeps its retention: change it with `temporal operator namespace update`.
if ! temporal operator namespace describe --namespace "$namespace" >/dev/null 2>&1; then
  temporal operator namespace create --namespace "$namespace" --retention "$retention"
  echo "created namespace $namespace (retention $retention)"
fi

attribute() { # attribute NAME TYPE (a new namespace may take a moment to accept them)
  tries=0
  until out=$(temporal operator search-attribute create --namespace "$namespace" --name "$1" --type "$2" 2>&1) ||
    echo "$out" | grep -qi 'already exists'; do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || { echo "$out" >&2; exit 1; }
    sleep 1
  done
  echo "search attribute $1 ($2) is there"
}
attribute CountersignStatus Keyword
attribute CountersignAwaiting KeywordList
attribute CountersignPlanName Keyword
attribute CountersignAgent Keyword
