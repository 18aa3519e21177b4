#!/usr/bin/env node
// Answers the two calls forge and py-solc-x make of a solc binary, using solc-js:
//   --version        -> "Version: 0.8.37+commit..."
//   --standard-json  -> standard JSON in on stdin, standard JSON out on stdout
// Import callbacks resolve against the repo root and node_modules. The process ends
// naturally (no process.exit) so large outputs are not truncated on a pipe.
'use strict';
const fs = require('fs');
const path = require('path');
const root = path.resolve(__dirname, '..');
const solc = require(path.join(root, 'node_modules', 'solc'));

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
} else if (args.includes('--standard-json')) {
  const chunks = [];
  process.stdin.on('data', (c) => chunks.push(c));
  process.stdin.on('end', () => {
    const input = Buffer.concat(chunks).toString('utf8');
    const baseDirs = [process.cwd(), root, path.join(root, 'node_modules')];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '--base-path' || args[i] === '--include-path' || args[i] === '--allow-paths') {
        for (const p of (args[i + 1] || '').split(',')) if (p) baseDirs.push(path.resolve(p));
      }
    }
    const findImports = (importPath) => {
      for (const base of baseDirs) {
        const candidate = path.isAbsolute(importPath) ? importPath : path.join(base, importPath);
        if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
      }
      return { error: 'File not found: ' + importPath };
    };
    process.stdout.write(solc.compile(input, { import: findImports }));
  });
} else {
  process.stderr.write('solcjs-standard-json: only --version and --standard-json are supported\n');
  process.exitCode = 2;
}
