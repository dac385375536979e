#!/usr/bin/env bash
# Builds the local Python base image that tests, the demo and CI use, since no registry can be reached:
# a minimal Debian bookworm with python3, FastAPI and uvicorn from Debian's packages, imported into the
# local daemon. Idempotent: it does nothing when the image already exists (set FORCE=1 to rebuild).
set -euo pipefail

image="${RFENV_BASE_IMAGE:-rfenv-python:bookworm}"

# The mirror comes from the machine's own apt configuration: the first source that serves the suite
# (deb822 .sources stanzas, then one-line sources.list entries). With none found, debootstrap uses its
# own default.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" -v RS= '
      { uri = ""; ok = 0
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          if (lines[i] ~ /^URIs:/) { split(lines[i], f, /[ \t]+/); uri = f[2] }
          if (lines[i] ~ /^Suites:/) { m = split(lines[i], s, /[ \t]+/); for (j = 2; j <= m; j++) if (s[j] == suite) ok = 1 }
        }
        if (ok && uri != "") { print uri; exit } }' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    awk -v suite="$suite" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\// && $(i+1) == suite) { print $i; exit } }' /etc/apt/sources.list
  fi
  return 0
}
suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-$(apt_mirror | head -n1)}"

if ! docker info >/dev/null 2>&1; then
  echo "base-image: the Docker daemon is not reachable; start it (or set DOCKER_HOST) and retry" >&2
  exit 1
fi
if [ "${FORCE:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base-image: $image already exists" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "base-image: installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/rfenv-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap $suite into $root (a few minutes)" >&2
debootstrap --variant=minbase \
  --include=python3,python3-fastapi,python3-uvicorn,python3-pip,ca-certificates \
  "$suite" "$root" ${mirror:+"$mirror"} >&2
# Trim what an image never needs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/*

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
echo "base-image: built $image" >&2
