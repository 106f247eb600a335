// The denial observer's TypeScript side: the hook -> subject table, how an
// observer's record is completed (program, errno name), the `stats` lines.
import t from 'tap';
import { RECORD, decodeRecord, formatRecord } from '../../lib/core/events.js';
import { SUBJECT, completeObserved, decodeCounts, denierName, formatStats, subjectOf } from '../../lib/core/observer.js';

function observed(fields: [string, string][], flags = 2): Buffer {
  const b = Buffer.alloc(RECORD.size);
  b.writeBigUInt64LE(5_000_000_000n, RECORD.timeNs);
  b.writeUInt32LE(77, RECORD.pid);
  b.writeUInt32LE(78, RECORD.tid);
  b.write('sh', RECORD.comm);
  b.write('process_execution', RECORD.behaviour);
  const payload = Buffer.from(fields.map(([k, v]) => `${k}\0${v}\0`).join(''));
  payload.copy(b, RECORD.payload);
  b.writeUInt16LE(payload.length, RECORD.payloadLen);
  b.writeUInt16LE(flags, RECORD.flags);
  return b;
}

const denial: [string, string][] = [['action', 'denied'], ['error', '1'], ['uid', '1000'], ['hook', 'bprm_check_security'], ['file', '/tmp/x y']];

t.test('what each hook names: bprm, file, dentry, task, or nothing', async (t) => {
  t.equal(subjectOf('bprm_check_security'), 'bprm');
  t.equal(subjectOf('file_open'), 'file');
  t.equal(subjectOf('kernel_read_file'), 'file');
  t.equal(subjectOf('path_unlink'), 'dentry');
  t.equal(subjectOf('inode_unlink'), 'dentry');
  t.equal(subjectOf('task_kill'), 'task');
  t.equal(subjectOf('ptrace_access_check'), 'task');
  t.equal(subjectOf('socket_connect'), 'none');
  t.equal(subjectOf('toString'), 'none', 'no prototype key is a hook');
  // the numbers are KRSI_SUBJECT_* in bpf/krsi_observer.bpf.c
  t.same(SUBJECT, { none: 0, bprm: 1, file: 2, dentry: 3, task: 4 });
});

t.test("an observer's record: the flag is decoded, the errno named, the one program named", async (t) => {
  const r = decodeRecord(observed(denial), 1_700_000_000e9)!;
  t.equal(r.observed, true);
  t.equal(r.program, '');
  t.equal(
    formatRecord(completeObserved(r, ['silent_deny'])),
    'time=2023-11-14T22:13:25.000000Z behaviour=process_execution program=silent_deny pid=77 comm=sh ' +
      'action=denied error=EPERM uid=1000 hook=bprm_check_security file="/tmp/x y"\n',
  );
  t.match(formatRecord(completeObserved(r, ['a', 'b'])), / program=\? /, 'two programs: the denier cannot be told');
  t.match(formatRecord(completeObserved(r, [])), / program=\? /, 'none left (detached meanwhile)');
  const eacces = decodeRecord(observed([['action', 'denied'], ['error', '13']]), 0)!;
  t.match(formatRecord(completeObserved(eacces, ['p'])), / error=EACCES$/m);
  const odd = decodeRecord(observed([['action', 'denied'], ['error', '4095']]), 0)!;
  t.match(formatRecord(completeObserved(odd, ['p'])), / error=E4095$/m, 'a number without a name stays a number');
  t.equal(decodeRecord(observed(denial, 0), 0)!.observed, false, "a policy's record is not the observer's");
  t.equal(denierName(['x']), 'x');
});

t.test('stats: one tab-separated line per behaviour; counters from struct krsi_counts', async (t) => {
  t.equal(formatStats([]), '');
  t.equal(
    formatStats([
      { behaviour: 'process_execution', hook: 'bprm_check_security', programs: 1, denied: 3, monitored: 0 },
      { behaviour: 'file_open', hook: 'file_open', programs: 2, denied: 0, monitored: 5 },
    ]),
    'process_execution\tbprm_check_security\tprograms=1\tdenied=3\tmonitored=0\n' +
      'file_open\tfile_open\tprograms=2\tdenied=0\tmonitored=5\n',
  );
  const v = Buffer.alloc(16);
  v.writeBigUInt64LE(200n, 0);
  v.writeBigUInt64LE(7n, 8);
  t.same(decodeCounts(v), { denied: 200, monitored: 7 });
  t.same(decodeCounts(null), { denied: 0, monitored: 0 });
});
