// README's Quick start, run as written by bash from a directory that is not the clone (issue 22): the block is
// read from README, `~` is a fresh HOME holding the clone (a link to this checkout), and each `pernosco` line
// runs with `--dry-run` added, so it prints what it would run and runs nothing. npm and rr are stand-ins that
// log their calls (the clone's packages are this checkout's own).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { BUILT } from '../pernosco.mts'
import { ROOT, tmpdir } from './helpers.mts'

for (const clone of ['~/pernosco-mts', '"$HOME/my tools/pm"']) test(`README Quick start, as written, from another directory (each pernosco line a dry run), clone at ${clone}`, () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const block = /## Quick start\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)![1]
  const home = tmpdir('pmts-home-'), work = path.join(home, 'work'), bin = path.join(home, 'bin'), log = path.join(home, 'log')
  for (const d of [work, bin, path.join(home, 'src')]) fs.mkdirSync(d)
  for (const b of ['npm', 'rr']) fs.writeFileSync(path.join(bin, b), `#!/bin/sh\necho "${b} $* (in $PWD)" >> ${log}\n`, { mode: 0o755 })
  // git clone URL DEST: the clone is a link to this checkout (its packages are this checkout's own).
  fs.writeFileSync(path.join(bin, 'git'), `#!/bin/sh\necho "git $2" >> ${log}\nmkdir -p "$(dirname "$3")" && ln -s ${ROOT} "$3"\n`, { mode: 0o755 })
  // rr's latest trace, built, for the lines that take the default trace.
  const trace = path.join(home, '.local/share/rr/t-0')
  fs.mkdirSync(trace, { recursive: true })
  fs.writeFileSync(path.join(trace, BUILT), '')
  fs.symlinkSync(trace, path.join(home, '.local/share/rr/latest-trace'))
  // The function line as written; then each pernosco call gets --dry-run in front of its arguments.
  const at = block.replace(/^P=\S+/m, `P=${clone}`)
  const script = at.replace(/^(pernosco\(\).*)$/m, '$1\neval "$(declare -f pernosco | sed \'s/ "\\$@"/ --dry-run "$@"/\')"')
  assert.notEqual(script, at, 'the block defines the pernosco function')
  assert.match(block, /^P=~\/pernosco-mts /m, 'the block says where the clone goes')
  const sudo = process.getuid!() === 0 ? { SUDO_UID: '1000', SUDO_GID: '1000' } : {} // as root: through sudo
  const env = { PATH: `${bin}:${process.env.PATH}`, HOME: home, NO_COLOR: '1', ...sudo }
  // (A dry run needs neither rr nor perf_event_paranoid <= 1.)
  const p = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: work, env, encoding: 'utf8' })
  assert.equal(p.status, 0, p.stderr)
  const real = fs.realpathSync(trace)
  const dest = clone.startsWith('~') ? path.join(home, 'pernosco-mts') : path.join(home, 'my tools/pm')
  assert.equal(fs.readFileSync(log, 'utf8'), `git https://github.com/pernosco-mts/pernosco.mts\nnpm ci (in ${dest})\n`, 'cloned, npm ci ran in the clone; rr only printed')
  const out = p.stdout.split('\n')
  assert.ok(out.includes('rr record ./my-test'), 'record: ./my-test, relative to where you are')
  // (as root, rr runs as sudo's user: `setpriv --reuid=1000 … -- rr pack`, issue 27)
  assert.equal(out.filter(l => l.replace(/^setpriv .* -- /, '') === `rr pack ${real}`).length, 2, 'both build lines: the latest trace')
  const create = out.find(l => / create .*dst=\/pernosco\/storage/.test(l))!
  assert.match(create, new RegExp(`src=${real},dst=/pernosco/database,[^ ]*readonly`))
  assert.match(create, new RegExp(`src=${home}/pernosco-notes,dst=/pernosco/storage,`))
  assert.match(create, new RegExp(`src=${home}/src,dst=/sources${home}/src,[^ ]*readonly`))
  assert.equal(fs.statSync(path.join(home, 'pernosco-notes')).mode & 0o777, 0o700, 'the mkdir line makes it 0700')
  assert.ok(!fs.existsSync(path.join(work, 'pernosco.json')) && fs.readdirSync(work).length === 0, 'nothing written where you are')
})
