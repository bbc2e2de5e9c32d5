#!/bin/bash
# Regenerates the golden request fixtures (*.hex) from what iproute2 sends, using strace.
# Needs root, strace and iproute2; CI does not run this (the .hex files are committed).
# Each fixture keeps the command that produced it. The LAST sendmsg buffer of each command is the
# request (earlier ones are name lookups). seq/pid are normalised to 0 by the test, not here.
# Replies (*.reply.hex) are the concatenated recvmsg buffers of a dump, for decoder tests.
set -euo pipefail
cd "$(dirname "$0")"
NS=tnl-gold; NS2=tnl-gold2
ip netns del $NS 2>/dev/null || true; ip netns del $NS2 2>/dev/null || true
ip netns add $NS; ip netns add $NS2
trap 'ip netns del $NS 2>/dev/null || true; ip netns del $NS2 2>/dev/null || true' EXIT

# hexdump of the last sendmsg (or all recvmsg buffers for replies) of a command
dump() { # mode name cmd...
  local mode=$1 name=$2; shift 2
  local out
  if [ "$mode" = send ]; then
    out=$(strace -f -e trace=sendmsg -e write=all "$@" 2>&1 >/dev/null || true)
    hex=$(printf '%s\n' "$out" | awk '/bytes in buffer/ { buf="" ; next } /^ \| [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]  / { line=substr($0, 11, 49); buf=buf " " line; last=buf } END { print last }')
  else
    out=$(strace -f -e trace=recvmsg -e read=all "$@" 2>&1 >/dev/null || true)
    hex=$(printf '%s\n' "$out" | awk '/^ \| [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]  / { line=substr($0, 11, 49); printf "%s ", line }')
  fi
  {
    echo "# command: $*"
    echo "# captured with strace 6.1 ($mode), $(ip -V), kernel $(uname -r)"
    echo "$hex" | tr -s ' ' '\n' | xargs -n 16 || true
  } > "$name.hex"
  echo "$name: $(echo "$hex" | wc -w) bytes"
}
S="dump send"; R="dump reply"; IP="ip -n $NS"

$S link-add-bridge $IP link add tnlbr0 type bridge                                  # ifindex 2
$S link-add-veth $IP link add tnlv0 mtu 1400 address ee:ee:ee:ee:ee:ee type veth peer name tnlv1   # 3,4
$S link-add-veth-peer-netns $IP link add tnlv2 type veth peer name tnlp2 netns $NS2   # 5
$S link-add-vxlan $IP link add tnlvx0 type vxlan id 4096 dstport 4789 local 10.0.0.1 nolearning
$S link-add-vxlan-group $IP link add tnlvx1 type vxlan id 42 group 239.1.1.1 dev tnlbr0 dstport 4790 learning
$S link-add-ipip $IP link add tnlip0 type ipip local 10.0.0.1 remote 10.0.0.2 ttl 64 pmtudisc
$S link-set-up $IP link set dev tnlv0 up
$S link-set-down $IP link set dev tnlv0 down
$S link-set-mtu $IP link set dev tnlv0 mtu 1300
$S link-set-master $IP link set dev tnlv0 master tnlbr0
$S link-set-nomaster $IP link set dev tnlv0 nomaster
$S link-set-address $IP link set dev tnlv0 address 66:00:00:00:00:01
$S link-set-name $IP link set dev tnlv1 name tnlv1b
$S link-get $IP link show dev tnlv0
$IP link add tnldel type bridge
$S link-del $IP link del dev tnldel
$IP link set tnlv0 up; $IP link set tnlbr0 up
$S addr-add $IP addr add 10.1.0.1/24 dev tnlv0
$S addr-add-scope-link $IP addr add 169.254.1.1/32 dev tnlv0 scope link
$S addr-add-v6 $IP addr add fd00::1/64 dev tnlv0 nodad
$S addr-del $IP addr del 169.254.1.1/32 dev tnlv0
$S route-add $IP route add 10.2.0.0/24 via 10.1.0.2 dev tnlv0 proto 80
$S route-add-blackhole $IP route add blackhole 10.3.0.0/26 proto 80
$S route-add-unreachable $IP route add unreachable 10.3.1.0/26
$S route-add-onlink $IP route add 10.4.0.0/26 via 192.168.9.9 dev tnlv0 onlink
$S route-add-multipath $IP route add 10.5.0.0/24 proto 80 nexthop via 10.1.0.2 dev tnlv0 weight 1 nexthop via 10.1.0.3 dev tnlv0 weight 2
$S route-add-mtu $IP route add 10.6.0.0/24 dev tnlv0 scope link mtu 1400
$S route-add-via-v6 $IP route add 10.7.0.0/24 via inet6 fe80::1 dev tnlv0
$S route-add-table $IP route add 10.8.0.0/24 dev tnlv0 table 100 metric 1024 src 10.1.0.1
$S route-replace $IP route replace 10.2.0.0/24 via 10.1.0.3 dev tnlv0 proto 80
$S route-add-v6 $IP -6 route add fd00:1::/64 via fd00::2 dev tnlv0
$S route-del $IP route del 10.2.0.0/24 via 10.1.0.3 dev tnlv0 proto 80
$R route-dump $IP -4 route show table main
$R route-dump-v6 $IP -6 route show
$R link-dump $IP link show
$R addr-dump $IP addr show
$S neigh-set $IP neigh replace 10.1.0.9 lladdr 66:11:22:33:44:55 dev tnlv0 nud permanent
$S neigh-del $IP neigh del 10.1.0.9 dev tnlv0
$S fdb-set bridge -n $NS fdb replace 66:11:22:33:44:55 dev tnlvx0 dst 10.0.0.2 self permanent
$S fdb-del bridge -n $NS fdb del 66:11:22:33:44:55 dev tnlvx0 dst 10.0.0.2 self
$IP neigh replace 10.1.0.9 lladdr 66:11:22:33:44:55 dev tnlv0 nud permanent
$R neigh-dump $IP neigh show
$R error-extack $IP route add 10.9.0.0/24 via 10.99.99.99 dev tnlv0
$R error-ipip $IP link add tnlip1 type ipip remote 10.0.0.2
