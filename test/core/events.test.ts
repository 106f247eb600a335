// The events hub: record decoding, the line format, and fan-out with a
// bounded queue per reader (drops counted and reported as lost=N).
import t from 'tap';
import { EventHub, RECORD, decodeRecord, formatRecord } from '../../lib/core/events.js';
import { quote } from '../../lib/text.js';

function record(fields: [string, string][], o: { pid?: number; comm?: string; flags?: number } = {}): Buffer {
  const b = Buffer.alloc(RECORD.size);
  b.writeBigUInt64LE(5_000_000_000n, RECORD.timeNs);
  b.writeUInt32LE(o.pid ?? 42, RECORD.pid);
  b.writeUInt32LE(o.pid ?? 42, RECORD.tid);
  b.write(o.comm ?? 'sh', RECORD.comm);
  b.write('audit_env', RECORD.program);
  b.write('process_execution_committed', RECORD.behaviour);
  const payload = Buffer.from(fields.map(([k, v]) => `${k}\0${v}\0`).join(''));
  payload.copy(b, RECORD.payload);
  b.writeUInt16LE(payload.length, RECORD.payloadLen);
  b.writeUInt16LE(o.flags ?? 0, RECORD.flags);
  return b;
}

t.test('a record becomes one key=value line; values with spaces are quoted', async (t) => {
  const r = decodeRecord(record([['var', 'LD_PRELOAD'], ['value', '/tmp/a b.so']]), 1_700_000_000e9)!;
  t.equal(
    formatRecord(r),
    'time=2023-11-14T22:13:25.000000Z behaviour=process_execution_committed program=audit_env pid=42 comm=sh var=LD_PRELOAD value="/tmp/a b.so"\n',
  );
  t.equal(quote(''), '""');
  t.equal(quote('a"b\\c\n'), '"a\\"b\\\\c\\n"');
  t.equal(quote('x\x01'), '"x\\x01"');
  t.match(formatRecord(decodeRecord(record([], { flags: 1 }), 0)!), / truncated=1\n$/);
  t.equal(decodeRecord(Buffer.alloc(10), 0), null, 'too short: no record');
});

t.test("a record's error is the errno by name, whoever sent it; other numbers stay numbers", async (t) => {
  const line = (fields: [string, string][]) => formatRecord(decodeRecord(record(fields), 0)!);
  t.match(line([['file', '/tmp/x'], ['error', '95']]), / file=\/tmp\/x error=EOPNOTSUPP\n$/, "deny_exec_hash's IMA error");
  t.match(line([['error', 'EPERM'], ['uid', '13']]), / error=EPERM uid=13\n$/, 'a name (krsi_refuse) as it is; uid is no errno');
  t.match(line([['error', '4095']]), / error=E4095\n$/, 'a number without a name: E<n>');
  t.match(line([['error', 'not found']]), / error="not found"\n$/, 'a text is quoted as any value');
});

t.test('every reader gets every line; a slow one keeps its queue and learns what it lost', async (t) => {
  const hub = new EventHub({ queueLines: 4 });
  const fast = hub.open();
  const slow = hub.open();
  for (let i = 1; i <= 10; i++) {
    hub.publish(`n=${i}\n`);
    if (i <= 6) t.equal((await fast.read(4096)).toString(), `n=${i}\n`);
  }
  t.equal((await fast.read(4096)).toString(), 'n=7\nn=8\nn=9\nn=10\n');
  const text = (await slow.read(4096)).toString();
  t.equal(text, 'n=1\nn=2\nn=3\nn=4\n', 'the first 4 lines, whole');
  t.match((await slow.read(4096)).toString(), /^time=\S+ lost=6\n$/, 'then the count of the dropped ones');
  hub.kernelLost(3);
  t.match((await fast.read(4096)).toString(), /lost=3\n$/, 'a full kernel ring is reported to every reader');
});

t.test('a read waits for a line; close ends it with EOF; an abort with EINTR', async (t) => {
  const hub = new EventHub();
  const s = hub.open();
  const p = s.read(4096);
  hub.publish('a=1\n');
  t.equal((await p).toString(), 'a=1\n');
  const ac = new AbortController();
  const q = s.read(4096, ac.signal);
  ac.abort();
  await t.rejects(q, { code: 'EINTR' });
  hub.publish('b=2\n');
  t.equal((await s.read(4096)).toString(), 'b=2\n', 'the aborted read took nothing');
  const r = s.read(4096);
  s.close();
  t.equal((await r).length, 0, 'EOF after close');
  t.equal(hub.readers, 0);
  hub.publish('c=3\n'); // nobody listens: dropped, no memory kept
  t.equal(hub.stats.records, 3);
});

t.test('a line longer than the read comes in pieces', async (t) => {
  const hub = new EventHub();
  const s = hub.open();
  hub.publish('x'.repeat(10) + '\n');
  t.equal((await s.read(4)).toString(), 'xxxx');
  t.equal((await s.read(100)).toString(), 'xxxxxx\n');
});
