#!/usr/bin/env -S node --max-semi-space-size=1
// krsifs: the KRSI interface as a filesystem. Subcommands: mount, status, doctor, hooks, install, vm.
import { logInspectorSignals } from './inspector-signal.js'; // first: see there
import { parseArgs } from 'node:util';
import { KrsiError } from './errors.js';
import { createLogger, stderrIsJournal } from './log.js';

const usage = `usage: krsifs <command> [options]

  mount [MOUNTPOINT] [--catalogue FILE] [--pin-root DIR] [--ephemeral]
        [--policies DIR] [--policies-strict] [--prune]
                                          serve the krsi filesystem (foreground; default ./mountpoint);
                                          programs are pinned under DIR (default /sys/fs/bpf/krsi) and
                                          outlive the daemon, unless --ephemeral (a clean stop detaches them);
                                          the policy directory (default /etc/krsifs/policies.d when it exists)
                                          is applied before the mount is ready, and again on SIGHUP
  status [--json] [--policies DIR] [--pin-root DIR] [--catalogue FILE]
                                          declared policies against what is attached; exit 1 when not in force
  install [--prefix DIR] [--root DIR] [--no-enable]
                                          install the built project, the objects and the systemd unit, and enable it
  doctor [--json]                         can this machine run krsifs? each failed check with its fix
  hooks [--json] [--catalogue FILE]       every LSM hook this kernel offers, and the behaviour mapped to it
  vm [--kernel 6.1|6.12|PACKAGE] [--accel tcg|kvm] [-- COMMAND...]
                                          run krsifs on a real BPF LSM kernel under QEMU
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const log = createLogger(undefined, 'info', stderrIsJournal());
  logInspectorSignals(log);
  switch (cmd) {
    case 'mount': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          catalogue: { type: 'string' }, 'pin-root': { type: 'string' }, ephemeral: { type: 'boolean' },
          policies: { type: 'string' }, 'policies-strict': { type: 'boolean' }, prune: { type: 'boolean' },
        },
      });
      const { runMount } = await import('./daemon.js');
      return runMount({
        mountpoint: positionals[0] ?? './mountpoint',
        catalogue: values.catalogue,
        pinRoot: values['pin-root'],
        ephemeral: values.ephemeral,
        policies: values.policies,
        policiesStrict: values['policies-strict'],
        prune: values.prune,
        log,
      });
    }
    case 'status': {
      const { values } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean' }, policies: { type: 'string' }, 'pin-root': { type: 'string' }, catalogue: { type: 'string' } },
      });
      const { status, formatStatus } = await import('./status.js');
      const s = await status({ policies: values.policies, pinRoot: values['pin-root'], catalogue: values.catalogue });
      process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      return s.ok ? 0 : 1;
    }
    case 'install': {
      const { values } = parseArgs({
        args: rest,
        options: { prefix: { type: 'string' }, root: { type: 'string' }, 'no-enable': { type: 'boolean' } },
      });
      const { install } = await import('./install.js');
      return install({ prefix: values.prefix, root: values.root, enable: !values['no-enable'], log });
    }
    case 'doctor': {
      const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } } });
      const kernel = await import('./kernel/index.js');
      const { runDoctor, formatChecks } = await import('./doctor.js');
      const checks = await runDoctor({
        probe: () => kernel.probe(),
        hasHooks: async () => (await kernel.kernelHooks()).length,
      });
      process.stdout.write(values.json ? JSON.stringify({ ok: checks.every((c) => c.ok), checks }, null, 2) + '\n' : formatChecks(checks));
      return checks.every((c) => c.ok) ? 0 : 1;
    }
    case 'hooks': {
      const { values } = parseArgs({
        args: rest,
        options: { json: { type: 'boolean' }, catalogue: { type: 'string' } },
      });
      const { hooksReport } = await import('./hooks-report.js');
      process.stdout.write(await hooksReport({ json: !!values.json, catalogue: values.catalogue }));
      return 0;
    }
    case 'vm': {
      const { vmMain } = await import('./vm/cli.js');
      return vmMain(rest);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(usage);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`krsifs: unknown command "${cmd}"\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const err = e instanceof KrsiError ? e : KrsiError.from(e);
    process.stderr.write(`krsifs: ${err.message}${err.code !== 'EIO' ? ` (${err.code})` : ''}\n`);
    process.exitCode = 1;
  },
);
