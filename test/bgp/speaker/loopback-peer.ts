/** A second speaker on 127.0.0.2 over real TCP, that connects to a speaker under test (tests' peer). */
import type net from 'node:net';
import { BgpListener } from '../../../bgp/net/index.js';
import { BgpSpeaker, type PeerStateEvent } from '../../../bgp/speaker.js';
import { SessionTransports } from '../../../bgp/speaker/session-transport.js';
import type { SpeakerConfig } from '../../../bgp/speaker/config.js';

/** Started; `close()` stops it (Cease) and frees its port. It refuses incoming connections. */
export async function loopbackPeer(cfg: SpeakerConfig, listenPort: number): Promise<{ speaker: BgpSpeaker; states: PeerStateEvent[]; close(): Promise<void> }> {
  const listener = new BgpListener((s: net.Socket) => s.destroy());
  await listener.listen('127.0.0.2', listenPort);
  const transports = new SessionTransports({ listener, connectRetryTime: 1, idleHoldTime: 1 });
  const speaker = new BgpSpeaker(cfg, { transport: transports.factory });
  const states: PeerStateEvent[] = [];
  speaker.on('peer-state', (e) => states.push(e));
  await speaker.start();
  return {
    speaker,
    states,
    close: async () => {
      await speaker.stop();
      await listener.close();
    },
  };
}
