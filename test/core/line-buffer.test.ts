import t from 'tap';
import { LineBuffer } from '../../lib/core/line-buffer.js';
import { MAX_LINE } from '../../lib/core/grammar.js';

const lines = (items: ReturnType<LineBuffer['push']>) =>
  items.map((i) => ('line' in i ? i.line.toString() : '<too long>'));

t.test('one line split over many writes is reassembled', async (t) => {
  const lb = new LineBuffer();
  const bytes = Buffer.from('deny_exec.o target=/tmp/victim\n');
  const got: string[] = [];
  for (const b of bytes) got.push(...lines(lb.push(Buffer.from([b]))));
  t.same(got, ['deny_exec.o target=/tmp/victim']);
  t.equal(lb.flush(), null, 'nothing left over');
});

t.test('several lines in one write come out in order', async (t) => {
  const lb = new LineBuffer();
  t.same(lines(lb.push(Buffer.from('a.o\n!b\nc'))), ['a.o', '!b']);
  t.equal(lb.flush()?.toString(), 'c', 'the last line without a newline runs at close');
});

t.test('a line longer than the limit yields one error, and the next line is clean', async (t) => {
  const lb = new LineBuffer();
  t.same(lines(lb.push(Buffer.alloc(MAX_LINE, 'x'))), [], 'at the limit, still pending');
  t.same(lines(lb.push(Buffer.from('y'))), ['<too long>']);
  t.same(lines(lb.push(Buffer.alloc(10000, 'z'))), [], 'the rest of it is dropped quietly');
  t.same(lines(lb.push(Buffer.from('zz\nok.o\n'))), ['ok.o']);
});

t.test('a line of exactly the limit is accepted', async (t) => {
  const lb = new LineBuffer();
  t.same(lines(lb.push(Buffer.from('x'.repeat(MAX_LINE) + '\n'))), ['x'.repeat(MAX_LINE)]);
});
