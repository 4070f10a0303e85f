#!/usr/bin/env bash
# Waits until every service of the Compose project is healthy (or, without a
# healthcheck, running; one-shot jobs: exited 0). Compose v1 has no `--wait`.
# Fails at once if a container exits non-zero, and after WAIT_TIMEOUT seconds.
set -euo pipefail

project=${COMPOSE_PROJECT_NAME:?set COMPOSE_PROJECT_NAME}
compose=${COMPOSE:-$(docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)}
deadline=$((SECONDS + ${WAIT_TIMEOUT:-180}))
started=$SECONDS

# Prints "ok", "wait" or "fail" for a container.
state_of() {
  local state
  state=$(docker inspect --format '{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1")
  case "$state" in
    "running "*" healthy" | "running "*" none" | "exited 0 none") echo ok ;;
    "exited "* | "dead "*) echo fail ;;
    *) echo wait ;;
  esac
}

while :; do
  pending=()
  for service in $($compose config --services); do
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$project" \
      --filter "label=com.docker.compose.service=$service")
    if [ -z "$ids" ]; then pending+=("$service"); continue; fi
    for id in $ids; do
      case $(state_of "$id") in
        fail)
          echo "wait-healthy: $service exited with an error; its last log lines:" >&2
          docker logs --tail 30 "$id" >&2
          exit 1 ;;
        wait) pending+=("$service") ;;
      esac
    done
  done
  if [ ${#pending[@]} -eq 0 ]; then
    echo "All services healthy after $((SECONDS - started))s."
    exit 0
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "wait-healthy: not healthy after ${WAIT_TIMEOUT:-180}s: ${pending[*]}" >&2
    $compose ps >&2
    exit 1
  fi
  sleep 2
done
