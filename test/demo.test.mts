// `npm run demo` as a normal user on a machine that lacks packages (issue 22): one line that names them and
// the command that installs them, exit 2, and nothing installed or run; then Ctrl-C at each step (issue 29).
// (The whole demo runs in .ci/run, as root and as a normal user with rootless podman: test/rootless.sh demo.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import os from 'node:os'
import { spawn, spawnSync } from 'node:child_process'
import { ROOT, tmpdir } from './helpers.mts'
import { HAVE_PODMAN, podman, podmanEnv, pernoscoContainers } from './podman-env.mts'

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

// Ctrl-C at each step of the demo (issue 29): typed into a terminal (script(1) gives the demo one), so the line
// discipline sends SIGINT to the whole foreground process group, npm and the wrapper included. Each run ends with
// the demo's own last line and leaves none of its images, containers or folders; at the serve it kept running for
// you, Ctrl-C is how you stop it, and the demo exits 0. Where a Ctrl-C lands within a step varies: the demo's
// last line says which step it stopped.
const STOPS: { at: string; after: number; code: number }[] = [
  { at: '== stand-in images', after: 200, code: 130 }, // during the podman import
  { at: '== record:', after: 0, code: 130 },
  { at: '== build:', after: 1000, code: 130 }, // the builder's container
  { at: '== serve:', after: 300, code: 130 }, // the server starting
  { at: '-- proved: the server has no network', after: 300, code: 130 }, // Chromium, when installed
  { at: 'Still serving', after: 0, code: 0 },
]
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
test('demo: Ctrl-C at each step leaves no image, container or folder; the last line is the demo\'s; stopping the kept serve exits 0', { skip: !HAVE_PODMAN && !process.env.CI && 'needs podman (CI installs it)', timeout: 900_000 }, async () => {
  const png = path.join(ROOT, 'pernosco-demo.png'), hadPng = fs.existsSync(png)
  // The demo's TMPDIR is this process's own (helpers.mts): what it leaves there is its own. tsx keeps its
  // compile cache there too (tsx-UID), which is tsx's, not the demo's.
  const ours = () => fs.readdirSync(os.tmpdir()).filter(d => !d.startsWith('tsx-')).sort()
  podmanEnv() // this test's own podman set-up, made before the count
  const before = ours()
  const chromium = fs.existsSync('/usr/bin/chromium') // without it the demo takes no screenshot
  for (const s of STOPS.filter(x => chromium || !x.at.startsWith('-- proved: the server'))) {
    // exec: script runs it with $SHELL -c, and a dash there would end 130 on any Ctrl-C (as package.json's does)
    const p = spawn('script', ['-qec', 'exec npm run demo', '/dev/null'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>(ok => p.on('exit', code => ok(code)))
    let out = ''
    p.stdout!.on('data', d => { out += d })
    p.stderr!.on('data', d => { out += d })
    for (let i = 0; i < 1200 && !out.includes(s.at) && p.exitCode === null; i++) await sleep(100)
    assert.ok(out.includes(s.at), `the demo reached "${s.at}":\n${out.slice(-3000)}`)
    await sleep(s.after)
    p.stdin!.write('\x03') // Ctrl-C, as typed
    let timer: NodeJS.Timeout | undefined
    const code = await Promise.race([exited, new Promise(ok => { timer = setTimeout(ok, 90_000, 'late') })])
    clearTimeout(timer)
    if (code === 'late') p.kill('SIGKILL') // script's end hangs up the terminal: the demo still cleans up
    // The pty's output, without npm's spinner (a braille character it erases with escapes) and CRs.
    const lines = out.replace(/\^C|\x1b\[[0-9;?]*[A-Za-z]|[\u2800-\u28ff]|\r/g, '').split('\n').filter(l => l.trim())
    const last = lines.at(-1)!
    console.log(`# Ctrl-C after "${s.at}" (+${s.after} ms): exit ${code}; last line: ${last}`)
    assert.equal(code, s.code, out.slice(-3000))
    assert.match(last, /^demo: (stopped by SIGINT during|done, serve stopped).*; it left no container, image or folder$/)
    const pid = /pernosco-demo-builder:(\d+)/.exec(out)![1]
    const images = podman('images', '--format', '{{.Repository}}:{{.Tag}}').split('\n')
    assert.deepEqual(images.filter(i => i.endsWith(`:${pid}`)), [], 'no image of this demo')
    const made = new Set(out.match(/pernosco-(builder|server)-[0-9a-f]{12}/g) ?? [])
    const names = podman('ps', '-a', '--format', '{{.Names}}').split('\n')
    assert.deepEqual(names.filter(n => made.has(n)), [], 'no container of this demo')
    assert.deepEqual(pernoscoContainers(), [], 'none mounting anything of ours')
    assert.deepEqual(ours(), before, 'no folder of the demo\'s in its TMPDIR')
  }
  assert.equal(fs.statSync(png).mode & 0o777, 0o600, 'the screenshot is only yours')
  if (!hadPng) fs.rmSync(png)
})
