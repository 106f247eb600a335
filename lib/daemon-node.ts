// How node runs the daemon. Under a daemon's allocation rate V8 grows its
// young generation to the default 16 MiB per semi-space and keeps it: about
// 15 MiB of RSS with every behaviour file full (README Benchmarks, "The
// daemon's memory"); scavenges cost what survives them, not the space's size,
// so a 1 MiB semi-space only makes them more frequent. V8 sizes its heap once,
// from node's command line (v8.setFlagsFromString later changes nothing), so
// every launcher carries these flags: the unit, `npm start`, the `krsifs`
// shebang, the VM's init and the bench. test/fs/service.test.ts checks each.
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
