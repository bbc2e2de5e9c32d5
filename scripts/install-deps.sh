#!/usr/bin/env bash
# Installs the Debian packages tabby's tests and demo use, when they are missing.
# Idempotent: does nothing (and needs no root) when everything is present.
# Services are never started by the install (a policy-rc.d guard), so no stray etcd/BIRD/FRR
# listens in the root network namespace; tests start their own instances.
set -euo pipefail

PKGS=(
  etcd-server etcd-client          # etcdv3 datastore tests
  bird2 frr gobgpd exabgp          # BGP interop tests and benchmarks
  containerd runc busybox-static   # CNI tests with containerd as the caller
  containernetworking-plugins      # host-local, bridge, portmap, bandwidth
  socat                            # the tabby CNI shim's client of tabby-node's CNI server
  nftables iproute2 iputils-ping tcpdump procps psmisc
  docker-compose                   # validates docker-compose.yml without an engine
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} Debian packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root, or: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

guard=/usr/sbin/policy-rc.d
restore=""
if [ ! -e "$guard" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$guard"; chmod +x "$guard"; restore=1
fi
trap '[ -n "$restore" ] && rm -f "$guard"' EXIT

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
