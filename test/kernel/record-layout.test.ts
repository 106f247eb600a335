// The events record is laid out once, in bpf/krsi_events.h; lib/core/events.ts
// reads it by offsets. Compare those offsets with the struct as clang compiled
// it (its BTF in bpf/obj/fixtures/record_layout.o): a field added or moved on
// one side only fails here, not as garbled records in the field.
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { RECORD } from '../../lib/core/events.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const object = path.join(root, 'bpf/obj/fixtures/record_layout.o');

const { stdout } = await execa('bpftool', ['btf', 'dump', 'file', object]);
const at = stdout.indexOf("STRUCT 'krsi_event'");
t.ok(at >= 0, 'the object\'s BTF has struct krsi_event');
const lines = stdout.slice(at).split('\n');
const size = Number(/size=(\d+)/.exec(lines[0]!)?.[1]);
const members = new Map<string, number>();
for (const l of lines.slice(1)) {
  const m = /^\s+'(\w+)' type_id=\d+ bits_offset=(\d+)/.exec(l);
  if (!m) break;
  members.set(m[1]!, Number(m[2]) / 8);
}

t.equal(size, RECORD.size, `sizeof(struct krsi_event) is RECORD.size (${RECORD.size})`);
const expected: Record<string, keyof typeof RECORD> = {
  time_ns: 'timeNs',
  pid: 'pid',
  tid: 'tid',
  payload_len: 'payloadLen',
  flags: 'flags',
  comm: 'comm',
  program: 'program',
  behaviour: 'behaviour',
  payload: 'payload',
};
for (const [field, key] of Object.entries(expected)) {
  t.equal(members.get(field), RECORD[key], `${field} is at RECORD.${key} (${RECORD[key]})`);
}
t.equal(RECORD.size - RECORD.payload, RECORD.payloadMax, 'the payload runs to the end of the record');
t.same([...members.keys()].filter((m) => !(m in expected)), ['reserved'], 'every other member is the reserved word, which krsifs does not read');
