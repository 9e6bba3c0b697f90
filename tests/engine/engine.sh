#!/usr/bin/env bash
# A real Docker engine for keyctl's tests (issue 10), started on a private socket.
#
#   engine.sh install                   Debian's docker.io and a static busybox, if missing
#   engine.sh start DIR                 dockerd with data, exec root, socket and pid under DIR
#   engine.sh stop DIR                  stops that dockerd by its pid and removes DIR's data
#   engine.sh images DIR COMPOSE [ENV]  stand-in images (busybox, sleeping) for every image:
#   engine.sh override COMPOSE OUT      an override that lets stand-ins run: no network, no
#                                       healthchecks, dependencies, ports, volumes, entrypoints;
#                                       environment: and env_file: untouched
#
# No registry is reachable from the test machines: every image the compose file names is a
# local stand-in (`FROM local/busybox:1`, `ENTRYPOINT sleep`), so compose never pulls. The
# engine fails loudly: a test that needs it never skips.
set -euo pipefail

die() { echo "engine.sh: $*" >&2; exit 1; }

compose_bin() {
  if [ -n "${KEYCTL_COMPOSE:-}" ]; then echo "$KEYCTL_COMPOSE"; return; fi
  python3 -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))'
}

docker_cli() {
  # Debian's client matches Debian's daemon (API 1.41).
  if [ -x /usr/bin/docker ]; then echo /usr/bin/docker; else command -v docker; fi
}

cmd=${1:-}; shift || true
case "$cmd" in
  install)
    missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    [ -x /usr/bin/busybox ] || missing+=(busybox-static)
    if [ ${#missing[@]} -gt 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    command -v dockerd >/dev/null || die "dockerd is not installed"
    ;;
  start)
    dir=${1:?DIR}; mkdir -p "$dir"
    dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$dir/docker.sock" \
      --pidfile "$dir/pid" --storage-driver vfs --iptables=false --ip6tables=false \
      --bridge=none >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do
      if [ -S "$dir/docker.sock" ] && "$(docker_cli)" -H "unix://$dir/docker.sock" version >/dev/null 2>&1; then
        exit 0
      fi
      sleep 0.5
    done
    tail -20 "$dir/dockerd.log" >&2 || true
    die "dockerd did not answer on $dir/docker.sock within 60 s (log above)"
    ;;
  stop)
    dir=${1:?DIR}
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    # Shims of containers dockerd ran (its own containerd exits with it).
    pkill -f "containerd-shim.*$dir/exec" 2>/dev/null || true
    umount -R "$dir/exec" 2>/dev/null || true
    chmod -R u+w "$dir" 2>/dev/null || true
    rm -rf "$dir"
    ;;
  images)
    dir=${1:?DIR}; compose=${2:?COMPOSE}; envf=${3:-}
    export DOCKER_HOST="unix://$dir/docker.sock"
    docker=$(docker_cli)
    if ! "$docker" image inspect local/standin:1 >/dev/null 2>&1; then
      "$docker" rmi local/busybox:1 >/dev/null 2>&1 || true
      root=$(mktemp -d); mkdir -p "$root/bin"; cp /usr/bin/busybox "$root/bin/"
      for l in sh sleep env cat ls; do ln -s busybox "$root/bin/$l"; done
      tar -C "$root" -c . | "$docker" import - local/busybox:1 >/dev/null
      ctx=$(mktemp -d)
      printf 'FROM local/busybox:1\nENTRYPOINT ["/bin/sleep", "1000000"]\n' >"$ctx/Dockerfile"
      DOCKER_BUILDKIT=0 "$docker" build -q -t local/standin:1 "$ctx" >/dev/null
      rm -rf "$root" "$ctx"
    fi
    args=(-f "$compose"); [ -n "$envf" ] && args+=(--env-file "$envf")
    images=$("$(compose_bin)" "${args[@]}" --profile '*' config --images) || die "compose cannot read $compose"
    for image in $images; do
      "$docker" tag local/standin:1 "$image"
    done
    ;;
  override)
    compose=${1:?COMPOSE}; out=${2:?OUT}
    python3 - "$compose" "$out" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
lines = ["# Written by tests/engine/engine.sh: lets sleeping stand-ins run; environment untouched.", "services:"]
for name in (doc.get("services") or {}):
    lines += [
        f"  {name}:",
        "    network_mode: none",
        "    healthcheck: !reset {}",
        "    depends_on: !reset []",
        "    ports: !reset []",
        "    volumes: !reset []",
        "    entrypoint: !reset null",
        "    command: !reset null",
        "    links: !reset []",
        "    restart: 'no'",
    ]
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(lines) + "\n")
PY
    ;;
  *)
    die "usage: engine.sh install | start DIR | stop DIR | images DIR COMPOSE [ENV] | override COMPOSE OUT"
    ;;
esac
