// Issue 31: what Pernosco's own wrapper offers in package-build and logging: --substitute, --gdb-script, the
// gdbinit printers of Mozilla's and Chromium's trees, --system-debuginfo overlays (and a hostile one), --log.
// rr cannot record here: a fake host answers `rr sources` and `rr buildid` with crafted output; xz, tar and find
// are the real ones.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { main, COMMANDS, SOURCES_FALLBACK } from '../pernosco.mts'
import { fakeSys, tmpdir, traceDir, ROOT } from './helpers.mts'

const ROOT_USER = process.getuid!() === 0
/** As root, the fake host is root through sudo from uid 1000: tar, find and cat then really run as 1000. */
const HOST = ROOT_USER ? { uid: 0 } : {}
/** What uid 1000 (as root) or you must reach: the trace writable, the rest readable. */
function reachable<T extends string>(d: T, write = false): T {
  if (!ROOT_USER) return d
  for (let p = d as string; p !== '/'; p = path.dirname(p)) fs.chmodSync(p, fs.statSync(p).mode | 0o011)
  spawnSync('chmod', ['-R', 'a+rX', d])
  if (write) spawnSync('chown', ['-R', '1000:1000', d])
  return d
}
function files(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string) => { for (const e of fs.readdirSync(path.join(dir, d), { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else out.push(p) } }
  walk('')
  return out.sort()
}
const write = (f: string, text = 'x') => { fs.mkdirSync(path.dirname(f), { recursive: true }); fs.writeFileSync(f, text) }
const sourcesAnswer = (json: object, ids = '') => (a: readonly string[]) => {
  if (a.includes('sources')) return { code: 0, out: JSON.stringify(json) }
  if (a.includes('buildid')) return { code: 0, out: ids }
  return undefined
}

test('--substitute and --gdb-script: the exact rr sources argv; DIR is copied from; sources.user from rr\'s comp_dir_substitutions', async () => {
  const t = reachable(traceDir(false), true), lib = reachable(tmpdir()), script = path.join(lib, 'load.gdb')
  write(path.join(lib, 'malloc/malloc.c'), 'int m;\n')
  write(script, 'set debuginfod enabled off\n')
  reachable(lib)
  const json = { comp_dir_substitutions: { 'libc-2.32.so': lib }, files: { '': [path.join(lib, 'malloc/malloc.c')] } }
  const f = fakeSys({ ...HOST, answer: sourcesAnswer(json) })
  assert.equal(await main(['package-build', t, '--substitute', `libc-2.32.so=${lib}`, '--gdb-script', script], f.sys), 0, f.err.join('\n'))
  const as = ROOT_USER ? ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', '--'] : []
  assert.deepEqual(f.calls, [[...as, 'rr', 'pack', t], [...as, 'rr', 'sources', '--substitute', `libc-2.32.so=${lib}`, '--gdb-script', script, t]])
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(t, 'sources.user'), 'utf8')), [{ condition: { binary: 'libc-2.32.so' }, overrideCompDir: lib }])
  assert.equal(fs.readFileSync(path.join(t, 'sources', lib, 'malloc/malloc.c'), 'utf8'), 'int m;\n', 'the substituted DIR is copied from, as --copy-sources')
  // rr too old for --substitute: one line that says so
  const old = fakeSys({ ...HOST, answer: a => (a.includes('sources') ? { code: 1, out: '' } : undefined) })
  assert.equal(await main(['package-build', traceDir(false), '--substitute', `libc-2.32.so=${lib}`], old.sys), 2)
  assert.equal(old.err.at(-1), 'pernosco: `rr sources` failed (it needs rr >= 5.6, and --substitute a newer one): update rr, or pass --skip-rr')
})

test('package-build options refused in one line before anything runs', async () => {
  const d = tmpdir(), t = traceDir(false)
  for (const [args, msg] of [
    [['--substitute', 'libc.so'], /--substitute is LIB=DIR, LIB a file name \(e\.g\. libc-2\.32\.so\): not "libc\.so"$/],
    [['--substitute', `lib/c.so=${d}`], /--substitute is LIB=DIR/],
    [['--substitute', 'libc.so=rel'], /--substitute: "rel" is relative/],
    [['--gdb-script', 'x.gdb'], /--gdb-script: "x\.gdb" is not an absolute file path$/],
    [['--gdb-script', d], /--gdb-script: ".*" is not an absolute file path$/],
    [['--system-debuginfo', 'mirror'], /--system-debuginfo: "mirror" is relative/],
    [['--system-debuginfo', `${d}/nope`], /--system-debuginfo: .*nope does not exist/],
    [['--skip-rr', '--substitute', `libc.so=${d}`], /--copy-sources, --substitute, --gdb-script, --system-debuginfo run rr: drop --skip-rr$/],
    [['--skip-rr', '--system-debuginfo', 's3://bucket/prefix'], /run rr: drop --skip-rr$/],
  ] as [string[], RegExp][]) {
    const f = fakeSys()
    assert.equal(await main(['package-build', t, ...args], f.sys), 2, args.join(' '))
    assert.match(f.err.join('\n'), msg)
    assert.equal(f.err.length, 1)
    assert.deepEqual(f.calls, [])
  }
  for (const o of ['substitute', 'gdb-script', 'system-debuginfo']) for (const c of ['build', 'package-build']) assert.ok(COMMANDS[c].options.includes(o), `${c} --${o}`)
})

test('gdbinit: a Mozilla and a Chromium tree under --copy-sources give the reference\'s layout; a tree elsewhere gives none', async () => {
  const src = reachable(tmpdir()), t = reachable(traceDir(false), true)
  const moz = path.join(src, 'mozilla-central'), cr = path.join(src, 'chromium/src'), other = reachable(tmpdir())
  for (const f of ['.gdbinit', '.gdbinit_python', 'third_party/python/gdbpp/gdbpp/__init__.py', 'dom/a.cpp']) write(path.join(moz, f), `moz ${f}\n`)
  for (const f of ['tools/gdb/gdb_chrome.py', 'tools/gdb/viewg.gdb', 'third_party/libcxx-pretty-printers/libcxx/v1/printers.py',
    'third_party/blink/tools/gdb/blink.py', 'v8/tools/gdbinit', 'v8/tools/gdb-v8-support.py', 'base/b.cc']) write(path.join(cr, f), `cr ${f}\n`)
  write(path.join(other, '.gdbinit'), 'not copied\n')
  fs.symlinkSync('/etc/passwd', path.join(cr, 'tools/gdb/passwd.py')) // a link in a tree: never followed
  reachable(src)
  const json = { files: { [moz]: ['dom/a.cpp'], [cr]: ['base/b.cc'], [other]: ['c.c'] } }
  const f = fakeSys({ ...HOST, answer: sourcesAnswer(json) })
  assert.equal(await main(['package-build', t, '--copy-sources', src], f.sys), 0, f.err.join('\n'))
  const m = moz.replaceAll('/', '_'), c = cr.replaceAll('/', '_')
  assert.deepEqual(files(path.join(t, 'gdbinit')), [
    '.gdbinit',
    `${c}/.gdbinit`, `${c}/third_party/blink/tools/gdb/blink.py`, `${c}/third_party/libcxx-pretty-printers/libcxx/v1/printers.py`,
    `${c}/tools/gdb/gdb_chrome.py`, `${c}/tools/gdb/viewg.gdb`, `${c}/v8/tools/gdb-v8-support.py`, `${c}/v8/tools/gdbinit`,
    `${m}/.gdbinit`, `${m}/.gdbinit_python`, `${m}/third_party/python/gdbpp/gdbpp/__init__.py`].sort())
  assert.equal(fs.readFileSync(path.join(t, 'gdbinit', m, '.gdbinit'), 'utf8'), 'moz .gdbinit\n', 'Mozilla\'s own, as it is')
  assert.equal(fs.readFileSync(path.join(t, 'gdbinit', c, '.gdbinit'), 'utf8'), `python
import sys
sys.path.insert(0, "/trace/gdbinit/${c}/tools/gdb/")
sys.path.insert(0, "/trace/gdbinit/${c}/third_party/libcxx-pretty-printers/")
import gdb_chrome
try:
    from libcxx.v1.printers import register_libcxx_printers
    register_libcxx_printers(None)
except Exception:
    pass
gdb.execute('source /trace/gdbinit/${c}/tools/gdb/viewg.gdb')
end
`)
  const top = fs.readFileSync(path.join(t, 'gdbinit/.gdbinit'), 'utf8').split('\n')
  assert.deepEqual(top, [...[m, c].flatMap(s => [`directory /trace/gdbinit/${s}`, `source /trace/gdbinit/${s}/.gdbinit`]), ''], 'in the order rr lists the trees')
  assert.equal(fs.readFileSync(path.join(t, 'gdbinit', c, 'v8/tools/gdbinit'), 'utf8'), 'cr v8/tools/gdbinit\n')
})

/** An xz tar of `files` (name → content), built by GNU tar from a staging dir. */
function overlay(dir: string, name: string, content: Record<string, string>) {
  const stage = tmpdir()
  for (const [f, text] of Object.entries(content)) write(path.join(stage, f), text)
  assert.equal(spawnSync('tar', ['-C', stage, '-cJf', path.join(dir, name), ...Object.keys(content)]).status, 0)
}
function manifest(dir: string, overlays: Record<string, string[]>) {
  fs.writeFileSync(path.join(dir, 'trace-overlay.manifest'), JSON.stringify({ overlays }))
  assert.equal(spawnSync('xz', ['-f', path.join(dir, 'trace-overlay.manifest')]).status, 0)
}

test('--system-debuginfo DIR: rr buildid reads the mapped files\' names; of two overlays the one that lists a build-id of the trace is unpacked', async () => {
  const mirror = tmpdir(), t = traceDir(false)
  for (const n of ['mmap_pack_3_libc.so.6', 'mmap_clone_5_prog']) fs.writeFileSync(path.join(t, n), '')
  overlay(mirror, 'libc6-dbg.tar.xz', { 'usr/lib/debug/.build-id/ab/cdef.debug': 'libc debug\n' })
  overlay(mirror, 'zlib-dbg.tar.xz', { 'usr/lib/debug/.build-id/99/9999.debug': 'zlib debug\n' })
  manifest(mirror, { 'libc6-dbg.tar.xz': ['abcdef', '0123'], 'zlib-dbg.tar.xz': ['999999'] })
  reachable(mirror)
  reachable(t, true)
  const f = fakeSys({ ...HOST, answer: sourcesAnswer({}, 'abcdef\n4242\n') })
  assert.equal(await main(['package-build', t, '--system-debuginfo', mirror], f.sys), 0, f.err.join('\n'))
  const as = ROOT_USER ? ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups', '--'] : []
  assert.deepEqual(f.calls.at(-1), [...as, 'rr', 'buildid'])
  assert.deepEqual(f.ios.at(-1)?.input?.split('\n').sort(), ['', path.join(t, 'mmap_clone_5_prog'), path.join(t, 'mmap_pack_3_libc.so.6')])
  assert.equal(fs.readFileSync(path.join(t, 'usr/lib/debug/.build-id/ab/cdef.debug'), 'utf8'), 'libc debug\n')
  assert.ok(!fs.existsSync(path.join(t, 'usr/lib/debug/.build-id/99')), 'the overlay no build-id of the trace names stays out')
  // a dry run prints the pipelines, runs none
  const g = fakeSys(HOST)
  assert.equal(await main(['package-build', traceDir(false), '--system-debuginfo', mirror, '--dry-run'], g.sys), 0)
  assert.ok(g.out.includes(`dd if=${mirror}/trace-overlay.manifest.xz iflag=nofollow,nonblock bs=1M status=none | xz -dc`), g.out.join('\n'))
  const s3 = fakeSys(HOST)
  assert.equal(await main(['package-build', traceDir(false), '--system-debuginfo', 's3://pernosco-system-debuginfo-overlays', '--dry-run'], s3.sys), 0)
  assert.ok(s3.out.includes('aws s3 cp s3://pernosco-system-debuginfo-overlays/trace-overlay.manifest.xz - | xz -dc'), s3.out.join('\n'))
})

test('--system-debuginfo: a hostile overlay (absolute names, .., a link out and a file through it, a FIFO, setuid) writes nothing outside the trace and leaves none of it', async () => {
  const mirror = tmpdir(), t = traceDir(false), out = reachable(tmpdir(), true), stage = tmpdir(), stage2 = tmpdir()
  fs.writeFileSync(path.join(t, 'mmap_pack_1_libc.so.6'), '')
  write(path.join(stage, 'abs.txt'), 'absolute\n')
  write(path.join(stage, 'up.txt'), 'dot-dot\n')
  write(path.join(stage, 'setuid'), '#!/bin/sh\n')
  fs.chmodSync(path.join(stage, 'setuid'), 0o4755)
  fs.symlinkSync(out, path.join(stage, 'lnk'))
  assert.equal(spawnSync('mkfifo', [path.join(stage, 'fifo')]).status, 0)
  write(path.join(stage2, 'lnk/through.txt'), 'through the link\n')
  const tar = path.join(mirror, 'evil.tar')
  const t1 = spawnSync('tar', ['-C', stage, '-cPf', tar, `--transform=s,^abs.txt$,${out}/abs.txt,`, '--transform=s,^up.txt$,../up.txt,', 'abs.txt', 'up.txt', 'setuid', 'lnk', 'fifo'], { encoding: 'utf8' })
  assert.equal(t1.status, 0, t1.stderr)
  assert.equal(spawnSync('tar', ['-C', stage2, '-rPf', tar, 'lnk/through.txt']).status, 0)
  assert.match(spawnSync('tar', ['-tvPf', tar], { encoding: 'utf8' }).stdout, new RegExp(`${out}/abs\\.txt[\\s\\S]*\\.\\./up\\.txt[\\s\\S]*lnk -> ${out}[\\s\\S]*lnk/through\\.txt`), 'the archive holds what it claims')
  assert.equal(spawnSync('xz', [tar]).status, 0)
  manifest(mirror, { 'evil.tar.xz': ['abcdef'] })
  reachable(mirror)
  reachable(t, true)
  const f = fakeSys({ ...HOST, answer: sourcesAnswer({}, 'abcdef\n') })
  const code = await main(['package-build', t, '--system-debuginfo', mirror], f.sys)
  assert.deepEqual(fs.readdirSync(out), [], 'nothing written through the link or by the absolute name')
  assert.ok(!fs.existsSync(path.join(path.dirname(t), 'up.txt')), 'nothing written above the trace')
  const left = spawnSync('find', [t, '(', '-type', 'l', '-o', '-type', 'p', '-o', '-perm', '/6000', ')'], { encoding: 'utf8' }).stdout
  assert.equal(left, '', 'no link, FIFO or setuid file left in the trace')
  // GNU tar refuses the `..` member, so it exits 2: package-build stops with one line that says so
  assert.equal(code, 2, f.err.join('\n'))
  assert.match(f.err.at(-1)!, /^pernosco: dd if=.*evil\.tar\.xz iflag=nofollow,nonblock bs=1M status=none \| tar -xJf - -C .* --no-same-owner --no-same-permissions --skip-old-files '--exclude=pernosco-\*' '--exclude=sources\.\*' --exclude=gdbinit failed \(0,2\): /)
})

// The attack on these (a helper's, before landing): each of its breaks, now refused.
test('--system-debuginfo, the attack\'s breaks: a link already in the trace, a mirror file that is a link or a FIFO, junk that is not xz, an empty build-id, our own names and the trace\'s files in an overlay', async () => {
  const mirror = tmpdir(), t = traceDir(false), canary = reachable(tmpdir(), true)
  fs.writeFileSync(path.join(t, 'mmap_pack_1_libc.so.6'), 'the recording\n')
  fs.symlinkSync(path.relative(t, canary), path.join(t, 'out')) // planted before package-build: ../../canary
  overlay(mirror, 'a.tar.xz', { 'out/pwned': 'through a link\n', 'pernosco-built': 'planted\n', 'mmap_pack_1_libc.so.6': 'REPLACED\n', 'usr/lib/debug/x.debug': 'ok\n',
    'sources.user': '[{"overrideCompDir":"/etc"}]', 'sources.fallback': '[{"files":[{"url":"https://attacker.example/"}]}]', 'gdbinit/.gdbinit': 'python import os\n' })
  overlay(mirror, 'b.tar.xz', { 'b.txt': 'for every trace?\n' })
  manifest(mirror, { 'a.tar.xz': ['abcdef'], 'b.tar.xz': [''] })
  reachable(mirror)
  reachable(t, true)
  const f = fakeSys({ ...HOST, answer: sourcesAnswer({}, 'abcdef\n\n') })
  assert.equal(await main(['package-build', t, '--system-debuginfo', mirror], f.sys), 0, f.err.join('\n'))
  assert.deepEqual(fs.readdirSync(canary), [], 'the link planted before the first archive was gone before it')
  assert.ok(f.err.some(l => /^pernosco: after rr pack: removed out \(type l/.test(l)), f.err.join('\n'))
  assert.equal(fs.readFileSync(path.join(t, 'mmap_pack_1_libc.so.6'), 'utf8'), 'the recording\n', 'nothing of the trace is replaced')
  assert.ok(!fs.existsSync(path.join(t, 'pernosco-built')), 'none of our own names is made')
  assert.equal(fs.readFileSync(path.join(t, 'sources.fallback'), 'utf8'), SOURCES_FALLBACK, 'nor the rules the builder reads (the second attack)')
  assert.ok(!fs.existsSync(path.join(t, 'sources.user')) && !fs.existsSync(path.join(t, 'gdbinit')), 'nor the printers gdb sources')
  assert.equal(fs.readFileSync(path.join(t, 'usr/lib/debug/x.debug'), 'utf8'), 'ok\n')
  assert.ok(!fs.existsSync(path.join(t, 'b.txt')), 'an empty build-id matches nothing')
  // A mirror file that is a link (to a file of yours), a FIFO (it would hang a read), junk that is not xz.
  const private_ = path.join(tmpdir(), 'secret.tar.xz')
  overlay(path.dirname(private_), 'secret.tar.xz', { 'secret.txt': 'yours\n' })
  for (const [name, make, msg] of [
    ['link.tar.xz', (p: string) => fs.symlinkSync(private_, p), /link\.tar\.xz: not a regular file$/],
    ['fifo.tar.xz', (p: string) => assert.equal(spawnSync('mkfifo', [p]).status, 0), /fifo\.tar\.xz: not a regular file$/],
    ['junk.tar.xz', (p: string) => fs.writeFileSync(p, Buffer.alloc(2_000_000, 7)), /junk\.tar\.xz .* failed/],
  ] as [string, (p: string) => void, RegExp][]) {
    const m = tmpdir(), u = traceDir(false)
    fs.writeFileSync(path.join(u, 'mmap_pack_1_libc.so.6'), '')
    make(path.join(m, name))
    manifest(m, { [name]: ['abcdef'] })
    reachable(m)
    reachable(u, true)
    const g = fakeSys({ ...HOST, answer: sourcesAnswer({}, 'abcdef\n') })
    const t0 = Date.now()
    assert.equal(await main(['package-build', u, '--system-debuginfo', m], g.sys), 2, name)
    assert.ok(Date.now() - t0 < 20_000, `${name}: no hang`)
    assert.match(g.err.at(-1)!, msg)
    assert.ok(!fs.existsSync(path.join(u, 'secret.txt')), name)
  }
})

test('sources (the second attack): a source file or directory under --copy-sources that is a link to elsewhere is not copied', async () => {
  const src = reachable(tmpdir()), home = reachable(tmpdir()), t = reachable(traceDir(false), true)
  write(path.join(home, 'id_rsa'), 'PRIVATE KEY\n')
  write(path.join(src, 'repo/main.c'), 'int main;\n')
  fs.symlinkSync(path.join(home, 'id_rsa'), path.join(src, 'repo/config.h'))
  fs.symlinkSync(home, path.join(src, 'repo/vendor'))
  reachable(src)
  reachable(home)
  const json = { files: { [path.join(src, 'repo')]: ['main.c', 'config.h', 'vendor/id_rsa'] } }
  const f = fakeSys({ ...HOST, answer: sourcesAnswer(json) })
  assert.equal(await main(['package-build', t, '--copy-sources', src], f.sys), 0, f.err.join('\n'))
  assert.deepEqual(files(path.join(t, 'sources')), [path.join(src, 'repo/main.c').slice(1)])
  assert.equal(f.err.filter(l => /missing or not a regular file, not copied$/.test(l)).length, 2, f.err.join('\n'))
})

test('as root, a sudo user id that setresuid reads as "unchanged" (4294967295) is refused, never run as root', async () => {
  const f = fakeSys({ uid: 0, sudo: false })
  f.sys.env.SUDO_UID = '4294967295'
  f.sys.env.SUDO_GID = '4294967295'
  assert.equal(await main(['package-build', traceDir(false)], f.sys), 2)
  assert.match(f.err[0], /^pernosco: as root, the containers still never run as root/)
  assert.deepEqual(f.calls, [])
  const d = tmpdir()
  fs.writeFileSync(path.join(d, 'c.json'), JSON.stringify({ user: '1000:4294967295' }))
  const g = fakeSys({ uid: 0 })
  assert.equal(await main(['package-build', traceDir(false), '--config', path.join(d, 'c.json')], g.sys), 2)
  assert.match(g.err[0], /\/user "1000:4294967295" is not allowed \(.*at most 9 digits/)
})

test('printers: a tree or a printer directory that is a link out of what you named is not copied', async () => {
  const src = reachable(tmpdir()), victim = reachable(tmpdir()), t = reachable(traceDir(false), true)
  write(path.join(victim, '.gdbinit'), 'victim\n')
  write(path.join(victim, 'tools/gdb/secret.py'), 'victim\n')
  fs.symlinkSync(victim, path.join(src, 'link')) // the tree itself
  write(path.join(src, 'tree/.gdbinit'), 'mine\n')
  fs.symlinkSync(path.join(victim, 'tools'), path.join(src, 'tree/tools')) // a directory on the way
  reachable(src)
  const json = { files: { [path.join(src, 'link')]: ['a.c'], [path.join(src, 'tree')]: ['b.c'] } }
  const f = fakeSys({ ...HOST, answer: sourcesAnswer(json) })
  assert.equal(await main(['package-build', t, '--copy-sources', src], f.sys), 0, f.err.join('\n'))
  const sub = path.join(src, 'tree').replaceAll('/', '_')
  assert.deepEqual(files(path.join(t, 'gdbinit')), ['.gdbinit', `${sub}/.gdbinit`])
})

test('--log LEVEL:FILE: RUST_LOG for both containers (error without it), a new file; refused when taken or malformed', async () => {
  const d = tmpdir(), log = path.join(d, 'pernosco.log'), t = traceDir()
  const f = fakeSys()
  assert.equal(await main(['--log', `debug:${log}`, 'only-build', t, '--runtime', 'podman'], f.sys), 0)
  assert.ok(f.calls.find(c => c[1] === 'create')!.join(' ').includes(' --env RUST_BACKTRACE=full --env RUST_LOG=debug --entrypoint db_builder '))
  assert.equal(fs.statSync(log).mode & 0o777, 0o600)
  const start = f.calls.findIndex(c => c[1] === 'start')
  assert.equal(typeof f.ios[start]?.log, 'number', 'start --attach writes to the log')
  const g = fakeSys()
  assert.equal(await main(['--log', `info:${log}`, 'only-build', t], g.sys), 2)
  assert.match(g.err[0], /^pernosco: --log ".*pernosco\.log": EEXIST: .*; name a new file$/)
  fs.symlinkSync('/etc/hostname', path.join(d, 'link.log'))
  const before = fs.readFileSync('/etc/hostname', 'utf8')
  assert.equal(await main(['--log', `info:${d}/link.log`, 'only-build', t], fakeSys().sys), 2, 'never through a link')
  assert.equal(fs.readFileSync('/etc/hostname', 'utf8'), before)
  const twice = fakeSys()
  assert.equal(await main(['--log', `info:${d}/a.log`, '--log', `info:${d}/b.log`, 'only-build', t], twice.sys), 2)
  assert.deepEqual(twice.err, ['pernosco: --log may be given once'])
  for (const bad of ['debug', 'verbose:/tmp/x.log', 'debug:x.log']) {
    const h = fakeSys()
    assert.equal(await main(['--log', bad, 'only-build', t], h.sys), 2)
    assert.equal(h.err[0], `pernosco: --log is LEVEL:/ABSOLUTE/FILE, LEVEL one of error,warn,info,debug: not ${JSON.stringify(bad)}`)
  }
  const s = fakeSys()
  assert.equal(await main(['serve', t, '--dry-run'], s.sys), 0, s.err.join('\n'))
  assert.match(s.out.find(l => l.includes(' create '))!, / --env RUST_BACKTRACE=full --env RUST_LOG=error --env PERNOSCO_ENABLE_VARIABLES_ANNOTATIONS=0 /)
})

test('--log: a container\'s lines go to the file, tagged and filtered; only ^ERROR: lines reach the terminal too', () => {
  const d = tmpdir(), log = path.join(d, 'c.log')
  const code = `import fs from 'node:fs'; import { realSys } from ${JSON.stringify(path.join(ROOT, 'pernosco.mts'))}
    const fd = fs.openSync(${JSON.stringify(log)}, 'wx')
    await realSys().run(['sh', '-c', 'echo one; printf "\\\\033]52;c;eA==\\\\007two\\\\n"; echo "^ERROR: three" >&2'], false, 'builder |', { log: fd })`
  const p = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  assert.equal(p.status, 0, p.stderr)
  assert.equal(p.stdout, '')
  assert.equal(p.stderr, 'builder | ^ERROR: three\n')
  assert.deepEqual(fs.readFileSync(log, 'utf8').split('\n').sort(), ['', 'builder | ]52;c;eA==two', 'builder | ^ERROR: three', 'builder | one'])
})
