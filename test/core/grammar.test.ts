import t from 'tap';
import { parseLine, MAX_LINE } from '../../lib/core/grammar.js';

t.test('PATH alone attaches with no globals', async (t) => {
  t.same(parseLine('deny_exec.o'), { kind: 'attach', path: 'deny_exec.o', globals: {}, mode: 'enforce' });
  t.same(parseLine('  /opt/p.o  '), { kind: 'attach', path: '/opt/p.o', globals: {}, mode: 'enforce' });
});

t.test('PATH KEY=VALUE sets globals; quotes keep spaces', async (t) => {
  t.same(parseLine('deny_exec.o target=/tmp/victim'), {
    kind: 'attach',
    path: 'deny_exec.o',
    globals: { target: '/tmp/victim' },
    mode: 'enforce',
  });
  t.same(parseLine(`"my dir/p.o" target="/tmp/a b" n=3 s='x"y'`), {
    kind: 'attach',
    path: 'my dir/p.o',
    globals: { target: '/tmp/a b', n: '3', s: 'x"y' },
    mode: 'enforce',
  });
  t.same(parseLine('p.o empty='), { kind: 'attach', path: 'p.o', globals: { empty: '' }, mode: 'enforce' });
});

t.test('!NAME and !* detach', async (t) => {
  t.same(parseLine('!deny_exec'), { kind: 'detach', name: 'deny_exec' });
  t.same(parseLine('!*'), { kind: 'detachAll' });
  t.same(parseLine('"!odd.o"'), { kind: 'attach', path: '!odd.o', globals: {}, mode: 'enforce' }, 'a quoted ! is a path');
});

t.test('blank lines do nothing; CR before the newline is tolerated', async (t) => {
  t.same(parseLine(''), { kind: 'empty' });
  t.same(parseLine('   \t'), { kind: 'empty' });
  t.same(parseLine('p.o\r'), { kind: 'attach', path: 'p.o', globals: {}, mode: 'enforce' });
});

t.test('bad lines are EINVAL or E2BIG with the problem named', async (t) => {
  const bad: [string, string, RegExp][] = [
    ['p.o q.o', 'EINVAL', /not KEY=VALUE/],
    ['p.o =x', 'EINVAL', /not KEY=VALUE/],
    ['p.o 1x=2', 'EINVAL', /not a global variable name/],
    ['p.o a=1 a=2', 'EINVAL', /set twice/],
    ['!', 'EINVAL', /needs a program name/],
    ['!a b', 'EINVAL', /takes no arguments/],
    ['p.o a="x', 'EINVAL', /unterminated/],
    ['p\0.o', 'EINVAL', /NUL/],
    ['x'.repeat(MAX_LINE + 1), 'E2BIG', /longer than 4096/],
  ];
  for (const [line, code, msg] of bad) {
    t.throws(() => parseLine(line), { code, message: msg }, JSON.stringify(line.slice(0, 20)));
  }
});

t.test('mode= is krsifs\'s option, not a global: enforce (the default) or monitor, anywhere after PATH', async (t) => {
  t.same(parseLine('deny_exec.o mode=monitor target=/x'), { kind: 'attach', path: 'deny_exec.o', globals: { target: '/x' }, mode: 'monitor' });
  t.same(parseLine('deny_exec.o target=/x mode=enforce'), { kind: 'attach', path: 'deny_exec.o', globals: { target: '/x' }, mode: 'enforce' });
  t.same(parseLine('id:7 mode=monitor'), { kind: 'attach', path: 'id:7', globals: {}, mode: 'monitor', programId: 7 },
    'parsed for a loaded program too (the core refuses it there, with the kernel\'s facts)');
  const bad: [string, RegExp][] = [
    ['p.o mode=foo', /mode=foo: the mode is enforce or monitor/],
    ['p.o mode=', /mode=: the mode is enforce or monitor/],
    ['p.o mode=Monitor', /enforce or monitor/],
    ['p.o mode=monitor mode=enforce', /mode is set twice/],
  ];
  for (const [line, msg] of bad) t.throws(() => parseLine(line), { code: 'EINVAL', message: msg }, line);
});

t.test('the globals krsifs sets itself are refused as KEY=VALUE', async (t) => {
  for (const key of ['krsi_monitor', 'krsi_behaviour', 'krsi_hook', 'krsi_behaviour_id']) {
    t.throws(() => parseLine(`p.o ${key}=1`), { code: 'EINVAL', message: new RegExp(`^parse line: ${key}: krsifs sets it itself at load`) }, key);
  }
  t.throws(() => parseLine('p.o krsi_monitor=1'), { message: /use mode=monitor or mode=enforce/ });
  t.same(parseLine('p.o krsi_other=1').kind, 'attach', 'another krsi_ name is the object\'s business');
});
