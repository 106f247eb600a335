import t from 'tap';
import { parseLine, MAX_LINE } from '../../lib/core/grammar.js';

t.test('PATH alone attaches with no globals', async (t) => {
  t.same(parseLine('deny_exec.o'), { kind: 'attach', path: 'deny_exec.o', globals: {} });
  t.same(parseLine('  /opt/p.o  '), { kind: 'attach', path: '/opt/p.o', globals: {} });
});

t.test('PATH KEY=VALUE sets globals; quotes keep spaces', async (t) => {
  t.same(parseLine('deny_exec.o target=/tmp/victim'), {
    kind: 'attach',
    path: 'deny_exec.o',
    globals: { target: '/tmp/victim' },
  });
  t.same(parseLine(`"my dir/p.o" target="/tmp/a b" n=3 s='x"y'`), {
    kind: 'attach',
    path: 'my dir/p.o',
    globals: { target: '/tmp/a b', n: '3', s: 'x"y' },
  });
  t.same(parseLine('p.o empty='), { kind: 'attach', path: 'p.o', globals: { empty: '' } });
});

t.test('!NAME and !* detach', async (t) => {
  t.same(parseLine('!deny_exec'), { kind: 'detach', name: 'deny_exec' });
  t.same(parseLine('!*'), { kind: 'detachAll' });
  t.same(parseLine('"!odd.o"'), { kind: 'attach', path: '!odd.o', globals: {} }, 'a quoted ! is a path');
});

t.test('blank lines do nothing; CR before the newline is tolerated', async (t) => {
  t.same(parseLine(''), { kind: 'empty' });
  t.same(parseLine('   \t'), { kind: 'empty' });
  t.same(parseLine('p.o\r'), { kind: 'attach', path: 'p.o', globals: {} });
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
