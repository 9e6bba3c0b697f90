#!/usr/bin/env bash
# End-to-end proof of tests/engine/engine.sh on the upstream fixture (no mocks):
#   a real dockerd on a private socket, stand-in images for the 13 images of
#   shared/fixtures/upstream-2026-02/docker-compose.yml, compose `up -d` with the override,
#   the rest container's Config.Env and compose labels (docker inspect and the Engine API over
#   the socket with curl), a changed JWT_SECRET reaching rest after `up -d --force-recreate
#   rest`, the health probe of `override --healthy`, `down`, and the engine stopped with
#   nothing left running.
#
#   bash tests/engine/demo.sh            (as root; installs docker.io/busybox-static if missing)
#
# Environment: FIXTURES (default: ../shared/fixtures beside the repository, else
# /work/shared/fixtures), KEYCTL_COMPOSE (the compose binary), KEEP=1 keeps the temporary
# directories. Ends with "demo: N passed, N failed"; exit status 0 only when all passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
engine="$here/engine.sh"
repo=$(cd "$here/../.." && pwd)
if [ -z "${FIXTURES:-}" ]; then
  for f in "$repo/../shared/fixtures" /work/shared/fixtures; do
    [ -d "$f/upstream-2026-02" ] && FIXTURES=$f && break
  done
fi
fixture="${FIXTURES:?no fixtures folder (set FIXTURES)}/upstream-2026-02"
[ -f "$fixture/docker-compose.yml" ] && [ -f "$fixture/.env.example" ] || {
  echo "demo: no fixture at $fixture" >&2
  exit 1
}

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "  ok   $*"; }
bad() { failed=$((failed + 1)); echo "  FAIL $*"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
now() { date +%s.%N; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
step() { printf '\n== %s\n' "$*"; }

# Short paths: unix socket paths are limited to 107 bytes.
edir=$(mktemp -d /tmp/engine-demo.XXXXXX)
proj=$(mktemp -d /tmp/engine-proj.XXXXXX)
cleanup() {
  local rc=$?
  step "cleanup" >&2
  if [ -f "$proj/docker-compose.yml" ] && [ -S "$edir/docker.sock" ]; then
    DOCKER_HOST="unix://$edir/docker.sock" timeout 60 "${compose:-false}" -p testproj \
      -f "$proj/docker-compose.yml" -f "$proj/override.yml" down -t 0 >/dev/null 2>&1 || true
  fi
  bash "$engine" stop "$edir" || true
  if [ "${KEEP:-}" = 1 ]; then
    echo "kept $edir and $proj"
  else
    rm -rf "$edir" "$proj"
  fi
  exit "$rc"
}
trap cleanup EXIT

step "install (if missing)"
bash "$engine" install
compose=$(bash -c '. "$1"; engine_compose_bin' _ "$engine")
"$compose" version
command -v curl >/dev/null || { echo "demo: curl is missing" >&2; exit 1; }

step "project: $proj (the fixture's docker-compose.yml and .env.example as .env)"
cp "$fixture/docker-compose.yml" "$proj/docker-compose.yml"
cp "$fixture/.env.example" "$proj/.env"
secret1=$(sed -n 's/^JWT_SECRET=//p' "$proj/.env")
echo "JWT_SECRET in .env: $secret1"

step "engine start $edir"
t0=$(now)
bash "$engine" start "$edir"
t1=$(now)
export DOCKER_HOST="unix://$edir/docker.sock"
sock="$edir/docker.sock"
docker=$(bash -c '. "$1"; engine_docker_cli' _ "$engine")
check "dockerd answers on the private socket" "$docker" version --format '{{.Server.Version}}'
check "the pid file names a live dockerd" test -d "/proc/$(cat "$edir/pid")"

step "stand-in images"
t2=$(now)
bash "$engine" images "$edir" "$proj/docker-compose.yml" "$proj/.env"
t3=$(now)
"$docker" images --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort
expected=$("$compose" -f "$proj/docker-compose.yml" --env-file "$proj/.env" config --images | sort -u)
missing=0
for i in $expected; do "$docker" image inspect "$i" >/dev/null 2>&1 || { echo "missing $i"; missing=1; }; done
check "every image of the compose file ($(echo "$expected" | wc -l)) has a stand-in" test "$missing" = 0
t4=$(now)
bash "$engine" images "$edir" "$proj/docker-compose.yml" "$proj/.env"
t5=$(now)

step "override"
bash "$engine" override "$proj/docker-compose.yml" "$proj/override.yml"
sed -n '1,40p' "$proj/override.yml"
check "compose accepts the override" "$compose" -f "$proj/docker-compose.yml" -f "$proj/override.yml" config -q

cd "$proj"
dc() { "$compose" -f docker-compose.yml -f override.yml -p testproj "$@"; }

step "compose up -d"
t6=$(now)
dc up -d
t7=$(now)
dc ps --format 'table {{.Service}}\t{{.Name}}\t{{.Status}}'
running=$("$docker" ps -q --filter label=com.docker.compose.project=testproj | wc -l)
check "13 containers of project testproj run ($running)" test "$running" = 13

rest_id() { "$docker" ps -aq --no-trunc --filter label=com.docker.compose.project=testproj --filter label=com.docker.compose.service=rest; }
env_of() { "$docker" inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$1"; }
label_of() { "$docker" inspect --format "{{index .Config.Labels \"$2\"}}" "$1"; }

step "docker inspect of rest"
id1=$(rest_id)
echo "rest container: $id1 ($("$docker" inspect --format '{{.Name}} created {{.Created}}' "$id1"))"
env_of "$id1" | grep -E '^PGRST_(JWT_SECRET|APP_SETTINGS_JWT_SECRET)='
check "rest's Config.Env has PGRST_JWT_SECRET from .env" grep -qxF "PGRST_JWT_SECRET=$secret1" <(env_of "$id1")
check "label com.docker.compose.project=testproj" test "$(label_of "$id1" com.docker.compose.project)" = testproj
check "label com.docker.compose.service=rest" test "$(label_of "$id1" com.docker.compose.service)" = rest
check "rest runs the stand-in's sleep, not the compose command" python3 -c '
import json, sys
c = json.loads(sys.argv[1])[0]["Config"]
sys.exit(not (c["Entrypoint"][:2] == ["/bin/sh", "-c"] and "/bin/sleep 1000000" in c["Entrypoint"][2] and c["Cmd"] is None))
' "$("$docker" inspect "$id1")"
check "no network, no ports" test "$("$docker" inspect --format '{{.HostConfig.NetworkMode}} {{len .NetworkSettings.Ports}}' "$id1")" = "none 0"

step "Engine API over the socket (curl)"
api() { curl -sS --fail --unix-socket "$sock" "$@"; }
api "http://localhost/_ping" && echo " (_ping)"
api "http://localhost/version" | python3 -c 'import json,sys; v=json.load(sys.stdin); print("Version", v["Version"], "ApiVersion", v["ApiVersion"], "MinAPIVersion", v["MinAPIVersion"])'
list=$(api -G "http://localhost/v1.41/containers/json" --data-urlencode all=1 \
  --data-urlencode 'filters={"label":["com.docker.compose.project=testproj","com.docker.compose.service=rest"]}')
echo "$list" | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    print("list:", c["Id"][:12], c["Names"], "Created", c["Created"], "State", c["State"], "|", c["Status"],
          "| service", c["Labels"]["com.docker.compose.service"])'
check "the label filter finds exactly the rest container" \
  test "$(echo "$list" | python3 -c 'import json,sys; print(",".join(c["Id"] for c in json.load(sys.stdin)))')" = "$id1"
inspect=$(api "http://localhost/v1.41/containers/$id1/json")
echo "$inspect" | python3 -c '
import json, sys
c = json.load(sys.stdin)
print("inspect: Created", c["Created"], "State.Status", c["State"]["Status"], "State.Running", c["State"]["Running"],
      "State.Health", c["State"].get("Health"), "Config.Healthcheck", c["Config"].get("Healthcheck"))'
check "API Config.Env has PGRST_JWT_SECRET from .env" python3 -c '
import json, sys
c = json.loads(sys.argv[1]); sys.exit("PGRST_JWT_SECRET=" + sys.argv[2] not in c["Config"]["Env"])' "$inspect" "$secret1"
all=$(api -G "http://localhost/v1.41/containers/json" --data-urlencode all=1 \
  --data-urlencode 'filters={"label":["com.docker.compose.project=testproj"]}')
check "API: the project filter lists 13 containers" \
  test "$(echo "$all" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 13
check "API: an unknown project lists none" test "$(api -G "http://localhost/v1.41/containers/json" --data-urlencode all=1 \
  --data-urlencode 'filters={"label":["com.docker.compose.project=nosuch"]}')" = "[]"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$sock" "http://localhost/v1.43/containers/json")
check "API: a version above 1.41 is refused (HTTP $code)" test "$code" = 400

step "change JWT_SECRET, up -d --force-recreate rest"
secret2="demo-rotated-secret-$(date +%s)-0123456789abcdefghij"
sed -i "s/^JWT_SECRET=.*/JWT_SECRET=$secret2/" .env
before=$("$docker" ps -q --no-trunc --filter label=com.docker.compose.project=testproj | sort)
t8=$(now)
dc up -d --force-recreate rest
t9=$(now)
id2=$(rest_id)
echo "rest container: $id2 ($("$docker" inspect --format '{{.Name}} created {{.Created}}' "$id2"))"
env_of "$id2" | grep -E '^PGRST_JWT_SECRET='
check "rest is a new container" test "$id2" != "$id1"
check "rest's Config.Env has the new PGRST_JWT_SECRET" grep -qxF "PGRST_JWT_SECRET=$secret2" <(env_of "$id2")
# shellcheck disable=SC2016 # expanded by the inner bash
check "the old secret is gone from rest" bash -c '! grep -qF "$1" <<<"$2"' _ "$secret1" "$(env_of "$id2")"
after=$("$docker" ps -q --no-trunc --filter label=com.docker.compose.project=testproj | sort)
recreated=$(comm -13 <(echo "$before") <(echo "$after") | while read -r c; do label_of "$c" com.docker.compose.service; done | sort | tr '\n' ' ')
echo "recreated: $recreated(db too: it depends on JWT_SECRET and rest depends on it)"
check "only rest and its diverged dependency db were recreated" test "$recreated" = "db rest "

step "override --healthy: State.Health"
bash "$engine" override docker-compose.yml healthy.yml --healthy
"$compose" -f docker-compose.yml -f healthy.yml -p testproj up -d rest >/dev/null 2>&1
id3=$(rest_id)
health() { api "http://localhost/v1.41/containers/$1/json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["State"].get("Health", {}).get("Status", "none"))'; }
for _ in $(seq 1 30); do [ "$(health "$id3")" = healthy ] && break; sleep 0.5; done
check "rest with --healthy: State.Health.Status healthy" test "$(health "$id3")" = healthy
"$docker" exec "$id3" touch /tmp/unhealthy
for _ in $(seq 1 30); do [ "$(health "$id3")" = unhealthy ] && break; sleep 0.5; done
check "after touch /tmp/unhealthy: unhealthy" test "$(health "$id3")" = unhealthy

step "compose down"
"$compose" -f docker-compose.yml -f healthy.yml -p testproj down -t 0
check "no container of testproj is left" test -z "$("$docker" ps -aq --filter label=com.docker.compose.project=testproj)"
cd /

step "engine stop"
t10=$(now)
bash "$engine" stop "$edir"
t11=$(now)
leftover=$(for p in /proc/[0-9]*; do
  case "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" in *"$edir/"*) echo "${p#/proc/}" ;; esac
done)
check "no process of the engine is left" test -z "$leftover"
# shellcheck disable=SC2016 # expanded by the inner bash
check "no mount under the engine dir is left" bash -c '! grep -q " $1" /proc/mounts' _ "$edir"
check "data and exec are removed" test ! -e "$edir/data" -a ! -e "$edir/exec"

step "timings ($(nproc) cores)"
printf '  start                      %ss\n' "$(secs "$t0" "$t1")"
printf '  images (13, first time)    %ss\n' "$(secs "$t2" "$t3")"
printf '  images (all present)       %ss\n' "$(secs "$t4" "$t5")"
printf '  up -d (13 services)        %ss\n' "$(secs "$t6" "$t7")"
printf '  up -d --force-recreate rest %ss\n' "$(secs "$t8" "$t9")"
printf '  stop                       %ss\n' "$(secs "$t10" "$t11")"

echo
echo "demo: $passed passed, $failed failed"
[ "$failed" = 0 ]
