#!/usr/bin/env bash
# Makes the Go toolchain that go.mod names available, on a machine that may have none. It prints the
# directory to put first on PATH. The toolchain comes from the Go module proxy the machine is
# configured for (the toolchain is published there as the module golang.org/toolchain, which is how
# GOTOOLCHAIN itself fetches it); a bootstrap `go` from Debian's golang-go is installed first when
# there is no go at all, since Debian's own version is older than go.mod asks for.
set -euo pipefail
cd "$(dirname "$0")/.."
want="go$(awk '$1 == "go" { print $2; exit }' go.mod)"
for g in /usr/local/go/bin/go "$(command -v go 2>/dev/null || true)"; do
  if [ -n "$g" ] && [ -x "$g" ] && [ "$("$g" env GOVERSION 2>/dev/null)" = "$want" ]; then
    dirname "$g"; exit 0
  fi
done
boot=$(command -v go 2>/dev/null || true)
if [ -z "$boot" ]; then
  echo "ensure-go: no go found; installing Debian's golang-go to bootstrap $want" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  boot=$(command -v go)
fi
os=$("$boot" env GOHOSTOS) arch=$("$boot" env GOHOSTARCH)
mod="golang.org/toolchain@v0.0.1-$want.$os-$arch"
echo "ensure-go: fetching $mod through the module proxy" >&2
dir=$(cd /tmp && GOFLAGS=-mod=mod GO111MODULE=on "$boot" mod download -json "$mod" | awk -F'"' '/"Dir":/ { print $4 }')
if [ -z "$dir" ] || [ ! -x "$dir/bin/go" ]; then
  echo "ensure-go: could not fetch $mod" >&2; exit 1
fi
chmod -R u+w "$dir" 2>/dev/null || true
echo "$dir/bin"
