// The Netlink handle over an in-memory fake kernel (NetlinkTransport): dump retry on
// NLM_F_DUMP_INTR, batch ACK/error matching by sequence number across datagrams, error mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DumpInterruptedError,
  LinkNotFoundError,
  NLMSG,
  NLM_F,
  Netlink,
  NetlinkError,
  RTM,
  Writer,
  encodeRoute,
  parseMessages,
  type NetlinkTransport,
  type NlMsg,
} from '../../netlink/index.js';

/** A fake kernel: `answer` turns each sent datagram's messages into reply datagrams. */
class FakeKernel implements NetlinkTransport {
  readonly rbuf = Buffer.alloc(1 << 20);
  readonly sent: NlMsg[][] = [];
  private queue: Buffer[] = [];
  /** recv() says EAGAIN this many times first (exercises waitReadable). */
  eagain = 0;
  waits = 0;
  constructor(private readonly answer: (msgs: NlMsg[]) => Buffer[]) {}
  send(buf: Buffer, len: number): void {
    const msgs = parseMessages(Buffer.from(buf.subarray(0, len)));
    this.sent.push(msgs);
    this.queue.push(...this.answer(msgs));
  }
  recv(): number | undefined {
    if (this.eagain > 0) {
      this.eagain--;
      return undefined;
    }
    const d = this.queue.shift();
    if (!d) return undefined;
    d.copy(this.rbuf);
    return d.length;
  }
  async waitReadable(): Promise<boolean> {
    this.waits++;
    await new Promise((r) => setImmediate(r));
    return true;
  }
  close(): void {}
}

function errorMsg(seq: number, errno: number, extAck?: string): Buffer {
  const w = new Writer();
  const m = w.beginMessage(NLMSG.ERROR, extAck ? NLM_F.CAPPED | NLM_F.ACK_TLVS : NLM_F.CAPPED, seq);
  w.i32(-errno).u32(16).u16(RTM.NEWROUTE).u16(0).u32(seq).u32(0);
  if (extAck) w.attrCString(1, extAck);
  w.endMessage(m);
  return w.finish();
}

function dumpReply(seq: number, dsts: string[], flags = 0): Buffer {
  const w = new Writer();
  for (const dst of dsts) {
    const start = w.off;
    encodeRoute(w, seq, RTM.NEWROUTE, 0, { dst, oif: 2 });
    w.buf.writeUInt16LE(NLM_F.MULTI | flags, start + 6);
  }
  const m = w.beginMessage(NLMSG.DONE, NLM_F.MULTI | flags, seq);
  w.i32(0);
  w.endMessage(m);
  return w.finish();
}

test('routeList restarts a dump flagged NLM_F_DUMP_INTR and returns the clean one', async () => {
  let dumps = 0;
  const k = new FakeKernel(([m]) => {
    dumps++;
    assert.ok(m && m.flags & NLM_F.DUMP);
    return dumps === 1 ? [dumpReply(m.seq, ['10.0.0.0/24'], NLM_F.DUMP_INTR)] : [dumpReply(m.seq, ['10.0.1.0/24', '10.0.2.0/24'])];
  });
  k.eagain = 1;
  const nl = Netlink.fromTransport(k);
  const routes = await nl.routeList();
  assert.deepEqual(
    routes.map((r) => r.dst),
    ['10.0.1.0/24', '10.0.2.0/24'],
  );
  assert.equal(dumps, 2);
  assert.ok(k.waits >= 1, 'waited for readiness on EAGAIN');
});

test('a dump that keeps being interrupted ends in DumpInterruptedError', async () => {
  const nl = Netlink.fromTransport(new FakeKernel(([m]) => [dumpReply(m?.seq ?? 0, ['10.0.0.0/24'], NLM_F.DUMP_INTR)]));
  await assert.rejects(nl.routeList(), DumpInterruptedError);
});

test('errors carry the errno name and the extended ACK; ENODEV on a get is LinkNotFoundError', async () => {
  const nl = Netlink.fromTransport(
    new FakeKernel(([m]) => {
      if (!m) return [];
      if (m.type === RTM.GETLINK) return [errorMsg(m.seq, 19)];
      return [errorMsg(m.seq, 101, 'Nexthop has invalid gateway')];
    }),
  );
  await assert.rejects(nl.routeAdd({ dst: '10.0.0.0/24', gw: '10.9.9.9' }), (err: unknown) => {
    assert.ok(err instanceof NetlinkError);
    assert.equal(err.code, 'ENETUNREACH');
    assert.equal(err.extAck, 'Nexthop has invalid gateway');
    assert.match(err.message, /RTM_NEWROUTE 10\.0\.0\.0\/24: ENETUNREACH \(Nexthop has invalid gateway\)/);
    return true;
  });
  await assert.rejects(nl.linkByName('tnlnope'), LinkNotFoundError);
});

test('batch: only the last message of each datagram asks for an ACK; errors map to request indexes', async () => {
  const failing = new Map([
    [5, 17],
    [1500, 3],
    [2999, 17],
  ]);
  let base = -1;
  const k = new FakeKernel((msgs) => {
    const out: Buffer[] = [];
    msgs.forEach((m, i) => {
      if (base < 0) base = m.seq;
      const idx = (m.seq - base) >>> 0;
      const isLast = i === msgs.length - 1;
      assert.equal((m.flags & NLM_F.ACK) !== 0, isLast, `ACK only on the last message (idx ${idx})`);
      const errno = failing.get(idx);
      if (errno) out.push(errorMsg(m.seq, errno));
      else if (isLast) out.push(errorMsg(m.seq, 0));
    });
    return out;
  });
  const nl = Netlink.fromTransport(k);
  const b = nl.batch();
  for (let i = 0; i < 3000; i++) b.routeAdd({ dst: `10.${i >> 8}.${i & 255}.0/24`, oif: 2, protocol: 80 });
  const res = await b.run();
  assert.ok(k.sent.length >= 2, `pipelined into ${k.sent.length} datagrams`);
  assert.ok(k.sent.every((d) => d.length > 100), 'many requests per datagram');
  assert.deepEqual([res.ok, res.failed], [2997, 3]);
  assert.equal(res.errors[5]?.code, 'EEXIST');
  assert.equal(res.errors[1500]?.code, 'ESRCH');
  assert.equal(res.errors[2999]?.code, 'EEXIST');
  assert.equal(res.errors[6], undefined);
});
