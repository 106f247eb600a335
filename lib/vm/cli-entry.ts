#!/usr/bin/env node
// `node dist/lib/vm/cli-entry.js ARGS` = `krsifs vm ARGS`, for scripts/vm.sh
// and for use before lib/cli.ts dispatches `vm`.
import { vmMain } from './cli.js';

process.exitCode = await vmMain(process.argv.slice(2));
