// Issue 18: package-build copies what `rr sources` lists (external debug info, DWOs, and with
// --copy-sources the sources) into the trace. rr cannot record on these machines, so a stand-in answers
// `rr sources` with crafted JSON, and the host files it names are made here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { main, debugCopies } from '../pernosco.mts'
import { fakeSys, tmpdir, traceDir, READ_ONLY, forUser } from './helpers.mts'

const ELF = (tag: string) => Buffer.concat([Buffer.from('\x7fELF', 'latin1'), Buffer.from(tag)])
/** A DWO id above 2^53: a JavaScript number would round it (rr prints it as a bare 64-bit integer). */
const BIG = '18446744073709551557' // 0xffffffffffffffc5

test('debugCopies: the layout for each type, ids exact, the dwp covers its DWOs, sources only under --copy-sources', () => {
  const json = `{
    "relevant_binaries": ["mmap_1_prog"],
    "external_debug_info": [
      { "path":"/usr/lib/debug/.build-id/ab/cdef.debug", "build_id":"abcdef", "type":"debuglink" },
      { "path":"/usr/lib/debug/.dwz/x86_64-linux-gnu/libc6.debug", "build_id":"0123", "type":"debugaltlink" },
      { "path":"/build/prog.dwp", "build_id":"beef01", "type":"dwp" }
    ],
    "dwos":[
      { "name":"a.dwo", "full_path":"/build/obj/a.dwo", "build_id":"beef01", "trace_file":"mmap_1_prog", "comp_dir":"/build", "id":${BIG} },
      { "name":"obj/b.dwo", "full_path":"", "build_id":"cafe02", "trace_file":"mmap_2_lib", "comp_dir":"/build", "id":255 }
    ],
    "symlinks":[],
    "files":{ "/src/proj": ["main.c", "../other/x.c", "inc/h.h"], "": ["/usr/include/stdio.h", "/src/proj/gen/y.c"] }
  }`
  const exists = (p: string) => p === '/build/prog.dwp'
  assert.deepEqual(debugCopies(json, ['/src/proj'], exists), [
    ['/usr/lib/debug/.build-id/ab/cdef.debug', 'debug/.build-id/ab/cdef.debug'],
    ['/usr/lib/debug/.dwz/x86_64-linux-gnu/libc6.debug', 'debug/.build-id/01/23.sup'],
    ['/build/prog.dwp', 'debug/.build-id/be/ef01.dwp'],
    // a.dwo is in prog.dwp (same build-id): not copied; b.dwo has no full_path: comp_dir/name
    ['/build/obj/b.dwo', 'debug/.dwo/00000000000000ff.dwo'],
    ['/src/proj/main.c', 'sources/src/proj/main.c'], ['/src/proj/inc/h.h', 'sources/src/proj/inc/h.h'],
    ['/src/proj/gen/y.c', 'sources/src/proj/gen/y.c']])
  // without the .dwp here, its DWOs are copied one by one; the 64-bit id keeps every digit
  assert.deepEqual(debugCopies(json, [], () => false).filter(([, to]) => to.startsWith('debug/.dwo')),
    [['/build/obj/a.dwo', 'debug/.dwo/ffffffffffffffc5.dwo'], ['/build/obj/b.dwo', 'debug/.dwo/00000000000000ff.dwo']])
  assert.deepEqual(debugCopies('', []), [], 'nothing listed (a dry run, or --skip-rr)')
  assert.throws(() => debugCopies('{"external_debug_info":[{"path":"/x","build_id":"abcd","type":"zdebug"}]}', []), /rr sources: unknown debug info type "zdebug"/)
})

/** A host with rr sources answering `json(dir)`, dir being a temp dir that holds the listed files. */
function hostWith(json: (dir: string) => string, uid?: number) {
  const dir = tmpdir()
  return { dir, f: fakeSys({ uid, answer: a => (a[1] === 'sources' ? { code: 0, out: json(dir) } : undefined) }) }
}

test('package-build: each listed file lands in the builder\'s layout, read-only; a missing file, a FIFO and a device are warned about, never read', async () => {
  const t = traceDir()
  const { dir, f } = hostWith(d => JSON.stringify({
    external_debug_info: [{ path: `${d}/lib.debug`, build_id: 'aa11', type: 'debuglink' }, { path: `${d}/alt`, build_id: 'bb22', type: 'debugaltlink' },
      { path: `${d}/fifo`, build_id: 'cc33', type: 'debuglink' }, { path: '/dev/zero', build_id: 'dd44', type: 'debuglink' }],
    dwos: [{ name: 'x.dwo', full_path: `${d}/x.dwo`, build_id: 'ff66', comp_dir: d, id: 1 }, { name: 'gone.dwo', full_path: '', comp_dir: d, build_id: 'ff66', id: 2 }],
    files: { '': [`${d}/src/a.c`] },
  }).replace('"id":1}', `"id":${BIG}}`))
  fs.writeFileSync(path.join(dir, 'lib.debug'), ELF('debuglink'))
  fs.writeFileSync(path.join(dir, 'alt'), ELF('sup'), { mode: 0o4755 })
  fs.writeFileSync(path.join(dir, 'x.dwo'), ELF('dwo'))
  assert.equal(spawnSync('mkfifo', [path.join(dir, 'fifo')]).status, 0)
  assert.equal(await main(['package-build', t], f.sys), 0, 'a FIFO among them does not hang it')
  const at = (p: string) => fs.readFileSync(path.join(t, p), 'latin1')
  assert.equal(at('debug/.build-id/aa/11.debug'), '\x7fELFdebuglink')
  assert.equal(at('debug/.build-id/bb/22.sup'), '\x7fELFsup')
  assert.equal(at('debug/.dwo/ffffffffffffffc5.dwo'), '\x7fELFdwo')
  assert.equal(fs.statSync(path.join(t, 'debug/.build-id/bb/22.sup')).mode & 0o7777, READ_ONLY, 'no setuid, no write')
  assert.deepEqual(fs.readdirSync(path.join(t, 'debug/.build-id')).sort(), ['aa', 'bb'], 'the FIFO and the device not copied')
  assert.ok(!fs.existsSync(path.join(t, 'sources')), 'no --copy-sources: no sources')
  const not = (p: string) => `pernosco: ${JSON.stringify(p)}: missing or not a regular file, not copied`
  assert.deepEqual(f.err.sort(), [not(`${dir}/fifo`), not(`${dir}/gone.dwo`), not('/dev/zero')].sort())
  // a second run replaces each copy in place
  fs.writeFileSync(path.join(dir, 'lib.debug'), ELF('newer'))
  assert.equal(await main(['package-build', t], f.sys), 0)
  assert.equal(at('debug/.build-id/aa/11.debug'), '\x7fELFnewer')
  assert.deepEqual(fs.readdirSync(path.join(t, 'debug/.build-id/aa')), ['11.debug'], 'no temporary file left')
})

test('package-build: a link planted at any destination is replaced or refused, never followed', async () => {
  const outside = tmpdir()
  const { dir, f } = hostWith(d => JSON.stringify({ external_debug_info: [{ path: `${d}/lib.debug`, build_id: 'aa11', type: 'debuglink' }] }))
  fs.writeFileSync(path.join(dir, 'lib.debug'), ELF('ok'))
  // a link as a directory on the way: refused, nothing written outside
  for (const [where, exp] of [['debug', /debug is a symlink/], ['debug/.build-id', /\.build-id is a symlink/], ['debug/.build-id/aa', /aa is a symlink/]] as const) {
    const t = traceDir()
    fs.mkdirSync(path.join(t, path.dirname(where)), { recursive: true })
    fs.symlinkSync(outside, path.join(t, where))
    assert.equal(await main(['package-build', t], f.sys), 2, where)
    assert.match(f.err.at(-1)!, exp)
    assert.deepEqual(fs.readdirSync(outside), [], `${where}: nothing written outside`)
  }
  // a link, a directory or a file where the file goes: replaced by the copy; the link's target untouched
  for (const plant of ['link', 'dir', 'file']) {
    const t = traceDir(), dest = path.join(t, 'debug/.build-id/aa/11.debug')
    fs.mkdirSync(path.dirname(dest), { recursive: true })
    fs.writeFileSync(path.join(outside, 'victim'), 'theirs')
    if (plant === 'link') fs.symlinkSync(path.join(outside, 'victim'), dest)
    if (plant === 'dir') { fs.mkdirSync(dest); fs.writeFileSync(path.join(dest, 'x'), '') }
    if (plant === 'file') fs.writeFileSync(dest, 'old', { mode: 0o666 })
    assert.equal(await main(['package-build', t], f.sys), 0, plant)
    assert.ok(fs.lstatSync(dest).isFile() && fs.readFileSync(dest, 'latin1') === '\x7fELFok', plant)
    assert.equal(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'theirs', `${plant}: the target untouched`)
  }
})

test('--copy-sources: the sources under DIR land at sources/PATH, and serve then offers them with no --sources', async () => {
  const t = traceDir()
  const { dir, f } = hostWith(d => JSON.stringify({ files: { [`${d}/proj`]: ['main.c', 'sub/u.h', '../escape.c', 'fifo.c'], '': [`${d}/other/o.c`] } }))
  fs.mkdirSync(path.join(dir, 'proj/sub'), { recursive: true }); fs.mkdirSync(path.join(dir, 'other'))
  fs.writeFileSync(path.join(dir, 'proj/main.c'), 'int main;'); fs.writeFileSync(path.join(dir, 'proj/sub/u.h'), '#pragma once')
  fs.writeFileSync(path.join(dir, 'escape.c'), 'not under DIR'); fs.writeFileSync(path.join(dir, 'other/o.c'), 'not under DIR')
  assert.equal(spawnSync('mkfifo', [path.join(dir, 'proj/fifo.c')]).status, 0)
  assert.equal(await main(['package-build', t, '--copy-sources', `${dir}/proj`], f.sys), 0)
  const src = path.join(t, 'sources', dir)
  assert.equal(fs.readFileSync(path.join(src, 'proj/main.c'), 'utf8'), 'int main;')
  assert.equal(fs.readFileSync(path.join(src, 'proj/sub/u.h'), 'utf8'), '#pragma once')
  assert.deepEqual(fs.readdirSync(src).sort(), ['proj'], 'nothing outside DIR, no `..` way out')
  assert.deepEqual(fs.readdirSync(path.join(src, 'proj')).sort(), ['main.c', 'sub'], 'the FIFO is not copied')
  assert.deepEqual(f.err, [`pernosco: ${JSON.stringify(`${dir}/proj/fifo.c`)}: missing or not a regular file, not copied`])
  const g = fakeSys()
  assert.equal(await main(['serve', t, '--dry-run', '--runtime', 'podman'], g.sys), 0)
  const create = g.out.find(l => l.startsWith('podman create'))!
  assert.match(create, / --empty-umask --standalone --host 0\.0\.0\.0 --serve-sources \/pernosco\/database\/sources$/)
  assert.equal(create.match(/--mount /g)!.length, 1, 'no mount beyond the read-only trace')
  // --sources given: those, as before
  const h = fakeSys(), s = tmpdir()
  assert.equal(await main(['serve', t, '--dry-run', '--runtime', 'podman', '--sources', s], h.sys), 0)
  assert.match(h.out.find(l => l.startsWith('podman create'))!, /--serve-sources \/sources$/)
})

test('package-build --dry-run prints rr pack and rr sources, copies nothing', async () => {
  const t = traceDir(false), f = fakeSys()
  assert.equal(await main(['package-build', t, '--dry-run', '--copy-sources', tmpdir()], f.sys), 0)
  assert.deepEqual(f.calls, [])
  assert.deepEqual(f.out.slice(0, 2), [`rr pack ${t}`, `rr sources ${t}`])
  assert.deepEqual(fs.readdirSync(t), ['version'])
})

test('rr sources failing (rr < 5.6) or listing an unknown type: one clear line, exit 2, nothing copied', async () => {
  const t = traceDir(false)
  const old = fakeSys({ answer: a => (a[1] === 'sources' ? { code: 1, out: '', err: 'rr: unknown command sources' } : undefined) })
  assert.equal(await main(['build', t], old.sys), 2)
  assert.deepEqual(old.err, ['rr: unknown command sources', 'pernosco: `rr sources` failed (it needs rr >= 5.6): update rr, or pass --skip-rr'])
  assert.deepEqual(old.calls.map(c => c.slice(0, 2)), [['podman', 'image'], ['podman', 'image'], ['rr', 'pack'], ['rr', 'sources']], 'no builder')
  const { f } = hostWith(() => '{"external_debug_info":[{"path":"/x","build_id":"abcd","type":"gnu-zdebug"}]}')
  assert.equal(await main(['package-build', t], f.sys), 2)
  assert.deepEqual(f.err, ['pernosco: rr sources: unknown debug info type "gnu-zdebug"'])
  assert.deepEqual(fs.readdirSync(t), ['version'])
})

// Issue 27, finding 2: rr reads these paths and ids from the traced binaries, so whoever built them chose them.
test('issue 27: ids that are not hex or decimal never name a file: a build-id `../../../../tmp/x`, a DWO id that is not a 64-bit number', async () => {
  for (const [entry, msg] of [
    [{ external_debug_info: [{ path: '/etc/hostname', build_id: '../../../../tmp/x', type: 'debuglink' }] }, /rr sources: bad build-id \.\.\/\.\.\/\.\.\/\.\.\/tmp\/x/],
    [{ external_debug_info: [{ path: '/etc/hostname', build_id: 'AB', type: 'debuglink' }] }, /bad build-id AB/],
    [{ dwos: [{ name: 'a.dwo', full_path: '/etc/hostname', build_id: 'aa', id: '../x' }] }, /bad DWO id \.\.\/x/],
    [{ dwos: [{ name: 'a.dwo', full_path: '/etc/hostname', build_id: 'aa', id: -1 }] }, /bad DWO id -1/],
  ] as const) {
    const t = traceDir(), outside = tmpdir()
    const f = fakeSys({ answer: a => (a[1] === 'sources' ? { code: 0, out: JSON.stringify(entry) } : undefined) })
    assert.equal(await main(['package-build', t], f.sys), 2, JSON.stringify(entry))
    assert.match(f.err.join('\n'), msg)
    assert.deepEqual(fs.readdirSync(outside), [])
    assert.ok(!fs.existsSync(path.join(t, 'debug')), 'nothing copied')
  }
  // 2^64 itself is one past the largest id
  assert.throws(() => debugCopies(JSON.stringify({ dwos: [{ name: 'a', full_path: '/x', build_id: 'aa' }] }).replace('}]', ',"id":18446744073709551616}]'), []), /bad DWO id 18446744073709551616/)
})

test('issue 27: as root, package-build copies only what the containers\' user may read (cat runs as that user, no supplementary group), never root\'s files', { skip: process.getuid!() !== 0 && 'needs root' }, async () => {
  const t = forUser(traceDir()), d = tmpdir()
  fs.chmodSync(d, 0o755)
  fs.writeFileSync(path.join(d, 'shadow'), ELF('root:secret'), { mode: 0o600 }) // root's, like /etc/shadow
  fs.writeFileSync(path.join(d, 'group-only'), ELF('disk group'), { mode: 0o640 }); fs.chownSync(path.join(d, 'group-only'), 0, 6) // group disk
  fs.writeFileSync(path.join(d, 'public.dwo'), ELF('dwo'), { mode: 0o644 })
  fs.writeFileSync(path.join(d, 'key.dwo'), 'a key of yours, not ELF\n', { mode: 0o644 })
  // rr itself runs as that user too (setpriv), so its answer is matched by what follows `rr`
  const f = fakeSys({ uid: 0, answer: a => (a[a.indexOf('rr') + 1] === 'sources' ? { code: 0, out: JSON.stringify({ dwos: [
    { name: 'shadow', comp_dir: d, build_id: 'aa', id: 1 }, { name: 'group-only', comp_dir: d, build_id: 'aa', id: 2 }, { name: 'public.dwo', comp_dir: d, build_id: 'aa', id: 3 },
    { name: 'key.dwo', comp_dir: d, build_id: 'aa', id: 4 }, { name: 'rel.dwo', comp_dir: 'relative', build_id: 'aa', id: 5 }] }) } : undefined) })
  assert.equal(await main(['package-build', t], f.sys), 0)
  assert.deepEqual(f.calls.map(c => c.join(' ')), ['pack', 'sources'].map(c => `setpriv --reuid=1000 --regid=1000 --clear-groups -- rr ${c} ${t}`), 'rr as that user')
  assert.equal(fs.readFileSync(path.join(t, 'debug/.dwo/0000000000000003.dwo'), 'latin1'), '\x7fELFdwo')
  assert.deepEqual(fs.readdirSync(path.join(t, 'debug/.dwo')), ['0000000000000003.dwo'], 'root\'s and group disk\'s files are not copied, and no temp file is left')
  // (and, found by the attack on these fixes: what is not ELF, or a relative name read from where you stand)
  assert.deepEqual(f.err.map(l => l.replace(/: cat: .*/, '')), [`pernosco: "${d}/shadow": not copied`, `pernosco: "${d}/group-only": not copied`,
    `pernosco: "${d}/key.dwo": not copied: not ELF`, 'pernosco: "relative/rel.dwo": missing or not a regular file, not copied'])
  assert.match(f.err[0], /Permission denied/)
  const st = fs.statSync(path.join(t, 'debug/.dwo/0000000000000003.dwo'))
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1000, 1000, READ_ONLY])
  // As root with no user to run as (no sudo, no config "user"), nothing is packaged at all.
  const g = fakeSys({ uid: 0, sudo: false })
  assert.equal(await main(['package-build', traceDir()], g.sys), 2)
  assert.match(g.err[0], /as root, the containers still never run as root/)
  assert.deepEqual(g.calls, [], 'refused before rr pack')
})

test('issue 27: package-build refuses a trace the db builder was given (it may have rewritten the binaries rr sources reads, and may still be at work in it), --skip-rr too', async () => {
  const t = traceDir()
  fs.writeFileSync(path.join(t, 'pernosco-given-to-builder'), '')
  const f = fakeSys()
  assert.equal(await main(['package-build', t], f.sys), 2)
  assert.deepEqual(f.err, [`pernosco: ${t} was given to the db builder, which may have rewritten what \`rr sources\` reads: package a new recording, or rebuild this one with \`only-build\``])
  assert.deepEqual(f.calls, [], 'not even rr pack')
  const b = fakeSys()
  assert.equal(await main(['build', t], b.sys), 2, 'nor does build')
  // (the attack on these fixes: with --skip-rr, a builder still running swapped a directory for a link to a
  // root-owned one while root copied libthread_db.so in)
  const s = fakeSys()
  assert.equal(await main(['package-build', t, '--skip-rr'], s.sys), 2)
  assert.ok(!fs.existsSync(path.join(t, 'sources.fallback')), 'nothing written')
  // control: without the marker, package-build runs rr pack and rr sources
  const c = fakeSys(), u = traceDir()
  assert.equal(await main(['package-build', u], c.sys), 0)
  assert.deepEqual(c.calls.map(a => a.slice(0, 2)), [['rr', 'pack'], ['rr', 'sources']])
})

test('issue 27 (the attack on its fixes): package-build never copies the kernel\'s files (/proc/self/environ would be the copier\'s own environment), nor an own-property-less type', async () => {
  const t = traceDir(), d = tmpdir()
  fs.symlinkSync('/proc/self/environ', path.join(d, 'env.debug'))
  const f = fakeSys({ answer: a => (a[1] === 'sources' ? { code: 0, out: JSON.stringify({ external_debug_info: [
    { path: '/proc/self/environ', build_id: 'ab01', type: 'debuglink' }, { path: `${d}/env.debug`, build_id: 'ab02', type: 'debuglink' },
    { path: '/sys/kernel/mm/transparent_hugepage/enabled', build_id: 'ab03', type: 'debuglink' }] }) } : undefined) })
  process.env.PMTS_PROBE_SECRET = 'must-not-land'
  try {
    assert.equal(await main(['package-build', t], f.sys), 0)
  } finally {
    delete process.env.PMTS_PROBE_SECRET
  }
  assert.ok(!fs.existsSync(path.join(t, 'debug')), 'nothing copied')
  assert.deepEqual(f.err, ['/proc/self/environ', `${d}/env.debug`, '/sys/kernel/mm/transparent_hugepage/enabled'].map(p => `pernosco: ${JSON.stringify(p)}: missing or not a regular file, not copied`))
  const g = fakeSys({ answer: a => (a[1] === 'sources' ? { code: 0, out: '{"external_debug_info":[{"path":"/etc/hostname","build_id":"cd","type":"__proto__"}]}' } : undefined) })
  assert.equal(await main(['package-build', traceDir()], g.sys), 2)
  assert.deepEqual(g.err, ['pernosco: rr sources: unknown debug info type "__proto__"'])
})
