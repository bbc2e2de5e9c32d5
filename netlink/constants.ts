/**
 * rtnetlink numbers from the Linux uAPI headers (linux/netlink.h, linux/rtnetlink.h,
 * linux/if_link.h, linux/if_addr.h, linux/neighbour.h, linux/if_tunnel.h). Plain `as const`
 * objects so they stay erasable and can be used as both values and literal types.
 */

export const AF = { UNSPEC: 0, INET: 2, BRIDGE: 7, INET6: 10, NETLINK: 16 } as const;
export type Family = 0 | 2 | 7 | 10;

export const NETLINK_ROUTE = 0;
export const NLMSG_HDRLEN = 16;

/** nlmsghdr.nlmsg_type values shared by every netlink family. */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  // GET requests
  ROOT: 0x100,
  MATCH: 0x200,
  DUMP: 0x300,
  // NEW requests
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  // ACK flags
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

/** Attributes of the extended ACK that follow an NLMSG_ERROR (linux/netlink.h). */
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2, COOKIE: 3, POLICY: 4, MISS_TYPE: 5, MISS_NEST: 6 } as const;

export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
} as const;

/** Socket options (SOL_NETLINK = 270). */
export const SOL_NETLINK = 270;
export const NETLINK_OPT = {
  ADD_MEMBERSHIP: 1,
  DROP_MEMBERSHIP: 2,
  PKTINFO: 3,
  BROADCAST_ERROR: 4,
  NO_ENOBUFS: 5,
  LISTEN_ALL_NSID: 8,
  CAP_ACK: 10,
  EXT_ACK: 11,
  GET_STRICT_CHK: 12,
} as const;
export const SOL_SOCKET = 1;
export const SO = { SNDBUF: 7, RCVBUF: 8, SNDBUFFORCE: 32, RCVBUFFORCE: 33 } as const;

/** rtnetlink multicast groups (enum rtnetlink_groups). */
export const RTNLGRP = {
  LINK: 1,
  NOTIFY: 2,
  NEIGH: 3,
  TC: 4,
  IPV4_IFADDR: 5,
  IPV4_MROUTE: 6,
  IPV4_ROUTE: 7,
  IPV4_RULE: 8,
  IPV6_IFADDR: 9,
  IPV6_MROUTE: 10,
  IPV6_ROUTE: 11,
} as const;

// ---- links -------------------------------------------------------------------------------
export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  QDISC: 6,
  STATS: 7,
  MASTER: 10,
  TXQLEN: 13,
  OPERSTATE: 16,
  LINKMODE: 17,
  LINKINFO: 18,
  NET_NS_PID: 19,
  IFALIAS: 20,
  STATS64: 23,
  AF_SPEC: 26,
  GROUP: 27,
  NET_NS_FD: 28,
  EXT_MASK: 29,
  LINK_NETNSID: 37,
} as const;
export const IFLA_INFO = { KIND: 1, DATA: 2, XSTATS: 3, SLAVE_KIND: 4, SLAVE_DATA: 5 } as const;
export const VETH_INFO_PEER = 1;
export const IFLA_VXLAN = {
  ID: 1,
  GROUP: 2,
  LINK: 3,
  LOCAL: 4,
  TTL: 5,
  TOS: 6,
  LEARNING: 7,
  AGEING: 8,
  LIMIT: 9,
  PORT_RANGE: 10,
  PROXY: 11,
  RSC: 12,
  L2MISS: 13,
  L3MISS: 14,
  PORT: 15,
  GROUP6: 16,
  LOCAL6: 17,
} as const;
export const IFLA_IPTUN = {
  UNSPEC: 0,
  LINK: 1,
  LOCAL: 2,
  REMOTE: 3,
  TTL: 4,
  TOS: 5,
  ENCAP_LIMIT: 6,
  FLOWINFO: 7,
  FLAGS: 8,
  PROTO: 9,
  PMTUDISC: 10,
  ENCAP_TYPE: 15,
  ENCAP_FLAGS: 16,
  ENCAP_SPORT: 17,
  ENCAP_DPORT: 18,
  FWMARK: 20,
} as const;
export const IFF = { UP: 0x1, BROADCAST: 0x2, LOOPBACK: 0x8, POINTOPOINT: 0x10, RUNNING: 0x40, NOARP: 0x80, MULTICAST: 0x1000, LOWER_UP: 0x10000 } as const;
/** IFLA_EXT_MASK bits iproute2 sends with a GETLINK. */
export const RTEXT_FILTER = { VF: 1, BRVLAN: 2, BRVLAN_COMPRESSED: 4, SKIP_STATS: 8 } as const;

// ---- addresses ---------------------------------------------------------------------------
export const IFA = { ADDRESS: 1, LOCAL: 2, LABEL: 3, BROADCAST: 4, ANYCAST: 5, CACHEINFO: 6, FLAGS: 8 } as const;
export const IFA_F = { SECONDARY: 0x1, NODAD: 0x2, OPTIMISTIC: 0x4, DADFAILED: 0x8, HOMEADDRESS: 0x10, DEPRECATED: 0x20, TENTATIVE: 0x40, PERMANENT: 0x80, NOPREFIXROUTE: 0x200 } as const;

// ---- routes ------------------------------------------------------------------------------
export const RTA = {
  DST: 1,
  SRC: 2,
  IIF: 3,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  METRICS: 8,
  MULTIPATH: 9,
  FLOW: 11,
  CACHEINFO: 12,
  TABLE: 15,
  MARK: 16,
  PREF: 20,
  ENCAP_TYPE: 21,
  ENCAP: 22,
  EXPIRES: 23,
  VIA: 18,
  NEWDST: 19,
} as const;
export const RTAX = { LOCK: 1, MTU: 2, WINDOW: 3, RTT: 4, RTTVAR: 5, SSTHRESH: 6, CWND: 7, ADVMSS: 8, REORDERING: 9, HOPLIMIT: 10, INITCWND: 11, FEATURES: 12, RTO_MIN: 13, INITRWND: 14, QUICKACK: 15 } as const;
export const RTN = { UNSPEC: 0, UNICAST: 1, LOCAL: 2, BROADCAST: 3, ANYCAST: 4, MULTICAST: 5, BLACKHOLE: 6, UNREACHABLE: 7, PROHIBIT: 8, THROW: 9, NAT: 10 } as const;
export const RTPROT = { UNSPEC: 0, REDIRECT: 1, KERNEL: 2, BOOT: 3, STATIC: 4, BIRD: 12, DHCP: 16, FELIX: 80 } as const;
export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;
export const RT_TABLE = { UNSPEC: 0, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;
export const RTNH_F = { DEAD: 1, PERVASIVE: 2, ONLINK: 4, OFFLOAD: 8, LINKDOWN: 16, UNRESOLVED: 32 } as const;
export const RTM_F = { NOTIFY: 0x100, CLONED: 0x200, EQUALIZE: 0x400, PREFIX: 0x800 } as const;

// ---- neighbours --------------------------------------------------------------------------
export const NDA = { DST: 1, LLADDR: 2, CACHEINFO: 3, PROBES: 4, VLAN: 5, PORT: 6, VNI: 7, IFINDEX: 8, MASTER: 9 } as const;
export const NUD = { INCOMPLETE: 0x01, REACHABLE: 0x02, STALE: 0x04, DELAY: 0x08, PROBE: 0x10, FAILED: 0x20, NOARP: 0x40, PERMANENT: 0x80, NONE: 0x00 } as const;
export const NTF = { USE: 0x01, SELF: 0x02, MASTER: 0x04, PROXY: 0x08, EXT_LEARNED: 0x10, OFFLOADED: 0x20, ROUTER: 0x80 } as const;
