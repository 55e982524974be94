// `npm run demo` as a normal user on a machine that lacks packages (issue 22): one line that names them and
// the command that installs them, exit 2, and nothing installed or run. (The whole demo runs in .ci/run,
// as root and as a normal user with rootless podman: test/rootless.sh demo.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { ROOT, tmpdir } from './helpers.mts'

test('demo as a normal user with packages missing: one line naming them and the install command; nothing installed', () => {
  // A copy of demo.sh that a normal user can read, and a PATH whose programs (but dirname) only log their call.
  const d = tmpdir('pmts-demo-'), bin = path.join(d, 'bin'), log = path.join(d, 'called')
  fs.mkdirSync(path.join(d, 'test'))
  fs.mkdirSync(bin)
  fs.copyFileSync(path.join(ROOT, 'test/demo.sh'), path.join(d, 'test/demo.sh'))
  for (const b of ['apt-get', 'sudo', 'npm', 'node']) {
    fs.writeFileSync(path.join(bin, b), `#!/bin/sh\necho ${b} >> ${log}\n`, { mode: 0o755 })
  }
  const dirname = spawnSync('sh', ['-c', 'command -v dirname'], { encoding: 'utf8' }).stdout.trim()
  fs.symlinkSync(dirname, path.join(bin, 'dirname')) // the one program demo.sh needs before its check
  fs.writeFileSync(log, '', { mode: 0o666 })
  fs.chmodSync(d, 0o755)
  fs.chmodSync(log, 0o666)
  // As root (CI) the script runs as nobody; otherwise as the user we are.
  const setpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).stdout.trim()
  const as = process.getuid!() === 0 ? [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : []
  const argv = [...as, '/bin/bash', path.join(d, 'test/demo.sh')]
  const p = spawnSync(argv[0], argv.slice(1), { env: { PATH: bin, HOME: d }, encoding: 'utf8' })
  // podman, runc and newuidmap are looked up on PATH; busybox and catatonit by their Debian paths.
  const runs = (f: string) => { try { fs.accessSync(f, fs.constants.X_OK); return true } catch { return false } }
  const need = ['podman', 'runc', ...runs('/bin/busybox') ? [] : ['busybox-static'],
    ...fs.existsSync('/usr/libexec/podman/catatonit') ? [] : ['catatonit'], 'uidmap']
  assert.equal(p.status, 2, p.stderr)
  assert.equal(p.stderr, `demo: needs ${need.join(' ')}: sudo apt-get install -y ${need.join(' ')}\n`)
  assert.equal(p.stdout, '')
  assert.equal(fs.readFileSync(log, 'utf8'), '', 'nothing was called: no apt-get, no sudo, no npm')
})
