// Runs INSIDE the BPF LSM guest (krsifs vm), with krsifs mounted at /mnt/krsi.
// node:test, so the guest needs no dev dependencies; the host test boots the
// VM, runs this file and fails if any step fails. Every claim is checked
// against the kernel: the exec really fails, bpftool really agrees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, chmodSync, readdirSync } from 'node:fs';

const MNT = process.env.KRSI_MNT ?? '/mnt/krsi';
const OBJ = '/krsifs/bpf/obj';
const KRSIFS = '/krsifs/dist/lib/cli.js';

interface Run { status: number; stdout: string; stderr: string }
function sh(cmd: string, cwd = OBJ): Run {
  const r = spawnSync('/bin/sh', ['-c', cmd], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function listing(file: string): string[][] {
  return readFileSync(`${MNT}/${file}`, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
}
interface BpftoolLink { id: number; prog_id: number; type: string; attach_type?: string; target_btf_id?: number }
interface BpftoolProg { id: number; name: string; type: string }
function links(): BpftoolLink[] {
  return JSON.parse(execFileSync('bpftool', ['link', 'show', '-j'], { encoding: 'utf8' }) || '[]');
}
function progs(): BpftoolProg[] {
  return JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8' }) || '[]');
}
function lsmLinks(): BpftoolLink[] {
  return links().filter((l) => l.attach_type === 'lsm_mac');
}
function runs(path: string): Run {
  return sh(`${path}`, '/');
}
function victim(path: string): void {
  writeFileSync(path, '#!/bin/sh\necho ran\n');
  chmodSync(path, 0o755);
}
function errorLogLast(): string {
  const lines = readFileSync(`${MNT}/error_log`, 'utf8').trimEnd().split('\n');
  const heads = lines.map((l, i) => [l, i] as const).filter(([l]) => !l.startsWith('    '));
  const [, start] = heads.at(-1) ?? ['', 0];
  return lines.slice(start).join('\n');
}
// node:test reports each step's duration_ms; the host prints it
function step(name: string, fn: () => void | Promise<void>) {
  return test(name, fn);
}

const behaviours = JSON.parse(readFileSync('/krsifs/lib/catalogue.json', 'utf8')) as Record<string, string[]>;

step('1. fresh mount: every behaviour file empty; hooks maps process_execution to bprm_check_security', () => {
  const files = readdirSync(MNT);
  for (const b of Object.keys(behaviours)) {
    if (!files.includes(b)) continue; // hooks says why a behaviour has no file; checked below
    assert.equal(readFileSync(`${MNT}/${b}`, 'utf8'), '', `${b} is empty`);
  }
  assert.ok(files.includes('process_execution') && files.includes('file_open'));
  assert.match(readFileSync(`${MNT}/hooks`, 'utf8'), /^process_execution\tbprm_check_security\tavailable$/m);
  const hooksCli = sh(`node ${KRSIFS} hooks`);
  assert.match(hooksCli.stdout, /^bprm_check_security\tprocess_execution$/m);
  assert.deepEqual(lsmLinks(), [], 'no LSM link in the kernel yet');
});

let firstIds: { prog: number; link: number };

step('2. echo deny_exec.o target=/tmp/victim attaches; /tmp/victim is denied, others run', () => {
  victim('/tmp/victim');
  victim('/tmp/bystander');
  assert.equal(runs('/tmp/victim').stdout, 'ran\n', 'runs before');
  const w = sh(`echo deny_exec.o target=/tmp/victim > ${MNT}/process_execution`);
  assert.equal(w.status, 0, `write succeeds: ${w.stderr}`);
  const r = runs('/tmp/victim');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /Operation not permitted/);
  assert.equal(runs('/tmp/bystander').stdout, 'ran\n', 'another program runs');
  assert.equal(sh('echo hi').stdout, 'hi\n');
});

step('3. cat lists deny_exec on bprm_check_security; bpftool shows the same LSM link and program', () => {
  const l = listing('process_execution');
  assert.equal(l.length, 1);
  const [name, hook, progId, linkId, object] = l[0]!;
  assert.equal(name, 'deny_exec');
  assert.equal(hook, 'bprm_check_security');
  assert.equal(object, `object=${OBJ}/deny_exec.o`);
  firstIds = { prog: Number(progId!.split('=')[1]), link: Number(linkId!.split('=')[1]) };
  const k = lsmLinks();
  assert.equal(k.length, 1, 'one LSM link in the kernel');
  assert.equal(k[0]!.id, firstIds.link, 'same link id');
  assert.equal(k[0]!.prog_id, firstIds.prog, 'same prog id');
  const p = progs().find((x) => x.id === firstIds.prog);
  assert.equal(p?.type, 'lsm');
  assert.equal(p?.name, 'deny_exec');
});

step('4. a second program on the same file: both listed, both enforce', () => {
  victim('/tmp/victim2');
  const w = sh(`echo deny_exec_uid.o target=/tmp/victim2 > ${MNT}/process_execution`);
  assert.equal(w.status, 0, w.stderr);
  assert.deepEqual(listing('process_execution').map((l) => l[0]).sort(), ['deny_exec', 'deny_exec_uid']);
  assert.match(runs('/tmp/victim').stderr, /Operation not permitted/);
  assert.match(runs('/tmp/victim2').stderr, /Operation not permitted/);
  assert.equal(runs('/tmp/bystander').stdout, 'ran\n');
  assert.equal(lsmLinks().length, 2);
});

step('5. same-name replace: one deny_exec entry with new ids; old target runs again, new one denied', () => {
  victim('/tmp/victim3');
  const w = sh(`echo deny_exec.o target=/tmp/victim3 > ${MNT}/process_execution`);
  assert.equal(w.status, 0, w.stderr);
  const mine = listing('process_execution').filter((l) => l[0] === 'deny_exec');
  assert.equal(mine.length, 1, 'one entry');
  const progId = Number(mine[0]![2]!.split('=')[1]);
  const linkId = Number(mine[0]![3]!.split('=')[1]);
  assert.notEqual(progId, firstIds.prog, 'new prog id');
  assert.notEqual(linkId, firstIds.link, 'new link id');
  assert.equal(runs('/tmp/victim').stdout, 'ran\n', 'old target runs again');
  assert.match(runs('/tmp/victim3').stderr, /Operation not permitted/);
  const k = lsmLinks();
  assert.equal(k.length, 2, 'the old link is gone from the kernel');
  assert.ok(k.some((l) => l.id === linkId && l.prog_id === progId));
  assert.ok(!k.some((l) => l.id === firstIds.link));
});

step("6. '!deny_exec' and '!*': exec works again; listing and bpftool show nothing left", () => {
  assert.equal(sh(`echo '!deny_exec' > ${MNT}/process_execution`).status, 0);
  assert.equal(runs('/tmp/victim3').stdout, 'ran\n');
  assert.deepEqual(listing('process_execution').map((l) => l[0]), ['deny_exec_uid']);
  assert.equal(sh(`echo '!*' > ${MNT}/process_execution`).status, 0);
  assert.equal(runs('/tmp/victim2').stdout, 'ran\n');
  assert.equal(readFileSync(`${MNT}/process_execution`, 'utf8'), '');
  assert.deepEqual(lsmLinks(), []);
  assert.ok(!progs().some((p) => p.type === 'lsm'), 'no LSM program left loaded');
});

step('7. a hook-agnostic program written to file_open denies opening one file; others open', () => {
  writeFileSync('/tmp/secret', 'x\n');
  writeFileSync('/tmp/public', 'y\n');
  const w = sh(`echo deny_path.o target=/tmp/secret > ${MNT}/file_open`);
  assert.equal(w.status, 0, w.stderr);
  const denied = sh('cat /tmp/secret');
  assert.notEqual(denied.status, 0);
  assert.match(denied.stderr, /Operation not permitted/);
  assert.equal(sh('cat /tmp/public').stdout, 'y\n');
  assert.deepEqual(listing('file_open').map((l) => [l[0], l[1]]), [['deny_path', 'file_open']]);
  assert.equal(sh(`echo '!deny_path' > ${MNT}/file_open`).status, 0);
  assert.equal(sh('cat /tmp/secret').stdout, 'x\n', 'opens again after detach');
});

step('8. a SEC("lsm/file_open") object on process_execution: EINVAL, error_log explains, nothing attached', () => {
  const w = sh(`echo deny_open.o target=/tmp/secret > ${MNT}/process_execution`);
  assert.equal(w.status, 1);
  assert.match(w.stderr, /Invalid argument/);
  assert.match(errorLogLast(), /EINVAL .*deny_open is for hook file_open/);
  assert.deepEqual(lsmLinks(), []);
});

step("9. a verifier-rejected object: the kernel's errno, error_log has the verifier's message, nothing attached", () => {
  const w = sh(`echo fixtures/verifier_reject.o > ${MNT}/process_execution`);
  assert.equal(w.status, 1);
  assert.match(w.stderr, /Permission denied|Invalid argument/, 'EACCES or EINVAL from the verifier');
  const entry = errorLogLast();
  assert.match(entry, /: (EACCES|EINVAL) \(/);
  assert.match(entry, /    verifier: /, 'the verifier log tail is there');
  assert.deepEqual(lsmLinks(), []);
  assert.equal(readFileSync(`${MNT}/process_execution`, 'utf8'), '');
});

step('10. the probe and krsifs doctor report BPF LSM as working', () => {
  const d = sh(`node ${KRSIFS} doctor --json`);
  const report = JSON.parse(d.stdout) as { ok: boolean; checks: { name: string; ok: boolean; detail: string }[] };
  const probe = report.checks.find((c) => c.name === 'live probe');
  assert.equal(probe?.ok, true, `live probe: ${probe?.detail}`);
  assert.equal(report.checks.find((c) => c.name === 'bpf LSM active')?.ok, true);
});
