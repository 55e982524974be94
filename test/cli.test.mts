// The CLI in-process on a fake host: rejected inputs, dry-run, -x, exit codes, signals,
// and the host-side writes of package-build.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import http from 'node:http'
import net from 'node:net'
import chalk from 'chalk'
import { main, quote, realSys, BRIDGE, BUILT, SOURCES_FALLBACK, LIBTHREAD_DB, SECCOMP, type Result } from '../pernosco.mts'
import { fakeSys, tmpdir, traceDir, fakeBridge, ROOT, ownTmpDirs, READ_ONLY, forUser } from './helpers.mts'

const IMG = '{"images":{"builder":"localhost/b:1","server":"localhost/s:1"}}'

// [name, args (TRACE/CFG/DIR substituted), expected message, setup(trace, dir), fake host options]
type Case = [string, string[], RegExp, ((t: string, d: string) => void)?, Parameters<typeof fakeSys>[0]?]
const cfg = (json: string) => (_t: string, d: string) => fs.writeFileSync(path.join(d, 'c.json'), json)
const mk = (name: string) => (_t: string, d: string) => fs.mkdirSync(path.join(d, name))
const REJECTED: Case[] = [
  ['config: unknown runtime', ['only-build', 'TRACE', '--config', 'CFG'], /config .*c\.json: \/runtime must be equal to one of the allowed values: podman or docker \(Container runtime\./, cfg('{"runtime":"lxc"}')],
  ['config: unknown field', ['only-build', 'TRACE', '--config', 'CFG'], /: \/ must NOT have additional properties: "network"; known: \$schema, runtime, user, images, limits, cgroupParent, capAdd$/, cfg('{"network":"host"}')],
  ['issue 29: config: an unknown key gets the known one it resembles', ['only-build', 'TRACE', '--config', 'CFG'], /\/limits must NOT have additional properties: "memroy"; did you mean "memory"\?$/, cfg('{"limits":{"memroy":"8g"}}')],
  ['issue 29: config: a size in capitals says the format', ['only-build', 'TRACE', '--config', 'CFG'], /\/limits\/memory "16G" is not allowed \(Memory limit: a whole number with k, m or g \(lowercase\), e\.g\. 16g or 512m;/, cfg('{"limits":{"memory":"16G"}}')],
  ['issue 29: config: a trailing comma says where', ['only-build', 'TRACE', '--config', 'CFG'], /c\.json: not JSON: .*position 20/, cfg('{"runtime":"podman",}')],
  ['issue 29: config: unreadable says why', ['only-build', 'TRACE', '--config', 'DIR'], /config .*: cannot read it: EISDIR/],
  ['issue 29: a quoted ~ is not your home', ['only-build', '~/trace'], /trace: "~\/trace" is relative \(only an unquoted ~ is your home: the shell expands it\); give an absolute path/],
  ['issue 29: --tunnel 80 (a port only root may take) before anything runs', ['serve', 'TRACE', '--tunnel', '80'], /--tunnel must be an integer from 1024 to 65534, not "80"/],
  ['config: nested unknown field', ['only-build', 'TRACE', '--config', 'CFG'], /\/images must NOT have additional properties: "extra"/, cfg('{"images":{"extra":"x"}}')],
  ['config: empty image', ['only-build', 'TRACE', '--config', 'CFG'], /\/images\/builder must NOT have fewer than 1 characters/, cfg('{"images":{"builder":""}}')],
  ['config: image with a space', ['only-build', 'TRACE', '--config', 'CFG'], /\/images\/server "a b" is not allowed \(The app server image .*: a lowercase image reference, e\.g\. /, cfg('{"images":{"server":"a b"}}')],
  ['config: pids not an integer', ['only-build', 'TRACE', '--config', 'CFG'], /\/limits\/pids must be integer/, cfg('{"limits":{"pids":"many"}}')],
  ['config: pids too low', ['only-build', 'TRACE', '--config', 'CFG'], /\/limits\/pids must be >= 16/, cfg('{"limits":{"pids":1}}')],
  ['config: negative memory', ['only-build', 'TRACE', '--config', 'CFG'], /\/limits\/memory "-1" is not allowed \(Memory limit: /, cfg('{"limits":{"memory":"-1"}}')],
  ['config: zero cpus', ['only-build', 'TRACE', '--config', 'CFG'], /\/limits\/cpus must be > 0/, cfg('{"limits":{"cpus":0}}')],
  ['config: lowercase capability', ['only-build', 'TRACE', '--config', 'CFG'], /\/capAdd\/0 "sys_admin" is not allowed \(A capability name in capitals without CAP_, e\.g\. SYS_PTRACE\.\)$/, cfg('{"capAdd":["sys_admin"]}')],
  ['config: capAdd not a list', ['only-build', 'TRACE', '--config', 'CFG'], /\/capAdd must be array/, cfg('{"capAdd":"ALL"}')],
  ['config: cgroupParent with a comma', ['only-build', 'TRACE', '--config', 'CFG'], /\/cgroupParent "a,b" is not allowed \(Optional cgroup parent .*letters, digits/, cfg('{"cgroupParent":"a,b"}')],
  ['config: not JSON', ['only-build', 'TRACE', '--config', 'CFG'], /config .*c\.json: not JSON/, cfg('{runtime: podman}')],
  ['config: top level not an object', ['only-build', 'TRACE', '--config', 'CFG'], /config .*: \/ must be object/, cfg('[]')],
  ['config: missing file', ['only-build', 'TRACE', '--config', 'DIR/nope.json'], /config .*nope\.json: cannot read it/],
  ['path: relative', ['only-build', 'trace'], /trace: "trace" is relative; give an absolute path/],
  ['path: missing', ['only-build', 'DIR/missing'], /trace: .*missing does not exist/],
  ['path: a file, not a directory', ['only-build', 'DIR/f'], /trace: .*\/f is not a directory/, (_t, d) => fs.writeFileSync(path.join(d, 'f'), '')],
  ['path: comma (mount option injection)', ['only-build', 'DIR/t,readonly=false'], /contains , " = : or a control character/, mk('t,readonly=false')],
  ['path: colon', ['only-build', 'DIR/a:b'], /contains , " = : or a control character/, mk('a:b')],
  ['path: equals sign', ['only-build', 'DIR/a=b'], /contains , " = : or a control character/, mk('a=b')],
  ['path: double quote', ['only-build', 'DIR/a"b'], /contains , " = : or a control character/, mk('a"b')],
  ['path: newline', ['only-build', 'DIR/a\nb'], /contains , " = : or a control character/, mk('a\nb')],
  ['path: symlink to a bad name', ['only-build', 'DIR/ok'], /contains , " = : or a control character/, (_t, d) => { mk('x,y')(_t, d); fs.symlinkSync(path.join(d, 'x,y'), path.join(d, 'ok')) }],
  ['record --output relative', ['record', '--output', 'out', '--', './t'], /--output: "out" is relative/],
  ['trace entry symlink: sources.fallback', ['package-build', 'TRACE', '--skip-rr'], /sources\.fallback is a symlink; refusing to write through it/, t => fs.symlinkSync('/etc/passwd', path.join(t, 'sources.fallback'))],
  ['trace entry symlink: files.system-debuginfo', ['package-build', 'TRACE', '--skip-rr'], /files\.system-debuginfo is a symlink/, (t, d) => fs.symlinkSync(d, path.join(t, 'files.system-debuginfo'))],
  ['--copy-sources with --skip-rr (issue 18)', ['package-build', 'TRACE', '--skip-rr', '--copy-sources', 'DIR'], /--copy-sources, --substitute, --gdb-script, --system-debuginfo run rr: drop --skip-rr/],
  ['--copy-sources relative (issue 18)', ['build', 'TRACE', '--copy-sources', 'src'], /--copy-sources: "src" is relative/],
  ['trace entry not a directory: files.system-debuginfo', ['package-build', 'TRACE', '--skip-rr'], /files\.system-debuginfo is not a directory/, t => fs.writeFileSync(path.join(t, 'files.system-debuginfo'), '')],
  ['compression level 0', ['only-build', 'TRACE', '--compression-level', '0'], /--compression-level must be an integer from 1 to 22, not "0"/],
  ['compression level 23', ['only-build', 'TRACE', '--compression-level', '23'], /--compression-level must be an integer from 1 to 22, not "23"/],
  ['compression level 1e1', ['build', 'TRACE', '--skip-rr', '--compression-level', '1e1'], /--compression-level must be an integer from 1 to 22, not "1e1"/],
  ['builder arguments before --', ['only-build', 'TRACE', '--shards', '2'], /unknown option --shards; see --help/],
  ['unknown command', ['frobnicate'], /unknown command "frobnicate"; see --help/],
  ['no command', [], /Usage: pernosco\.mts COMMAND/],
  ['unknown option', ['only-build', 'TRACE', '--network', 'host'], /unknown option --network; see --help/],
  ['option of another command', ['record', '--compression-level', '2', '--', './t'], /unknown option --compression-level/],
  ['record without --', ['record', './my-test'], /record: give the command after --/],
  ['record with nothing after --', ['record', '--'], /record: give the command after --/],
  ['record with perf_event_paranoid 2', ['record', '--', './t'], /perf_event_paranoid <= 1 \(it is 2\): sudo sysctl kernel\.perf_event_paranoid=1/, undefined, { paranoid: '2' }],
  ['record: no perf_event_paranoid at all (issue 16: it was exit 70)', ['record', '--', './t'], /rr needs perf events, and this kernel has no .*perf_event_paranoid/, undefined, { paranoid: 'absent' }],
  ['serve: nsenter not on PATH (the bridge needs it)', ['serve', 'TRACE'], /serve needs nsenter to reach the server: install util-linux/, undefined, { path: ['podman'] }],
  ['rr is no command of ours any more (README has the recipe)', ['rr', 'TRACE'], /unknown command "rr"; see --help/],
  ['check is no command of ours any more (README, Prerequisites)', ['check'], /unknown command "check"; see --help/],
  ['record: rr not on PATH', ['record', '--', './t'], /rr is not on PATH: install rr/, undefined, { path: ['podman'] }],
  ['build: rr not on PATH', ['build', 'TRACE'], /rr is not on PATH: install rr .* or pass --skip-rr/, undefined, { path: ['podman'] }],
  ['runtime not on PATH', ['only-build', 'TRACE', '--runtime', 'docker'], /docker is not on PATH: install it, or choose the other with --runtime/, undefined, { path: ['podman'] }],
  ['serve: tunnel with an address (loopback only)', ['serve', 'TRACE', '--tunnel', '0.0.0.0:8080'], /--tunnel must be an integer from 1024 to 65534, not "0\.0\.0\.0:8080"/],
  ['serve: tunnel not a port', ['serve', 'TRACE', '--tunnel', 'abc'], /--tunnel must be an integer from 1024 to 65534, not "abc"/],
  ['serve: tunnel port too big', ['serve', 'TRACE', '--tunnel', '65535'], /--tunnel must be an integer from 1024 to 65534, not "65535"/],
  ['serve: tunnel port 0', ['serve', 'TRACE', '--tunnel', '0'], /--tunnel must be an integer from 1024 to 65534, not "0"/],
  ['serve: relative sources', ['serve', 'TRACE', '--sources', 'src'], /--sources: "src" must be a plain absolute path/],
  ['serve: relative sources target', ['serve', 'TRACE', '--sources', '/src=src'], /--sources: "src" is relative/],
  ['serve: sources FROM with a comma', ['serve', 'TRACE', '--sources', '/a,readonly=false=DIR'], /--sources: "\/a,readonly" must be a plain absolute path/],
  ['serve: sources FROM with ..', ['serve', 'TRACE', '--sources', '/a/../etc=DIR'], /--sources: "\/a\/\.\.\/etc" must be a plain absolute path/],
  ['serve: a storage dir that cannot be made (issue 22 makes a missing one)', ['serve', 'TRACE', '--storage', 'DIR/f/nope'], /--storage: .*nope does not exist/, (_t, d) => fs.writeFileSync(path.join(d, 'f'), '')],
  ['serve, issue 22: a trace that build did not finish', ['serve', 'TRACE', '--dry-run'], /\/trace holds no finished Pernosco database: run `build \/.*\/trace` first/, t => fs.rmSync(path.join(t, BUILT))],
  ['serve, issue 22: a source folder', ['serve', 'DIR'], /holds no finished Pernosco database: run `build /],
  ['serve, issue 22: the marker as a link (to a file in the trace)', ['serve', 'TRACE'], /holds no finished Pernosco database/, t => { fs.rmSync(path.join(t, BUILT)); fs.symlinkSync('version', path.join(t, BUILT)) }],
  ['serve, issue 22: the marker as a directory', ['serve', 'TRACE'], /holds no finished Pernosco database/, t => { fs.rmSync(path.join(t, BUILT)); fs.mkdirSync(path.join(t, BUILT)) }],
  ['serve, issue 22: the marker as a FIFO (never opened)', ['serve', 'TRACE'], /holds no finished Pernosco database/, t => { fs.rmSync(path.join(t, BUILT)); assert.equal(spawnSync('mkfifo', [path.join(t, BUILT)]).status, 0) }],
  ['serve: --publish is not an option', ['serve', 'TRACE', '--publish', '8080:3000'], /unknown option --publish/],
  ['serve: -p is not an option', ['serve', 'TRACE', '-p', '8080:3000'], /unknown option -p/],
  ['serve: --network is not an option', ['serve', 'TRACE', '--network', 'bridge'], /unknown option --network/],
  ['config: serve is no section any more (serve.hosts left; network and tls never were)', ['serve', 'TRACE', '--config', 'CFG'], /\/ must NOT have additional properties: "serve"/, cfg('{"serve":{"network":"bridge"}}')],
  ['config: serve.hosts is gone (README: an /etc/hosts line)', ['serve', 'TRACE', '--config', 'CFG'], /\/ must NOT have additional properties: "serve"/, cfg('{"serve":{"hosts":["127.0.0.1"]}}')],
  ['unknown runtime flag', ['only-build', 'TRACE', '--runtime', 'lxc'], /--runtime must be podman or docker, not "lxc"/],
]

test(`${REJECTED.length} rejected inputs: message, exit 2, nothing run`, async t => {
  assert.ok(REJECTED.length >= 25)
  for (const [name, args, msg, setup, host] of REJECTED) await t.test(name, async () => {
    const f = fakeSys(host), trace = traceDir(), dir = tmpdir()
    setup?.(trace, dir)
    const argv = args.map(a => a.replace('TRACE', trace).replace('CFG', path.join(dir, 'c.json')).replace('DIR', dir))
    assert.equal(await main(argv, f.sys), 2)
    assert.match(f.err.join('\n'), msg)
    assert.equal(f.err.length, 1, 'one line')
    assert.deepEqual(f.calls, [], 'no command ran')
  })
})

test('dry-run prints every command, pasteable, and runs none', async () => {
  const f = fakeSys(), t = traceDir(), d = tmpdir()
  fs.writeFileSync(path.join(d, 'pernosco.json'), IMG)
  f.sys.cwd = d
  assert.equal(await main(['build', t, '--dry-run', '--runtime', 'docker', '--', '--shards', '2', 'on-prem', '/trace'], f.sys), 0)
  assert.deepEqual(f.calls, [])
  const seccomp = f.out.find(l => l.startsWith('# seccomp'))!.replace('# seccomp profile written to ', '')
  assert.equal(seccomp, path.join(f.sys.env.HOME!, '.cache/pernosco-0.2.0/seccomp.json'), 'issue 22: one profile per version in your cache')
  assert.equal(JSON.parse(fs.readFileSync(seccomp, 'utf8')).defaultAction, 'SCMP_ACT_ALLOW')
  fs.rmSync(path.dirname(seccomp), { recursive: true })
  const name = f.out.find(l => l.startsWith('docker create'))!.match(/--name (pernosco-builder-[0-9a-f]{12}) /)![1]
  const lib = LIBTHREAD_DB.find(l => fs.existsSync(l))
  assert.deepEqual(f.out, ['docker image inspect localhost/b:1', 'docker image inspect localhost/s:1', `rr pack ${t}`, `rr sources ${t}`, ...lib ? [`# would copy ${lib} to ${t}/files.system-debuginfo/libthread_db.so`] : [],
    `# would write ${t}/sources.fallback`, 'docker image inspect localhost/b:1', `# seccomp profile written to ${seccomp}`,
    `docker create --name ${name} --rm --network none --cap-drop ALL --security-opt no-new-privileges --security-opt seccomp=${seccomp} --security-opt apparmor=unconfined --read-only --tmpfs /tmp:rw,exec,nosuid,nodev,mode=1777,size=4g --init --hostname pernosco --ipc private --memory 16g --memory-swap 16g --pids-limit 4096 --user 1000:1000 --pull never --env HOME=/tmp --mount type=bind,src=${t},dst=/trace,bind-nonrecursive=true --mount type=bind,src=${t}/pernosco-given-to-builder,dst=/trace/pernosco-given-to-builder,bind-nonrecursive=true,readonly --env RUST_BACKTRACE=full --env RUST_LOG=error --entrypoint db_builder localhost/b:1 --shards 2 on-prem /trace`,
    `docker inspect ${name}`, `docker start --attach ${name}`, `docker rm --force ${name}`])
  assert.ok(!fs.existsSync(path.join(t, 'sources.fallback')), 'dry run writes nothing into the trace')
})

test('dry-run, issue 22: two dry runs leave nothing in /tmp and one profile in the cache (XDG_CACHE_HOME if set)', async () => {
  const before = ownTmpDirs()
  const f = fakeSys(), t = traceDir(), cache = tmpdir()
  for (let i = 0; i < 2; i++) assert.equal(await main(['only-build', t, '--dry-run'], f.sys), 0)
  assert.deepEqual(ownTmpDirs(), before)
  assert.deepEqual(fs.readdirSync(path.join(f.sys.env.HOME!, '.cache')), ['pernosco-0.2.0'])
  assert.equal(fs.statSync(path.join(f.sys.env.HOME!, '.cache/pernosco-0.2.0')).mode & 0o777, 0o700)
  f.sys.env.XDG_CACHE_HOME = cache
  assert.equal(await main(['only-build', t, '--dry-run'], f.sys), 0)
  assert.equal(fs.readFileSync(path.join(cache, 'pernosco-0.2.0/seccomp.json'), 'utf8'), SECCOMP)
})

test('dry-run quotes what a shell would split', async () => {
  const f = fakeSys()
  assert.equal(await main(['record', '--dry-run', '--', './my test', "it's", '$HOME'], f.sys), 0)
  assert.deepEqual(f.out, [`rr record './my test' 'it'\\''s' '$HOME'`])
})

test('-x echoes each command to stderr as it runs; exit code is the command\'s', async () => {
  const f = fakeSys({ answer: a => ({ code: a.includes('record') ? 7 : 0, out: '' }) }), o = tmpdir()
  assert.equal(await main(['-x', 'record', '--output', o, '--', './t'], f.sys), 7)
  assert.deepEqual(f.calls, [['env', `_RR_TRACE_DIR=${o}`, 'rr', 'record', './t']])
  assert.deepEqual(f.err, [`+ env _RR_TRACE_DIR=${o} rr record ./t`])
})

test('only-build: create, start, rm in order; the container\'s exit code is ours; temp dir removed', async () => {
  const f = fakeSys({ answer: a => a[1] === 'start' ? { code: 42, out: '' } : undefined }), t = traceDir()
  assert.equal(await main(['only-build', t, '--runtime', 'podman'], f.sys), 42)
  const name = f.calls[3].at(-1)!, seccomp = f.calls[1][f.calls[1].indexOf('--security-opt', 10) + 1].slice(8)
  assert.deepEqual(f.calls[0], ['podman', 'image', 'inspect', '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/db-builder:a4fca5f637f1825e6d6eda47c34b785233d974f9'])
  assert.deepEqual(f.calls.slice(2), [['podman', 'inspect', name], ['podman', 'start', '--default-mounts-file', '/dev/null', '--attach', name], ['podman', 'rm', '--force', '--time', '0', name]])
  assert.ok(f.calls[1].includes('--userns=keep-id'), 'uid 1000 with podman is rootless')
  assert.ok(!fs.existsSync(path.dirname(seccomp)), 'private dir removed')
})

test('only-build, issue 22: the marker serve looks for is ours, written only after the builder exited 0, removed before it starts', async () => {
  const mark = (t: string) => fs.lstatSync(path.join(t, BUILT), { throwIfNoEntry: false })
  let seen: fs.Stats | undefined | null = null
  const exits = (code: number, plant?: (t: string) => void) => fakeSys({ answer: a => {
    if (a[1] !== 'start') return undefined
    seen = mark(T) // what the builder would find at the name while it runs
    plant?.(T)
    return { code, out: '' }
  } })
  let T = traceDir()
  assert.equal(await main(['only-build', T, '--runtime', 'podman'], exits(0).sys), 0)
  assert.equal(seen, undefined, 'the earlier marker was removed before the builder started')
  assert.equal(fs.readFileSync(path.join(T, BUILT), 'utf8'), '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/db-builder:a4fca5f637f1825e6d6eda47c34b785233d974f9\n')
  const f = fakeSys()
  assert.equal(await main(['serve', T, '--dry-run'], f.sys), 0, 'and serve takes it')
  assert.equal(await main(['only-build', T, '--runtime', 'docker'], exits(1).sys), 1)
  assert.equal(mark(T), undefined, 'a failed build leaves none, and the earlier one is gone')
  let g = fakeSys()
  g = fakeSys({ answer: a => { if (a[1] === 'start') g.fire(); return a[1] === 'start' ? { code: 137, out: '' } : undefined } })
  fs.writeFileSync(path.join(T, BUILT), 'earlier\n')
  assert.equal(await main(['only-build', T, '--runtime', 'docker'], g.sys), 130)
  assert.equal(mark(T), undefined, 'an interrupted build leaves none')
  // A builder that plants a link at the name (inside the trace, so the clean-up keeps it): the link is
  // unlinked, never written through, and our marker takes its place.
  T = traceDir()
  assert.equal(await main(['only-build', T, '--runtime', 'podman'], exits(0, t => fs.symlinkSync('version', path.join(t, BUILT))).sys), 0)
  assert.ok(mark(T)!.isFile(), 'our marker in place of the link')
  assert.equal(fs.readFileSync(path.join(T, 'version'), 'utf8'), '85\n')
  // The same link left at the name (a builder still running, or a copy): serve refuses it.
  fs.rmSync(path.join(T, BUILT))
  fs.symlinkSync('version', path.join(T, BUILT))
  const h = fakeSys()
  assert.equal(await main(['serve', T, '--dry-run'], h.sys), 2)
  assert.match(h.err[0], /holds no finished Pernosco database: run `build /)
  // A regular file planted at the name by a builder that then fails: removed, never taken for ours.
  T = traceDir(false)
  assert.equal(await main(['only-build', T, '--runtime', 'podman'], exits(1, t => fs.writeFileSync(path.join(t, BUILT), 'done\n')).sys), 1)
  assert.equal(mark(T), undefined)
  // A directory planted at the name: left (unlink is never recursive), no crash, and serve refuses it.
  T = traceDir(false)
  assert.equal(await main(['only-build', T, '--runtime', 'podman'], exits(0, t => fs.mkdirSync(path.join(t, BUILT, 'deep'), { recursive: true })).sys), 0)
  assert.ok(mark(T)!.isDirectory() && fs.existsSync(path.join(T, BUILT, 'deep')), 'the planted directory is left whole')
  assert.equal(await main(['serve', T, '--dry-run'], fakeSys().sys), 2)
  // A clean-up that did not complete (find failed): the builder's 0 stays its exit code, but no marker.
  T = traceDir(false)
  const bin = tmpdir(), was = process.env.PATH
  fs.writeFileSync(path.join(bin, 'env'), '#!/bin/sh\nexit 3\n', { mode: 0o755 })
  process.env.PATH = `${bin}:${was}`
  const e = exits(0)
  try {
    assert.equal(await main(['only-build', T, '--runtime', 'podman'], e.sys), 0)
  } finally {
    process.env.PATH = was
  }
  assert.match(e.err.join('\n'), /the clean-up is INCOMPLETE \(find exited 3\)/)
  assert.equal(mark(T), undefined, 'an incomplete clean-up leaves none')
  // A dry run neither removes nor writes one.
  const d = fakeSys()
  T = traceDir(false)
  assert.equal(await main(['only-build', T, '--dry-run'], d.sys), 0)
  assert.equal(mark(T), undefined, 'a dry run writes none')
  T = traceDir()
  assert.equal(await main(['only-build', T, '--dry-run'], fakeSys().sys), 0)
  assert.ok(mark(T)!.isFile(), 'and keeps one that is there')
})

test('a failed create is reported with its code and nothing is started', async () => {
  const f = fakeSys({ answer: a => a[1] === 'create' ? { code: 125, out: '' } : undefined })
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'docker'], f.sys), 125)
  assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'rm'])
})

test('Ctrl-C / SIGTERM during start: container removed, exit 130', async () => {
  let f = fakeSys()
  f = fakeSys({ answer: a => { if (a[1] === 'start') f.fire(); return a[1] === 'start' ? { code: 137, out: '' } : undefined } })
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'docker'], f.sys), 130)
  const name = f.calls[3][3]
  assert.deepEqual(f.calls.slice(3), [['docker', 'start', '--attach', name], ['docker', 'rm', '--force', name], ['docker', 'rm', '--force', name]])
  assert.deepEqual(f.err, [`pernosco: interrupted: ${name} is stopped and removed`], 'issue 22: it says what it stopped')
  f.fire() // the handler is gone after the run: nothing more happens
  assert.equal(f.calls.length, 6)
})

test('a signal that races a later step (issue 22 review): exit 130 and the one interrupted line, never a false refusal', async () => {
  // During inspect, after create: the rm wins, inspect shows nothing; that is no VERIFY failure.
  let f = fakeSys()
  f = fakeSys({ answer: a => {
    if (a[1] !== 'inspect' || a.includes('--format')) return undefined
    f.fire()
    return { code: 125, out: '', err: 'Error: no such container' }
  } })
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'podman'], f.sys), 130)
  const name = f.calls[1][f.calls[1].indexOf('--name') + 1]
  assert.deepEqual(f.err, ['Error: no such container', `pernosco: interrupted: ${name} is stopped and removed`])
  assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'inspect', 'rm', 'rm'])
  // While serve's bridge starts: it finds no namespace to enter once the rm ran; that is no bridge error.
  let g = fakeSys()
  g = fakeSys({ bridge: () => {
    g.fire()
    return { ready: Promise.reject(new Error('nsenter: No such process')), died: new Promise(() => {}), close: () => {} }
  }, answer: a => a.includes('{{.State.Pid}}') ? { code: 0, out: '7\n' } : a[1] === 'start' ? new Promise(() => {}) : undefined })
  assert.equal(await main(['serve', traceDir(), '--runtime', 'docker'], g.sys), 130)
  assert.equal(g.err.length, 1, g.err.join('\n'))
  assert.match(g.err[0], /^pernosco: interrupted: pernosco-server-[0-9a-f]{12} is stopped and removed$/)
  // An error with no signal is still an error.
  await assert.rejects(main(['serve', traceDir(), '--runtime', 'docker'], fakeSys({ bridge: () => ({ ready: Promise.reject(new Error('nsenter: No such process')), died: new Promise(() => {}), close: () => {} }),
    answer: a => a.includes('{{.State.Pid}}') ? { code: 0, out: '7\n' } : a[1] === 'start' ? new Promise(() => {}) : undefined }).sys), /nsenter: No such process/)
})

test('the signal handler is in place before the private directory exists (a Ctrl-C never leaves it in /tmp)', async () => {
  const before = ownTmpDirs()
  const f = fakeSys()
  let atRegistration: string[] = []
  const register = f.sys.onSignal
  f.sys.onSignal = fn => {
    atRegistration = ownTmpDirs()
    return register(fn)
  }
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'docker'], f.sys), 0)
  assert.deepEqual(atRegistration, before, 'no directory of ours yet when the handler was registered')
  assert.deepEqual(ownTmpDirs(), before, 'and none left after')
})

test('the runtime\'s warnings on success are shown (rootless podman on cgroup v1 ignores the limits), controls dropped', async () => {
  const warn = 'time="2026-12-01T16:00:00Z" level=warning msg="Resource limits are not supported and ignored on cgroups V1 rootless systems"'
  const f = fakeSys({ warn: a => (a[1] === 'create' ? `${warn}\x1b[2J\n` : undefined) })
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'podman'], f.sys), 0)
  assert.deepEqual(f.err, [`${warn}\x1b[2J`], 'handed to Sys.err as it came: realSys filters every line (next test)')
})

test('issue 27: every line we print, on stdout and stderr, loses its control characters; colour is ours, added after', () => {
  const sys = realSys(), written: string[] = []
  const [out, err] = [process.stdout.write, process.stderr.write]
  process.stdout.write = process.stderr.write = ((l: string) => { written.push(l); return true }) as typeof process.stdout.write
  const level = chalk.level
  try {
    chalk.level = 1
    sys.out('a\x1b]52;c;ZXZpbA==\x07b\rc\x9bd\te')
    sys.err('pernosco: trace/\x1b[2Kname\x1b[1A', 'red')
    sys.err('plain\x00', undefined)
  } finally {
    process.stdout.write = out; process.stderr.write = err; chalk.level = level
  }
  assert.deepEqual(written, ['a]52;c;ZXZpbA==bcd\te\n', '\x1b[31mpernosco: trace/[2Kname[1A\x1b[39m\n', 'plain\n'])
})

test('dry runs check nothing a dry run does not need (issue 22 review): record with perf_event_paranoid 2, build without rr', async () => {
  const f = fakeSys({ paranoid: '2', path: ['podman'] })
  assert.equal(await main(['record', '--dry-run', '--', './my-test'], f.sys), 0)
  assert.deepEqual(f.out, ['rr record ./my-test'])
  const t = traceDir(false), g = fakeSys({ path: ['podman'] })
  assert.equal(await main(['build', t, '--dry-run', '--runtime', 'podman'], g.sys), 0)
  assert.deepEqual(g.out.slice(2, 4), [`rr pack ${t}`, `rr sources ${t}`])
  assert.match(g.out.slice(0, 2).join('\n'), /^podman image inspect .*db-builder.*\npodman image inspect .*app-server/)
  assert.deepEqual(g.calls, [])
})

test('a signal during create: never started', async () => {
  let f = fakeSys()
  f = fakeSys({ answer: a => { if (a[1] === 'create') f.fire(); return undefined } })
  assert.equal(await main(['only-build', traceDir(), '--runtime', 'podman'], f.sys), 130)
  assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'rm', 'rm'])
})

test('package-build writes libthread_db.so and sources.fallback without following links, keeps an existing fallback', async () => {
  const f = fakeSys(), t = traceDir()
  assert.equal(await main(['package-build', t], f.sys), 0)
  assert.deepEqual(f.calls, [['rr', 'pack', t], ['rr', 'sources', t]])
  assert.equal(fs.readFileSync(path.join(t, 'sources.fallback'), 'utf8'), SOURCES_FALLBACK)
  const lib = LIBTHREAD_DB.find(l => fs.existsSync(l))
  if (lib) {
    const dest = path.join(t, 'files.system-debuginfo/libthread_db.so')
    assert.deepEqual(fs.readFileSync(dest), fs.readFileSync(lib))
    assert.equal(fs.statSync(dest).mode & 0o7777, READ_ONLY, 'read-only (your umask kept), never setuid or writable')
    // issue 18: a link planted where it goes is replaced, never written through
    const target = path.join(tmpdir(), 'target'); fs.writeFileSync(target, 'theirs')
    fs.rmSync(dest); fs.symlinkSync(target, dest)
    assert.equal(await main(['package-build', t], f.sys), 0)
    assert.ok(fs.lstatSync(dest).isFile() && fs.readFileSync(target, 'utf8') === 'theirs')
  }
  fs.writeFileSync(path.join(t, 'sources.fallback'), '[]')
  assert.equal(await main(['package-build', t], f.sys), 0, 'second run replaces the library, keeps the fallback')
  assert.equal(fs.readFileSync(path.join(t, 'sources.fallback'), 'utf8'), '[]')
  if (lib) {
    // issue 16: a directory the builder planted where the library goes (it was EISDIR and exit 70)
    const dest = path.join(t, 'files.system-debuginfo/libthread_db.so')
    fs.rmSync(dest); fs.mkdirSync(dest); fs.writeFileSync(path.join(dest, 'x'), '')
    assert.equal(await main(['package-build', t], f.sys), 0)
    assert.deepEqual(fs.readFileSync(dest), fs.readFileSync(lib))
  }
})

test('run through a symlink to the file (~/bin/pernosco), it runs (issue 16: it did nothing and exited 0)', () => {
  const link = path.join(tmpdir(), 'pernosco')
  fs.symlinkSync(path.join(ROOT, 'pernosco.mts'), link)
  const p = spawnSync(process.execPath, ['--import', 'tsx', link, '--version'], { encoding: 'utf8' })
  assert.equal(p.status, 0)
  assert.equal(p.stdout, '0.2.0\n')
})

test('package-build as root (through sudo): what it writes into the trace is the containers\' user\'s, so that user can remove it', { skip: process.getuid!() !== 0 && 'needs root (chown)' }, async () => {
  const f = fakeSys({ uid: 0 }), t = forUser(traceDir())
  assert.equal(await main(['package-build', t, '--skip-rr'], f.sys), 0)
  const owned = (p: string) => { const st = fs.lstatSync(path.join(t, p)); return `${st.uid}:${st.gid}` }
  assert.equal(owned('sources.fallback'), '1000:1000')
  if (LIBTHREAD_DB.some(l => fs.existsSync(l))) assert.deepEqual([owned('files.system-debuginfo'), owned('files.system-debuginfo/libthread_db.so')], ['1000:1000', '1000:1000'])
  // Issue 31's attack: as root the writes are done with that user's rights, so a trace it cannot reach is one line.
  const g = fakeSys({ uid: 0 }), u = traceDir()
  assert.equal(await main(['package-build', u, '--skip-rr'], g.sys), 2)
  assert.match(g.err.join('\n'), /^pernosco: EACCES: permission denied, .*: as root, this is done as uid 1000$/)
  assert.equal(process.geteuid!(), 0, 'and root again afterwards')
})

test('rr pack failing stops the build with its code', async () => {
  const f = fakeSys({ answer: a => a[0] === 'rr' ? { code: 3, out: '' } : undefined })
  assert.equal(await main(['build', traceDir()], f.sys), 3)
  assert.deepEqual(f.calls.map(c => c.slice(0, 2)), [['podman', 'image'], ['podman', 'image'], ['rr', 'pack']])
})

test('trace default is rr\'s latest-trace, under $_RR_TRACE_DIR or ~/.local/share/rr', async () => {
  const f = fakeSys(), rr = tmpdir()
  fs.symlinkSync(traceDir(), path.join(rr, 'latest-trace'))
  f.sys.env._RR_TRACE_DIR = rr
  assert.equal(await main(['package-build', '--skip-rr', '--dry-run'], f.sys), 0)
  assert.match(f.out.at(-1)!, /trace\/sources\.fallback$/, 'the link is resolved to the real trace')
  const g = fakeSys()
  assert.equal(await main(['only-build', '--dry-run'], g.sys), 2)
  assert.match(g.err[0], /trace: .*home\/\.local\/share\/rr\/latest-trace does not exist/)
})

test('record in a container: default trace dir, SYS_PTRACE, create/start/rm', async () => {
  const f = fakeSys(), rr = tmpdir()
  f.sys.env._RR_TRACE_DIR = rr
  assert.equal(await main(['record', '--container', 'my/img:1', '--runtime', 'docker', '--', './t'], f.sys), 0)
  assert.deepEqual(f.calls[1].slice(-8), ['--mount', `type=bind,src=${rr},dst=/trace,bind-nonrecursive=true`, '--env', '_RR_TRACE_DIR=/trace', 'my/img:1', 'rr', 'record', './t'])
  assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'inspect', 'start', 'rm'])
  const g = fakeSys({ path: [] })
  assert.equal(await main(['record', '--container', 'i', '--output', rr, '--', './t'], g.sys), 2, 'neither runtime installed')
  assert.match(g.err[0], /docker is not on PATH/)
})

test('config file: pernosco.json in the current directory, --config overrides it, flags override both', async () => {
  const f = fakeSys(), d = tmpdir(), t = traceDir()
  fs.writeFileSync(path.join(d, 'pernosco.json'), '{"runtime":"docker","images":{"builder":"localhost/from-cwd:1"}}')
  fs.writeFileSync(path.join(d, 'other.json'), '{"runtime":"docker","images":{"builder":"localhost/from-flag:1"}}')
  f.sys.cwd = d
  await main(['only-build', t], f.sys)
  await main(['only-build', t, '--config', path.join(d, 'other.json')], f.sys)
  await main(['--runtime', 'podman', 'only-build', t], f.sys)
  const creates = f.calls.filter(c => c[1] === 'create')
  assert.deepEqual(creates.map(c => [c[0], c.at(-3)]), [['docker', 'localhost/from-cwd:1'], ['docker', 'localhost/from-flag:1'], ['podman', 'localhost/from-cwd:1']])
})

test('help, per-command help, version, NO_COLOR', async () => {
  const f = fakeSys()
  assert.equal(await main(['--help'], f.sys), 0)
  assert.match(f.out[0], /^Usage: pernosco\.mts COMMAND/)
  for (const c of ['record', 'build', 'package-build', 'only-build']) assert.match(f.out[0], new RegExp(`\\n  ${c} `))
  assert.equal(await main(['build', '--help'], f.sys), 0)
  assert.ok(f.out[1].includes('  build [TRACE]') && !f.out[1].includes('record'))
  assert.equal(await main(['--version'], f.sys), 0)
  assert.match(f.out[2], /^\d+\.\d+\.\d+$/)
  f.sys.env.NO_COLOR = '1'
  await main(['nope'], f.sys)
  assert.equal(f.err[0], 'pernosco: unknown command "nope"; see --help', 'no escape codes')
})

/** As root, sudo's 1000 (or config.user) runs the hard-link check and the clean-up (issue 27): a trace that
 * user owns and can reach. Only root can make one, and only root's spawn can become that user. */
const usersTrace = (uid = 1000) => {
  const t = traceDir()
  spawnSync('chown', ['-R', `${uid}:${uid}`, t])
  fs.chmodSync(path.dirname(t), 0o711)
  return t
}
const ROOT_ONLY = process.getuid!() !== 0 && 'needs root (the checks as root run as the containers\' user)'

test('runtime default: podman when on PATH, else docker', { skip: ROOT_ONLY }, async () => {
  const f = fakeSys({ path: ['docker'] })
  await main(['only-build', traceDir()], f.sys)
  assert.equal(f.calls[0][0], 'docker')
  const g = fakeSys({ path: ['podman', 'docker'], uid: 0 })
  await main(['only-build', usersTrace()], g.sys)
  assert.equal(g.calls[0][0], 'podman')
  assert.ok(g.calls[1].includes('--user') && g.calls[1].includes('1000:1000'), 'root through sudo: rootful podman runs as SUDO_UID:SUDO_GID')
})

test('root: containers never run as uid 0; config.user, else the user sudo came from, else a clear refusal (issue 16)', { skip: ROOT_ONLY }, async () => {
  const before = ownTmpDirs()
  for (const rt of ['podman', 'docker']) {
    const f = fakeSys({ uid: 0, sudo: false })
    assert.equal(await main(['only-build', traceDir(), '--runtime', rt], f.sys), 2)
    assert.deepEqual(f.err, ['pernosco: as root, the containers still never run as root: run as yourself (rootless podman), with sudo (they run as SUDO_UID), or set "user": "UID:GID" in a --config file'])
    assert.deepEqual(f.calls.filter(c => c[1] !== 'image'), [], `${rt}: nothing created`)
    const g = fakeSys({ uid: 0, sudo: false })
    g.sys.env.SUDO_UID = '0'; g.sys.env.SUDO_GID = '0' // sudo from root is still root
    assert.equal(await main(['only-build', traceDir(), '--runtime', rt], g.sys), 2)
    const dir = tmpdir(), cfg = path.join(dir, 'c.json')
    fs.writeFileSync(cfg, JSON.stringify({ user: '4242:4343' }))
    // The whole create argv: only the user mapping differs between the cases.
    const whole = (c: string[], t: string, user: string) => [rt, 'create', '--name', c[3], '--rm', '--network', 'none', '--cap-drop', 'ALL',
      '--security-opt', 'no-new-privileges', '--security-opt', c.find(a => a.startsWith('seccomp='))!, '--security-opt', 'apparmor=unconfined', '--read-only',
      '--tmpfs', `/tmp:rw,exec,nosuid,nodev,mode=1777,size=4g${rt === 'podman' ? ',U' : ''}`, '--init', '--hostname', 'pernosco', '--ipc', 'private',
      '--memory', '16g', '--memory-swap', '16g', '--pids-limit', '4096', ...user.split(' '), ...rt === 'podman' ? ['--http-proxy=false', '--no-hosts'] : [], '--pull', 'never',
      '--env', 'HOME=/tmp', '--mount', `type=bind,src=${t},dst=/trace,${rt === 'podman' ? 'bind-nonrecursive,nosuid,nodev' : 'bind-nonrecursive=true'}`,
      '--mount', `type=bind,src=${t}/pernosco-given-to-builder,dst=/trace/pernosco-given-to-builder,${rt === 'podman' ? 'bind-nonrecursive,nosuid,nodev' : 'bind-nonrecursive=true'},readonly`,
      '--env', 'RUST_BACKTRACE=full', '--env', 'RUST_LOG=error', '--entrypoint', 'db_builder', '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/db-builder:a4fca5f637f1825e6d6eda47c34b785233d974f9', 'on-prem', '/trace']
    const h = fakeSys({ uid: 0 }), th = usersTrace(4242) // config.user wins over sudo's
    assert.equal(await main(['only-build', th, '--runtime', rt, '--config', cfg], h.sys), 0)
    assert.deepEqual(h.calls[1], whole(h.calls[1], th, '--user 4242:4343'))
    const u = fakeSys({ uid: 1000 }), tu = traceDir() // not root: always you, config.user ignored
    assert.equal(await main(['only-build', tu, '--runtime', rt, '--config', cfg], u.sys), 0)
    assert.deepEqual(u.calls[1], whole(u.calls[1], tu, rt === 'podman' ? '--userns=keep-id' : '--user 1000:1000'))
  }
  for (const bad of ['0:0', '1000:0', '0:1000', 'root', '1000']) {
    const dir = tmpdir(), cfg = path.join(dir, 'c.json')
    fs.writeFileSync(cfg, JSON.stringify({ user: bad }))
    const f = fakeSys({ uid: 0 })
    assert.equal(await main(['only-build', traceDir(), '--config', cfg], f.sys), 2, bad)
    assert.match(f.err[0], new RegExp(`/user ${JSON.stringify(bad)} is not allowed \\(.*two numbers above 0 of at most 9 digits, e\\.g\\. "1000:1000"`))
  }
  assert.deepEqual(ownTmpDirs().filter(d => !before.includes(d)), [], 'a refusal leaves no temp dir')
})

test('serve --dry-run prints create, start, inspect, the bridge and rm; runs none', async () => {
  const f = fakeSys(), t = traceDir(), st = tmpdir()
  assert.equal(await main(['serve', t, '--storage', st, '--dry-run', '--runtime', 'docker'], f.sys), 0)
  assert.deepEqual(f.calls, [])
  const name = f.out.find(l => l.startsWith('docker create'))!.match(/--name (pernosco-server-[0-9a-f]{12}) /)![1]
  const ddir = /^# seccomp profile written to (\/\S+)\/seccomp\.json$/.exec(f.out[1])![1]
  assert.equal(f.out[0], 'docker image inspect 643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/app-server:a4fca5f637f1825e6d6eda47c34b785233d974f9')
  assert.deepEqual(f.out.slice(3), [`docker inspect ${name}`, `docker start --attach ${name}`, `docker inspect --format '{{.State.Pid}}' ${name}`,
    quote(['nsenter', '--target', 'PID', '--net', process.execPath, '-e', BRIDGE, 'NETNS', `${ddir}/bridge.sock`]), `docker rm --force ${name}`])
  assert.match(f.out[2], new RegExp(`--mount type=bind,src=${t},dst=/pernosco/database,bind-nonrecursive=true,readonly --mount type=bind,src=${st},dst=/pernosco/storage,bind-nonrecursive=true `))
  // podman: the same, the PID from inspect too (issue 17: one way for both runtimes)
  const g = fakeSys()
  assert.equal(await main(['serve', t, '--dry-run', '--runtime', 'podman'], g.sys), 0)
  const pname = g.out.find(l => l.startsWith('podman create'))!.match(/--name (pernosco-server-[0-9a-f]{12}) /)![1]
  const dir = /^# seccomp profile written to (\/\S+)\/seccomp\.json$/.exec(g.out[1])![1]
  assert.match(g.out[2], new RegExp(` --env HOME=/tmp --mount type=bind,src=${t},dst=/pernosco/database`))
  assert.deepEqual(g.out.slice(3), [`podman inspect ${pname}`, `podman start --default-mounts-file /dev/null --attach ${pname}`, `podman inspect --format '{{.State.Pid}}' ${pname}`,
    quote(['podman', 'unshare', 'nsenter', '--target', 'PID', '--net', process.execPath, '-e', BRIDGE, 'NETNS', `${dir}/bridge.sock`]), `podman rm --force --time 0 ${pname}`])
  assert.deepEqual(g.calls, [])
})

/** A fake host whose container "runs" until removed, with a local backend behind the bridge. */
async function serving(args: string[], uid = 1000) {
  const backend = http.createServer((_, res) => res.writeHead(200, { 'content-security-policy': 'default-src *' }).end('hello from the server'))
  await new Promise<void>(ok => backend.listen(0, '127.0.0.1', ok))
  let stopContainer = () => {}
  const running = new Promise<Result>(ok => { stopContainer = () => ok({ code: 137, out: '' }) })
  const answer = (a: readonly string[]): Result | Promise<Result> | undefined => {
    if (a[1] === 'start') return running
    if (a.includes('{{.State.Pid}}')) return { code: 0, out: '4242\n' }
    if (a[1] === 'rm') stopContainer()
    return undefined
  }
  const f = fakeSys({ uid, bridge: fakeBridge((backend.address() as net.AddressInfo).port), answer })
  const done = main(['serve', traceDir(), ...args], f.sys)
  for (let i = 0; i < 100 && !f.out.length; i++) await new Promise(r => setTimeout(r, 20))
  return { f, done, backend, stopContainer }
}

test('serve: container, bridge, proxy; the printed URL works; Ctrl-C stops all of it, exit 130', async () => {
  const { f, done, backend } = await serving(['--runtime', 'podman', '--tunnel', '18790'])
  assert.match(f.out[0], /^Pernosco is ready: open http:\/\/pernosco-[0-9a-f]{10}\.localhost:18790\/\?token=[0-9a-f]{64}\n\(from another machine: ssh -L 18790:127\.0\.0\.1:18790 -L 18791:127\.0\.0\.1:18791 THIS-HOST, and serve --tunnel 18790\)$/)
  const url = new URL(f.out[0].split(/\s/)[4])
  // *.localhost is loopback in browsers (RFC 6761); node's resolver does not know that, so connect by address.
  const get = (port: number, path: string, headers: Record<string, string>) => new Promise<http.IncomingMessage & { body: string }>(ok =>
    http.get({ host: '127.0.0.1', port, path, headers: { host: `${url.hostname}:${port}`, ...headers } }, r => { let b = ''; r.on('data', d => { b += d }).on('end', () => ok(Object.assign(r, { body: b }))) }))
  const cookie = (await get(18790, url.pathname + url.search, {})).headers['set-cookie']![0].split(';')[0]
  const answer = await get(18791, '/', { cookie })
  const body = `${answer.statusCode} ${answer.headers['content-security-policy']?.slice(0, 18)} ${answer.body}`
  const byAddress = await get(18791, '/', { cookie, host: '127.0.0.1:18791' })
  assert.equal(byAddress.statusCode, 403, 'only the name of this serve')
  assert.equal(byAddress.body, 'bad Host: open the URL that `serve` printed\n', 'issue 29: says what to open instead')
  assert.equal(f.out[1], 'Chromium 152 or later shows the UI; Firefox with WebRTC off (README, Browsers). Ctrl-C stops it.', 'issue 29')
  assert.equal(body, "200 default-src 'self' hello from the server")
  assert.deepEqual(f.calls.map(c => c[0] === 'BRIDGE' ? c.slice(0, 6) : c.slice(0, 2)),
    [['podman', 'image'], ['podman', 'create'], ['podman', 'inspect'], ['podman', 'start'], ['podman', 'inspect'], ['BRIDGE', 'podman', 'unshare', 'nsenter', '--target', '4242']])
  f.fire()
  assert.equal(await done, 130)
  assert.deepEqual(f.calls.slice(6).map(c => c.slice(0, 2)), [['podman', 'rm'], ['podman', 'rm']])
  await assert.rejects(new Promise((ok, no) => net.connect(18790, '127.0.0.1', () => ok(1)).on('error', no)), /ECONNREFUSED/, 'proxy closed')
  backend.close()
})

test('serve: the storage dir gets the trace\'s clean-up when the app server is gone (issue 16)', async () => {
  const storage = tmpdir()
  fs.writeFileSync(path.join(storage, 'notes'), 'kept\n')
  fs.writeFileSync(path.join(storage, 'suid'), '')
  fs.symlinkSync('/etc/passwd', path.join(storage, 'link'))
  // The containers' user's (as root: sudo's 1000, who also runs the clean-up, issue 27), as the server leaves it.
  const me = process.getuid!(), them = me === 0 ? 1000 : me
  spawnSync('chown', ['-hR', `${them}:${them}`, storage])
  fs.chmodSync(path.join(storage, 'suid'), 0o4755)
  fs.chmodSync(storage, 0o777)
  const { f, done, backend, stopContainer } = await serving(['--runtime', 'docker', '--storage', storage], me)
  stopContainer()
  assert.equal(await done, 137)
  backend.close()
  assert.deepEqual(f.err.filter(l => l.includes('app server')).sort(), [`pernosco: after the app server: mode of '${storage}' changed from 0777 (rwxrwxrwx) to 0755 (rwxr-xr-x)`,
    `pernosco: after the app server: mode of '${storage}/suid' changed from 4755 (rwsr-xr-x) to 0755 (rwxr-xr-x)`, `pernosco: after the app server: removed link (type l, uid ${them})`])
  assert.equal(fs.lstatSync(path.join(storage, 'link'), { throwIfNoEntry: false }), undefined)
  assert.equal(fs.statSync(path.join(storage, 'suid')).mode & 0o7777, 0o755)
  assert.equal(fs.statSync(storage).mode & 0o777, 0o755)
  assert.equal(fs.readFileSync(path.join(storage, 'notes'), 'utf8'), 'kept\n')
})

test('serve: the storage dir is cleaned also when serve fails after the server started (a taken port)', async () => {
  const storage = tmpdir(), taken = net.createServer()
  await new Promise<void>(ok => taken.listen(0, '127.0.0.1', ok))
  const port = (taken.address() as net.AddressInfo).port
  fs.symlinkSync('/etc/passwd', path.join(storage, 'link'))
  const me = process.getuid!(), them = me === 0 ? 1000 : me
  spawnSync('chown', ['-hR', `${them}:${them}`, storage])
  const { f, done, backend } = await serving(['--runtime', 'docker', '--storage', storage, '--tunnel', String(port)], me)
  assert.equal(await done, 2)
  taken.close()
  backend.close()
  assert.match(f.err.join('\n'), /cannot listen on 127\.0\.0\.1:\d+/)
  assert.ok(f.err.includes(`pernosco: after the app server: removed link (type l, uid ${them})`), f.err.join('\n'))
  assert.equal(fs.lstatSync(path.join(storage, 'link'), { throwIfNoEntry: false }), undefined)
})

test('serve --allow-webrtc-leak (issue 21): said in red at start-up, and the shell frames the UI for any browser', async () => {
  const { f, done, backend, stopContainer } = await serving(['--runtime', 'docker', '--allow-webrtc-leak'], 0)
  assert.ok(f.err.includes('pernosco: --allow-webrtc-leak: the UI can reach other hosts by WebRTC'), f.err.join('\n'))
  const url = new URL(f.out[0].split(/\s/)[4])
  const get = (path: string, headers: Record<string, string>) => new Promise<http.IncomingMessage & { body: string }>(ok =>
    http.get({ host: '127.0.0.1', port: url.port, path, headers: { host: url.host, ...headers } }, r => { let b = ''; r.on('data', d => { b += d }).on('end', () => ok(Object.assign(r, { body: b }))) }))
  const cookie = (await get(url.pathname + url.search, {})).headers['set-cookie']![0].split(';')[0]
  const shell = await get('/', { cookie, 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0' })
  assert.match(shell.body, /<\/style><iframe src="http:\/\/pernosco-[0-9a-f]{10}\.localhost:\d+\/" sandbox="[^"]+"><\/iframe>$/)
  stopContainer()
  assert.equal(await done, 137)
  backend.close()
})

test('serve, issue 22: a missing --storage is made (0700); a second serve on it is refused while the first runs, allowed after', async () => {
  const storage = path.join(tmpdir(), 'notes/pernosco')
  const first = await serving(['--runtime', 'docker', '--storage', storage])
  assert.match(first.f.out[0], /^Pernosco is ready/)
  assert.equal(fs.statSync(storage).mode & 0o777, 0o700)
  const g = fakeSys()
  assert.equal(await main(['serve', traceDir(), '--runtime', 'docker', '--storage', storage], g.sys), 2)
  assert.deepEqual(g.err, [`pernosco: --storage ${storage} is in use by another serve (one at a time)`])
  assert.deepEqual(g.calls, [], 'nothing ran')
  first.stopContainer()
  assert.equal(await first.done, 137)
  first.backend.close()
  const again = await serving(['--runtime', 'docker', '--storage', storage])
  assert.match(again.f.out[0], /^Pernosco is ready/, 'the lock went with the first serve')
  again.stopContainer()
  assert.equal(await again.done, 137)
  again.backend.close()
})

test('serve: when the container dies, serve exits with its code', async () => {
  const { f, done, backend, stopContainer } = await serving(['--runtime', 'docker'], 0)
  assert.match(f.out[0], /^Pernosco is ready/)
  assert.match(f.out[0], /ssh -L 8080:127\.0\.0\.1:8080 -L 8081:127\.0\.0\.1:8081 THIS-HOST, and serve --tunnel 8080\)$/, 'free ports: the recipe names fixed ones')
  assert.deepEqual(f.calls[5].slice(0, 5), ['BRIDGE', 'nsenter', '--target', '4242', '--net'], 'root: plain nsenter')
  stopContainer()
  assert.equal(await done, 137)
  backend.close()
})

test('serve: a bridge that cannot start is a clear error, and the container is removed', async () => {
  const f = fakeSys({ bridge: () => ({ ready: Promise.reject(new Error('nsenter: Operation not permitted')), died: new Promise(() => {}), close: () => {} }),
    answer: a => a.includes('{{.State.Pid}}') ? { code: 0, out: '7\n' } : a[1] === 'start' ? new Promise(() => {}) : undefined })
  await assert.rejects(main(['serve', traceDir(), '--runtime', 'docker'], f.sys), /nsenter: Operation not permitted/)
  assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'inspect', 'start', 'inspect', 'nsenter', 'rm'])
})

/** A runtime whose `inspect` reports `pids` one after another from start (podman says 0 until it runs). */
function pidsThenRun(pids: string[]) {
  return (a: readonly string[]) => {
    if (a[1] === 'start') return new Promise<Result>(() => {})
    return a.includes('{{.State.Pid}}') ? { code: 0, out: (pids.length > 1 ? pids.shift() : pids[0]) + '\n' } : undefined
  }
}
const noBridge = () => ({ ready: Promise.reject(new Error('no bridge in this test')), died: new Promise<void>(() => {}), close: () => {} })

test('serve: the PID is inspect\'s first positive number (0 and junk until the server runs), both runtimes', async () => {
  const f = fakeSys({ bridge: noBridge, answer: pidsThenRun(['0', '', 'x', '4242']) })
  await assert.rejects(main(['serve', traceDir(), '--runtime', 'podman'], f.sys), /no bridge in this test/)
  assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'inspect', 'start', 'inspect', 'inspect', 'inspect', 'inspect', 'podman', 'rm'])
  assert.deepEqual(f.calls[8].slice(0, 6), ['BRIDGE', 'podman', 'unshare', 'nsenter', '--target', '4242'])
})

test('serve: a server PID in our own network namespace is refused before any bridge, and the container removed', async () => {
  for (const rt of ['podman', 'docker']) {
    const f = fakeSys({ bridge: noBridge, answer: pidsThenRun(['4242']) })
    for (const p of ['self', '4242']) {
      fs.mkdirSync(path.join(f.sys.proc, p, 'ns'), { recursive: true })
      fs.symlinkSync('net:[4026531840]', path.join(f.sys.proc, p, 'ns/net'))
    }
    assert.equal(await main(['serve', traceDir(), '--runtime', rt], f.sys), 2, rt)
    assert.deepEqual(f.err, ["pernosco: the server's PID 4242 is in our own network namespace: refused"], rt)
    assert.ok(!f.calls.some(c => c[0] === 'BRIDGE'), `${rt}: no bridge`)
    assert.equal(f.calls.at(-1)![1], 'rm', `${rt}: removed`)
    // control: the server's own namespace is accepted
    fs.rmSync(path.join(f.sys.proc, '4242/ns/net'))
    fs.symlinkSync('net:[4026532999]', path.join(f.sys.proc, '4242/ns/net'))
    const g = { ...f.sys, bridge: (argv: readonly string[]) => { f.calls.push(['BRIDGE', ...argv]); return noBridge() } }
    await assert.rejects(main(['serve', traceDir(), '--runtime', rt], g), /no bridge in this test/, rt)
    assert.ok(f.calls.some(c => c[0] === 'BRIDGE' && c.includes('4242')), `${rt}: bridged`)
  }
})

test('verify before start: whatever inspect shows beyond the argv is refused, the container removed unstarted', async () => {
  const cases: [string, (i: any) => void, RegExp][] = [
    ['an injected mount', i => i.Mounts.push({ Source: '/etc', Destination: '/hostetc', RW: false }), /mounts .*\/etc:\/hostetc:ro/],
    ['a read-only mount made writable', i => { i.Mounts[0].RW = true }, /mounts .*\/pernosco\/database:rw/],
    ['an injected variable', i => i.Config.Env.push('INJECTED=1'), /environment INJECTED/],
    ['a changed variable', i => { i.Config.Env = i.Config.Env.map((e: string) => e.startsWith('HOME=') ? 'HOME=/root' : e) }, /environment HOME/],
    ['a network', i => { i.HostConfig.NetworkMode = 'bridge' }, /network bridge/],
    ['an added capability', i => i.HostConfig.CapAdd.push('CAP_SYS_ADMIN'), /capabilities SYS_ADMIN/],
    ['privileged', i => { i.HostConfig.Privileged = true }, /privileged true/],
    ['a writable root', i => { i.HostConfig.ReadonlyRootfs = false }, /read-only root false/],
    ['the host PID namespace (containers.conf pidns)', i => { i.HostConfig.PidMode = 'host' }, /PID namespace host/],
    ['the host IPC namespace (ipcns)', i => { i.HostConfig.IpcMode = 'host' }, /IPC namespace host/],
    ['a device (devices)', i => { i.HostConfig.Devices = [{ PathOnHost: '/dev/fuse' }] }, /devices \[\{"PathOnHost":"\/dev\/fuse"\}\]/],
    ['a default PATH although the image sets one', i => i.Config.Env.push('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'), /environment PATH/],
    ['no no-new-privileges', i => { i.HostConfig.SecurityOpt = i.HostConfig.SecurityOpt.filter((o: string) => o !== 'no-new-privileges') }, /security options/],
    ['another seccomp profile', i => { i.HostConfig.SecurityOpt = i.HostConfig.SecurityOpt.map((o: string) => o.startsWith('seccomp=') ? 'seccomp=unconfined' : o) }, /security options/],
    // issue 16: the security options are exactly ours; each of these weakens confinement and was accepted before
    ...['label=disable', 'unmask=ALL', 'systempaths=unconfined'].map((o): [string, (i: any) => void, RegExp] => [`an added ${o}`, i => i.HostConfig.SecurityOpt.push(o), new RegExp(`security options .*${o}`)]),
    ['another user', i => { i.Config.User = '0:0' }, /user 0:0/],
    ['another image', i => { i.Image = 'd'.repeat(64) }, /image d{64}/],
  ]
  for (const [what, tamper, msg] of cases) {
    const f = fakeSys(), base = f.sys.run
    f.sys.run = async (a, c) => { const r = await base(a, c); if (a[1] === 'inspect' && r.out) { const [i] = JSON.parse(r.out); tamper(i); return { ...r, out: JSON.stringify([i]) } } return r }
    assert.equal(await main(['serve', traceDir(), '--runtime', 'podman'], f.sys), 2, what)
    assert.match(f.err.join('\n'), new RegExp(`is not what pernosco.mts asked for, so it was removed unstarted: .*${msg.source}`), what)
    assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'inspect', 'rm'], `${what}: never started`)
  }
})

test('verify, docker: our seccomp profile shown inline as its JSON passes; with one more option it is refused', async () => {
  for (const extra of [[], ['label=disable']]) {
    const f = fakeSys(), base = f.sys.run
    f.sys.run = async (a, c) => {
      const r = await base(a, c)
      if (a[1] !== 'inspect' || !r.out) return r
      const [i] = JSON.parse(r.out)
      i.HostConfig.SecurityOpt = [...i.HostConfig.SecurityOpt.map((o: string) => o.startsWith('seccomp=') ? `seccomp=${JSON.stringify(JSON.parse(SECCOMP))}` : o), ...extra]
      return { ...r, out: JSON.stringify([i]) }
    }
    assert.equal(await main(['only-build', traceDir(), '--runtime', 'docker'], f.sys), extra.length ? 2 : 0, extra.join())
    assert.deepEqual(f.calls.map(c => c[1]), ['image', 'create', 'inspect', ...extra.length ? [] : ['start'], 'rm'])
  }
})

test('the trace after the builder: links out, devices/FIFOs/sockets, other owners removed; setuid cleared; the rest kept', { skip: process.getuid!() !== 0 && 'needs root (mknod, chown)' }, async () => {
  const t = traceDir(), outside = tmpdir()
  fs.mkdirSync(path.join(t, 'sub'))
  fs.writeFileSync(path.join(t, 'sub/suid'), '#!/bin/sh\n', { mode: 0o4755 })
  fs.writeFileSync(path.join(t, 'sgid'), '', { mode: 0o2644 })
  fs.mkdirSync(path.join(t, 'setgid-dir'), { mode: 0o2755 }); fs.chmodSync(path.join(t, 'setgid-dir'), 0o2755)
  fs.symlinkSync(path.join(outside, 'x'), path.join(t, 'sub/escape'))
  fs.symlinkSync('/etc/passwd', path.join(t, 'passwd'))
  fs.symlinkSync('version', path.join(t, 'ok-link'))
  fs.symlinkSync('suid', path.join(t, 'sub/ok-link'))
  // issue 16: decided from the link's text, never resolved: `..` or an absolute path goes even when it would
  // land inside the trace (resolving a name the builder chose could trigger an automount, or hang).
  fs.symlinkSync('../version', path.join(t, 'sub/dotdot-inside'))
  fs.symlinkSync(path.join(t, 'version'), path.join(t, 'absolute-inside'))
  fs.symlinkSync('/net/builder-chose-this', path.join(t, 'automount'))
  fs.symlinkSync('../../..', path.join(t, 'sub/up'))
  assert.equal(spawnSync('mkfifo', [path.join(t, 'fifo')]).status, 0)
  assert.equal(spawnSync('mknod', [path.join(t, 'sub/null'), 'c', '1', '3']).status, 0)
  const sock = net.createServer().listen(path.join(t, 'sock'))
  await new Promise(r => sock.once('listening', r))
  fs.writeFileSync(path.join(t, 'theirs'), '')
  // A chain of links that each look local, but resolve out of the trace (the review's bypass).
  fs.symlinkSync('.', path.join(t, 'd')); fs.symlinkSync('d/..', path.join(t, 'up1')); fs.symlinkSync('up1/..', path.join(t, 'up2'))
  fs.symlinkSync('up2/etc/passwd', path.join(t, 'chain'))
  fs.writeFileSync(path.join(t, 'ww'), '', { mode: 0o666 }); fs.chmodSync(path.join(t, 'ww'), 0o666)
  // All of it the containers' user's (sudo's 1000), who runs the clean-up (issue 27: root never acts by name in it).
  spawnSync('chown', ['-hR', '1000:1000', t]); fs.chmodSync(path.dirname(t), 0o711); fs.chownSync(path.join(t, 'theirs'), 4242, 4242)
  fs.chmodSync(path.join(t, 'sub/suid'), 0o4755); fs.chmodSync(path.join(t, 'sgid'), 0o2644); fs.chmodSync(path.join(t, 'setgid-dir'), 0o2755)
  // While the "builder" runs (after the hard-link check, which an unreadable directory would stop): a directory
  // it locked, with a FIFO in it, and the trace opened to all.
  const f = fakeSys({ uid: 0, answer: a => {
    if (a[1] !== 'start') return undefined
    fs.mkdirSync(path.join(t, 'locked')); assert.equal(spawnSync('mkfifo', [path.join(t, 'locked/fifo2')]).status, 0)
    spawnSync('chown', ['-hR', '1000:1000', path.join(t, 'locked')]); fs.chmodSync(path.join(t, 'locked'), 0)
    fs.chmodSync(t, 0o777)
    return { code: 0, out: '' }
  } })
  assert.equal(await main(['only-build', t, '--runtime', 'podman'], f.sys), 0)
  sock.close()
  const left = (p: string) => fs.lstatSync(path.join(t, p), { throwIfNoEntry: false })
  for (const gone of ['sub/escape', 'passwd', 'sub/up', 'fifo', 'sub/null', 'sock', 'theirs', 'up2', 'locked/fifo2', 'sub/dotdot-inside', 'absolute-inside', 'automount']) assert.equal(left(gone), undefined, gone)
  assert.equal(left('ww')!.mode & 0o7777, 0o644)
  assert.equal(left('locked')!.mode & 0o7777, 0o700, 'opened up again so the walk goes on')
  assert.equal(fs.statSync(t).mode & 0o777, 0o755, 'the trace root is no longer writable to others')
  assert.equal(left('sub/suid')!.mode & 0o7777, 0o755)
  assert.equal(left('sgid')!.mode & 0o7777, 0o644)
  assert.equal(left('setgid-dir')!.mode & 0o7777, 0o755)
  // `chain` (up2/etc/passwd) reads as plain and stays, but dangles: up1 and up2, which carried its `..`, are gone.
  assert.ok(left('chain')!.isSymbolicLink() && !fs.existsSync(path.join(t, 'chain')))
  assert.ok(left('sub/ok-link')!.isSymbolicLink() && left('ok-link')!.isSymbolicLink() && left('version')!.isFile())
  const mode = (p: string, from: string, to: string) => `mode of '${path.join(t, p)}' changed from ${from} to ${to}`
  assert.deepEqual(f.err.map(l => l.replace('pernosco: after the builder: ', '')).sort(), [
    mode('', '0777 (rwxrwxrwx)', '0755 (rwxr-xr-x)'), mode('locked', '0000 (---------)', '0700 (rwx------)'),
    mode('setgid-dir', '2755 (rwxr-sr-x)', '0755 (rwxr-xr-x)'), mode('sgid', '2644 (rw-r-Sr--)', '0644 (rw-r--r--)'),
    mode('sub/suid', '4755 (rwsr-xr-x)', '0755 (rwxr-xr-x)'), mode('ww', '0666 (rw-rw-rw-)', '0644 (rw-r--r--)'),
    ...['absolute-inside', 'automount', 'passwd', 'sub/dotdot-inside', 'sub/escape', 'sub/up', 'up1', 'up2'].map(l => `removed ${l} (type l, uid 1000)`),
    'removed fifo (type p, uid 1000)', 'removed locked/fifo2 (type p, uid 1000)', 'removed sock (type s, uid 1000)', 'removed sub/null (type c, uid 1000)',
    'removed theirs (type f, uid 4242)'].sort())
})

test('the trace after the builder: names that are not UTF-8 are judged by their bytes; what another user owns goes whole; the trace owner\'s own files stay', { skip: process.getuid!() !== 0 && 'needs root (chown)' }, async () => {
  const t = traceDir()
  const b = (name: string) => Buffer.concat([Buffer.from(t + '/'), Buffer.from(name, 'latin1')])
  fs.symlinkSync('/etc', b('evil\xff')) // node's readdir would hand back "evil\ufffd", which lstat cannot find
  fs.writeFileSync(b('data\xfe'), 'kept')
  // The recording is 1000's, open to all (0777); the containers run as 65534 (config.user), who also runs the
  // clean-up (issue 27): 1000's files are the trace owner's and stay.
  fs.writeFileSync(path.join(t, 'recorded'), 'mmap'); spawnSync('chown', ['-hR', '1000:1000', t]); fs.chmodSync(t, 0o777)
  fs.chmodSync(path.dirname(t), 0o711)
  fs.mkdirSync(path.join(t, 'theirdir')); fs.chownSync(path.join(t, 'theirdir'), 4242, 4242)
  const dir = tmpdir(), cfg = path.join(dir, 'c.json')
  fs.writeFileSync(cfg, JSON.stringify({ user: '65534:65534' }))
  const f = fakeSys({ uid: 0, sudo: false })
  assert.equal(await main(['only-build', t, '--runtime', 'podman', '--config', cfg], f.sys), 0)
  // find compares bytes (LC_ALL=C); the name is printed with U+FFFD for the byte that is not UTF-8.
  // (65534 cannot take other users' write bit off 1000's 0777 trace root, and says so: not this test's subject)
  for (const l of ['removed evil\ufffd (type l, uid 1000)', 'removed theirdir (type d, uid 4242)']) assert.ok(f.err.includes(`pernosco: after the builder: ${l}`), f.err.join('\n'))
  const left = fs.readdirSync(t, { encoding: 'buffer' }).map(b => b.toString('latin1')).sort()
  assert.deepEqual(left, ['data\xfe', BUILT, 'pernosco-given-to-builder', 'recorded', 'version'], 'a file of ours with such a name is kept as it is')
  assert.equal(fs.readFileSync(b('data\xfe'), 'utf8'), 'kept')
  // What the containers' user cannot remove (another user's tree with files in it) is said, and nothing is marked built.
  fs.mkdirSync(path.join(t, 'theirtree/sub'), { recursive: true }); fs.writeFileSync(path.join(t, 'theirtree/sub/f'), '')
  spawnSync('chown', ['-R', '4242:4242', path.join(t, 'theirtree')])
  const g = fakeSys({ uid: 0, sudo: false })
  assert.equal(await main(['only-build', t, '--runtime', 'podman', '--config', cfg], g.sys), 0)
  assert.match(g.err.join('\n'), /Permission denied[\s\S]*the clean-up is INCOMPLETE/)
  assert.ok(!fs.existsSync(path.join(t, BUILT)), 'not built')
})

const BI = '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/db-builder:a4fca5f637f1825e6d6eda47c34b785233d974f9'
const SI = '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/app-server:a4fca5f637f1825e6d6eda47c34b785233d974f9'

test('a missing image is never pulled: one line with the exact pull command, nothing else run', async () => {
  for (const rt of ['podman', 'docker']) {
    const f = fakeSys({ answer: a => a[1] === 'image' ? { code: 125, out: '' } : undefined })
    assert.equal(await main(['only-build', traceDir(), '--runtime', rt], f.sys), 2)
    assert.deepEqual(f.err, [`pernosco: image 643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/db-builder:a4fca5f637f1825e6d6eda47c34b785233d974f9 is not here: \`${rt} pull 643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/db-builder:a4fca5f637f1825e6d6eda47c34b785233d974f9\` or load it (they come with its on-premises licence: README, "Where the images come from")`])
    assert.deepEqual(f.calls.map(c => c[1]), ['image'])
  }
  // issue 29: build checks both images (and its options) before rr pack changes the trace.
  const server = fakeSys({ answer: a => a[1] === 'image' && a[3].includes('app-server') ? { code: 125, out: '' } : undefined })
  assert.equal(await main(['build', traceDir()], server.sys), 2)
  assert.match(server.err.join('\n'), /^pernosco: image .*app-server.* is not here/)
  assert.deepEqual(server.calls.map(c => c[1]), ['image', 'image'], 'no rr pack')
  const level = fakeSys()
  assert.equal(await main(['build', traceDir(), '--compression-level', '23'], level.sys), 2)
  assert.deepEqual(level.calls, [], 'a bad level stops build before anything runs')
  const g = fakeSys()
  assert.equal(await main(['only-build', traceDir(), '--no-pull'], g.sys), 2, '--no-pull is gone: nothing pulls any more')
  assert.match(g.err[0], /unknown option --no-pull/)
})

test('a pinned digest must be the local image\'s: refused before any container is created', async () => {
  const d = tmpdir(), pin = 'sha256:' + 'e'.repeat(64)
  fs.writeFileSync(path.join(d, 'pernosco.json'), JSON.stringify({ images: { builder: `localhost/b@${pin}` } }))
  const f = fakeSys()
  f.sys.cwd = d
  assert.equal(await main(['only-build', traceDir()], f.sys), 2)
  assert.match(f.err[0], new RegExp(`image localhost/b@${pin} is sha256:c{64} here, not ${pin}: refused`))
  assert.deepEqual(f.calls.map(c => c[1]), ['image'])
  const ok = fakeSys({ answer: a => a[1] === 'image' ? { code: 0, out: JSON.stringify([{ Id: 'c'.repeat(64), RepoDigests: [`localhost/b@${pin}`], Config: { Env: ['PATH=/usr/local/bin:/bin'] } }]) } : undefined })
  ok.sys.cwd = d
  assert.equal(await main(['only-build', traceDir()], ok.sys), 0, ok.err.join())
  const byId = fakeSys({ answer: a => a[1] === 'image' ? a[3] === pin ? { code: 0, out: JSON.stringify([{ Id: pin, Config: { Env: [] } }]) } : { code: 1, out: '' } : undefined })
  byId.sys.cwd = d
  assert.equal(await main(['only-build', traceDir()], byId.sys), 2, 'found by ID after a load, but the container then reports another image')
  assert.deepEqual(byId.calls.slice(0, 2).map(c => c.slice(1)), [['image', 'inspect', `localhost/b@${pin}`], ['image', 'inspect', pin]])
})


