/** BIRD 2 and tabby-bgp configurations for the interop tests (veth lab, BGP port 17952). */
import path from 'node:path';

export const PORT = 17952;

export function birdConf(peerIp: string, tabbyIp: string, statics = ['10.244.1.0/26'], port = PORT): string {
  return `
log stderr all;
router id ${peerIp};
protocol device { scan time 10; }
protocol direct { ipv4; interface "e0"; }
protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; learn; merge paths on; graceful restart; }
protocol static { ipv4; ${statics.map((r) => `route ${r} blackhole;`).join(' ')} }
protocol bgp tabby {
  local ${peerIp} port ${port} as 64512;
  neighbor ${tabbyIp} port ${port} as 64512;
  password "s3cret";
  hold time 9; connect delay time 1; connect retry time 1; error wait time 1, 5;
  graceful restart on; graceful restart time 120;
  ipv4 { import all; export where source = RTS_STATIC; add paths on; };
}
`;
}

export function tabbyConf(lab: { tabbyIp: string; peerIp: string; dir: string }, originate: string[], port = PORT): string {
  return JSON.stringify({
    routerId: lab.tabbyIp,
    asNumber: 64512,
    listen: { address: lab.tabbyIp, port },
    peers: [{ address: lab.peerIp, port, asNumber: 64512, password: 's3cret', addPaths: 'both', gracefulRestart: { restartTime: 120 }, holdTime: 9, connectRetryTime: 1 }],
    originate,
    fib: { install: true, protocol: 80 },
    statusSocket: path.join(lab.dir, 'tabby.sock'),
  });
}
