// Issue 27 (the third review), the findings a fake host can show: each test fails on 9c80b41's pernosco.mts.
// The container-side ones (seccomp families, ACLs, the marker's mount, mounts.conf, /etc/hosts) are in the
// hostile suite (test/hostile/), the real-podman ones (signals, CHOWN, a containers.conf volume) in e2e-podman.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { main, BRIDGE } from '../pernosco.mts'
const GIVEN = 'pernosco-given-to-builder' // (a literal: the same tests run against the file before issue 27)
import { fakeSys, tmpdir, traceDir } from './helpers.mts'

test('finding 1: the builder is never given a trace with a hard link (rr\'s mmap_hardlink_* before rr pack): refused, nothing created', async () => {
  const t = traceDir(), src = tmpdir()
  fs.writeFileSync(path.join(src, 'prog'), 'your binary\n')
  fs.linkSync(path.join(src, 'prog'), path.join(t, 'mmap_hardlink_3_prog'))
  for (const args of [['only-build', t], ['build', t, '--skip-rr']]) {
    const f = fakeSys()
    assert.equal(await main([...args, '--runtime', 'podman'], f.sys), 2, args.join(' '))
    assert.deepEqual(f.err, [`pernosco: "${t}/mmap_hardlink_3_prog" has another name (a hard link): the builder could write your file through it. rr's own go with \`rr pack ${t}\` (build runs it); remove one made inside the trace`])
    assert.deepEqual(f.calls.filter(c => c[1] === 'create'), [], 'no container')
  }
  // control: once rr pack has replaced it with a copy, the build goes on
  fs.rmSync(path.join(t, 'mmap_hardlink_3_prog')); fs.copyFileSync(path.join(src, 'prog'), path.join(t, 'mmap_pack_3_prog'))
  assert.equal(await main(['only-build', t, '--runtime', 'podman'], fakeSys().sys), 0)
  assert.equal(fs.readFileSync(path.join(src, 'prog'), 'utf8'), 'your binary\n')
})

test('finding 2 (marker): only-build makes the marker package-build refuses before the builder runs, and mounts it read-only over itself', async () => {
  const t = traceDir(false)
  let seen: boolean | undefined
  const f = fakeSys({ answer: a => { if (a[1] === 'start') seen = fs.lstatSync(path.join(t, GIVEN)).isFile(); return undefined } })
  assert.equal(await main(['only-build', t, '--runtime', 'docker'], f.sys), 0)
  assert.equal(seen, true, 'there before the builder starts')
  assert.ok(f.calls[1].includes(`type=bind,src=${t}/${GIVEN},dst=/trace/${GIVEN},bind-nonrecursive=true,readonly`))
  // what is at the name and is not a file is refused, never mounted or followed
  const u = traceDir(false)
  fs.symlinkSync('/etc/passwd', path.join(u, GIVEN))
  const g = fakeSys()
  assert.equal(await main(['only-build', u, '--runtime', 'docker'], g.sys), 2)
  assert.match(g.err[0], /is a symlink; refusing to write through it/)
})

test('finding 4: after the builder nothing is more open than the trace was: a 0700 trace opened to all by the builder comes back 0700, its files 0600', async () => {
  const t = traceDir(false)
  fs.chmodSync(t, 0o700)
  const f = fakeSys({ answer: a => {
    if (a[1] !== 'start') return undefined
    fs.chmodSync(t, 0o777) // the builder: chmod 0777 /trace, and a file 0666, a directory 0777
    fs.writeFileSync(path.join(t, 'db'), ''); fs.chmodSync(path.join(t, 'db'), 0o666)
    fs.mkdirSync(path.join(t, 'dir')); fs.chmodSync(path.join(t, 'dir'), 0o777)
    return { code: 0, out: '' }
  } })
  assert.equal(await main(['only-build', t, '--runtime', 'podman'], f.sys), 0)
  const mode = (p: string) => fs.statSync(path.join(t, p)).mode & 0o7777
  assert.deepEqual([mode(''), mode('db'), mode('dir'), mode('version')], [0o700, 0o600, 0o700, 0o600])
  // a 0755 trace (your choice) keeps read for all, never write
  const u = traceDir(false)
  fs.chmodSync(u, 0o755)
  const g = fakeSys({ answer: a => { if (a[1] === 'start') { fs.writeFileSync(path.join(u, 'db'), ''); fs.chmodSync(path.join(u, 'db'), 0o666) } return undefined } })
  assert.equal(await main(['only-build', u, '--runtime', 'podman'], g.sys), 0)
  assert.equal(fs.statSync(path.join(u, 'db')).mode & 0o7777, 0o644)
})

test('finding 7: a pernosco.json found where you stand may not relax POLICY; a file you name may, said in red on every run, dry runs too', async () => {
  // (limits too, found by the attack on these fixes: a cloned repository's 999999g memory and /tmp)
  for (const relax of [{ capAdd: ['SYS_ADMIN'] }, { cgroupParent: 'x.slice' }, { user: '4242:4242' }, { limits: { memory: '999999g', tmp: '999999g' } }]) {
    const f = fakeSys(), d = tmpdir()
    fs.writeFileSync(path.join(d, 'pernosco.json'), JSON.stringify(relax))
    f.sys.cwd = d
    assert.equal(await main(['only-build', traceDir(), '--dry-run'], f.sys), 2, JSON.stringify(relax))
    assert.match(f.err[0], new RegExp(`^pernosco: config ${d}/pernosco.json relaxes the confinement \\(${Object.keys(relax)[0]} .*\\): pass --config$`))
    const g = fakeSys()
    assert.equal(await main(['only-build', traceDir(), '--dry-run', '--config', path.join(d, 'pernosco.json')], g.sys), 0)
    const said = Object.entries(relax).map(([k, v]) => `${k} ${k === 'limits' ? JSON.stringify({ ...v, pids: 4096 }) : v}`)[0]
    assert.deepEqual(g.err, [`pernosco: config ${d}/pernosco.json WEAKENS the confinement: ${said}`])
  }
  // control: a config that relaxes nothing is taken from where you stand, silently
  const h = fakeSys(), d = tmpdir()
  fs.writeFileSync(path.join(d, 'pernosco.json'), JSON.stringify({ runtime: 'docker', images: { builder: 'localhost/b:1' } }))
  h.sys.cwd = d
  assert.equal(await main(['only-build', traceDir(), '--dry-run'], h.sys), 0)
  assert.deepEqual(h.err, [])
})

test('finding 9: VERIFY reads what was asked from the flags before the image: a mount named in the builder\'s own arguments does not excuse an injected one', async () => {
  const inject = (f: ReturnType<typeof fakeSys>) => {
    const base = f.sys.run
    f.sys.run = async (a, c) => {
      const r = await base(a, c)
      if (a[1] !== 'inspect' || !r.out) return r
      const [i] = JSON.parse(r.out)
      // containers.conf volumes = ["/etc:/leak:ro"] (once: the fake runtime, unlike a real one, also reads the image's arguments)
      i.Mounts = [...i.Mounts.filter((m: { Destination: string }) => m.Destination !== '/leak'), { Type: 'bind', Source: '/etc', Destination: '/leak', RW: false }]
      return { ...r, out: JSON.stringify([i]) }
    }
  }
  const f = fakeSys()
  inject(f)
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'podman', '--', '--mount', 'type=bind,src=/etc,dst=/leak,readonly'], f.sys), 2)
  assert.match(f.err.join('\n'), /removed unstarted: mounts .*\/etc:\/leak:ro/)
  assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'inspect', 'rm'], 'never started')
})

test('finding 10: podman leaves capabilities it grants by default out of CapAdd; VERIFY reads its bounding set (CHOWN passes, an extra one does not)', async () => {
  const d = tmpdir(), cfg = path.join(d, 'c.json')
  fs.writeFileSync(cfg, JSON.stringify({ capAdd: ['CHOWN'] }))
  const podmanLike = (extra: string[]) => (f: ReturnType<typeof fakeSys>) => {
    const base = f.sys.run
    f.sys.run = async (a, c) => {
      const r = await base(a, c)
      if (a[1] !== 'inspect' || !r.out) return r
      const [i] = JSON.parse(r.out)
      Object.assign(i, { BoundingCaps: ['CAP_CHOWN', ...extra] })
      i.HostConfig.CapAdd = [] // as podman 4.3 shows --cap-drop ALL --cap-add CHOWN
      return { ...r, out: JSON.stringify([i]) }
    }
    return f
  }
  const f = podmanLike([])(fakeSys())
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'podman', '--config', cfg], f.sys), 0, f.err.join('\n'))
  const g = podmanLike(['CAP_SYS_ADMIN'])(fakeSys())
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'podman', '--config', cfg], g.sys), 2)
  assert.match(g.err.join('\n'), /capabilities CHOWN,SYS_ADMIN/)
})

test('finding 10: the bridge exits at once unless it is in the network namespace serve checked (a reused PID would lead elsewhere)', async () => {
  const sock = path.join(tmpdir(), 'b.sock')
  const run = (ns: string) => new Promise<{ code: number | null; listening: boolean }>(ok => {
    const p = spawn(process.execPath, ['-e', BRIDGE, ns, sock], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } })
    let listening = false
    p.on('message', () => { listening = fs.existsSync(sock); p.disconnect() })
    p.on('exit', code => ok({ code, listening }))
  })
  assert.deepEqual(await run('net:[1]'), { code: 3, listening: false }, 'another namespace: exit 3, no socket')
  assert.deepEqual(await run(fs.readlinkSync('/proc/self/ns/net')), { code: 0, listening: true }, 'control: its own namespace, it listens')
})

test('finding 10: as root, a missing --storage is made by the containers\' user, who must write it; never by root where only root could', { skip: process.getuid!() !== 0 && 'needs root' }, async () => {
  // (the attack on these fixes: root's mkdir then chown, by name, under a directory another user controls, chowned
  // what that user swapped in: now the user makes it, with no more rights than its own)
  const theirs = tmpdir(), storage = path.join(theirs, 'a/new-storage')
  fs.chownSync(theirs, 1000, 1000)
  const none = path.join(tmpdir(), 'new-storage') // root's 0700 directory: that user cannot make it there
  const g = fakeSys({ uid: 0 })
  assert.equal(await main(['serve', traceDir(), '--storage', none, '--runtime', 'docker'], g.sys), 2)
  assert.match(g.err[0], /--storage: .* does not exist/)
  assert.ok(!fs.existsSync(none))
  const f = fakeSys({ uid: 0 }) // the server exits at once; then the clean-up, as 1000, finds all in order
  assert.equal(await main(['serve', traceDir(), '--storage', storage, '--runtime', 'docker'], f.sys), 0)
  assert.deepEqual(f.err, [])
  const st = fs.statSync(storage)
  assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [1000, 1000, 0o700])
})

test('finding 10: a dry run replaces whatever is at its profile\'s name, a planted link included, and never writes through it', async () => {
  const f = fakeSys(), victim = path.join(tmpdir(), 'victim')
  fs.writeFileSync(victim, 'yours\n')
  const cache = path.join(f.sys.env.HOME!, '.cache/pernosco-0.2.0')
  fs.mkdirSync(cache, { recursive: true })
  fs.symlinkSync(victim, path.join(cache, 'seccomp.json'))
  assert.equal(await main(['only-build', traceDir(), '--dry-run'], f.sys), 0)
  assert.equal(fs.readFileSync(victim, 'utf8'), 'yours\n')
  assert.ok(fs.lstatSync(path.join(cache, 'seccomp.json')).isFile(), 'a file of its own in place of the link')
  fs.rmSync(cache, { recursive: true })
})

test('finding 8: a hostile path or message reaches the terminal without its control characters (the CLI as a process)', () => {
  const d = tmpdir(), bad = path.join(d, 'x\x1b]52;c;ZXZpbA==\x07\rfake')
  const p = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, '..', 'pernosco.mts'), 'only-build', bad], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
  assert.equal(p.status, 2)
  assert.equal(p.stderr, `pernosco: trace: ${d}/x]52;c;ZXZpbA==fake does not exist\n`)
})
