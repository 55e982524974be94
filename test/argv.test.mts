// Golden tests: the WHOLE argv of every container command, for podman and docker,
// with the default config and a full one. A change to any flag must change a test here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import fs from 'node:fs'
import { ROOT } from './helpers.mts'
import { BRIDGE, cleanArgv, serverArgv, bridgeArgv, pidArgv, builderArgv, recordContainerArgv, recordArgv, startArgv, rmArgv, parseConfig, POLICY, SECCOMP, SECCOMP_DENIED, type Ctx } from '../pernosco.mts'

const B = '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/db-builder:a4fca5f637f1825e6d6eda47c34b785233d974f9'
const FULL = parseConfig(JSON.stringify({ runtime: 'docker', images: { builder: 'reg.example/b@sha256:' + 'a'.repeat(64), server: 'reg.example/s:2' },
  limits: { memory: '8g', cpus: 2.5, pids: 512, tmp: '1g' }, cgroupParent: 'pernosco.slice', capAdd: ['SYS_PTRACE'] }), 'full.json')
const ctx = (rt: 'podman' | 'docker', over: Partial<Ctx> = {}): Ctx =>
  ({ rt, cfg: parseConfig('{}', 'd'), rootless: false, uid: 1000, gid: 100, name: 'pernosco-builder-0123456789ab', seccomp: '/tmp/p/seccomp.json', ...over })

// The confinement every container gets, spelled out literally for each runtime and user mapping.
const HEAD = (tmp: string) => ['--name', 'pernosco-builder-0123456789ab', '--rm', '--network', 'none', '--cap-drop', 'ALL',
  '--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=/tmp/p/seccomp.json', '--security-opt', 'apparmor=unconfined',
  '--read-only', '--tmpfs', `/tmp:rw,exec,nosuid,nodev,mode=1777,size=4g${tmp}`, '--init', '--hostname', 'pernosco', '--ipc', 'private',
  '--memory', '16g', '--memory-swap', '16g', '--pids-limit', '4096']
const PODMAN_ROOTFUL = ['podman', 'create', ...HEAD(',U'), '--user', '1000:100', '--http-proxy=false', '--no-hosts', '--pull', 'never', '--env', 'HOME=/tmp']
const PODMAN_ROOTLESS = ['podman', 'create', ...HEAD(',U'), '--userns=keep-id', '--http-proxy=false', '--no-hosts', '--pull', 'never', '--env', 'HOME=/tmp']
const DOCKER = ['docker', 'create', ...HEAD(''), '--user', '1000:100', '--pull', 'never', '--env', 'HOME=/tmp']
const PM = ',bind-nonrecursive,nosuid,nodev', DM = ',bind-nonrecursive=true' // podman's and docker's bind options
// The trace, and over its marker GIVEN the same file read-only (issue 27: the builder cannot remove it).
const GIVEN_M = (t: string, m: string) => ['--mount', `type=bind,src=${t}/pernosco-given-to-builder,dst=/trace/pernosco-given-to-builder${m},readonly`]
const TAIL = (m: string) => ['--mount', `type=bind,src=/home/u/trace,dst=/trace${m}`, ...GIVEN_M('/home/u/trace', m), '--env', 'RUST_BACKTRACE=full', '--entrypoint', 'db_builder', B, 'on-prem', '/trace']

test('builder, default config: podman rootful, podman rootless, docker', () => {
  assert.deepEqual(builderArgv(ctx('podman'), '/home/u/trace', [], {}), [...PODMAN_ROOTFUL, ...TAIL(PM)])
  assert.deepEqual(builderArgv(ctx('podman', { rootless: true }), '/home/u/trace', [], {}), [...PODMAN_ROOTLESS, ...TAIL(PM)])
  assert.deepEqual(builderArgv(ctx('docker', { rootless: true }), '/home/u/trace', [], {}), [...DOCKER, ...TAIL(DM)], 'docker maps the user with --user even when not root')
})

test('builder, literal whole argv for docker with every option and the full config', () => {
  assert.deepEqual(builderArgv(ctx('docker', { cfg: FULL }), '/t', ['--shards', '8', '--check-trace', 'on-prem', '/trace', '--skip-gdb-add-index'], { RR_LOG: 'all:debug', RR_LOG_FILE: '/trace/rr.log', PERNOSCO_ZSTD_COMPRESSION_LEVEL: '22' }), [
    'docker', 'create', '--name', 'pernosco-builder-0123456789ab', '--rm', '--network', 'none', '--cap-drop', 'ALL', '--cap-add', 'SYS_PTRACE',
    '--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=/tmp/p/seccomp.json', '--security-opt', 'apparmor=unconfined',
    '--read-only', '--tmpfs', '/tmp:rw,exec,nosuid,nodev,mode=1777,size=1g', '--init', '--hostname', 'pernosco', '--ipc', 'private',
    '--memory', '8g', '--memory-swap', '8g', '--cpus', '2.5', '--pids-limit', '512', '--cgroup-parent', 'pernosco.slice',
    '--user', '1000:100', '--pull', 'never', '--env', 'HOME=/tmp', '--mount', 'type=bind,src=/t,dst=/trace,bind-nonrecursive=true',
    '--mount', 'type=bind,src=/t/pernosco-given-to-builder,dst=/trace/pernosco-given-to-builder,bind-nonrecursive=true,readonly',
    '--env', 'RUST_BACKTRACE=full', '--env', 'RR_LOG=all:debug', '--env', 'RR_LOG_FILE=/trace/rr.log', '--env', 'PERNOSCO_ZSTD_COMPRESSION_LEVEL=22',
    '--entrypoint', 'db_builder', 'reg.example/b@sha256:' + 'a'.repeat(64), '--shards', '8', '--check-trace', 'on-prem', '/trace', '--skip-gdb-add-index'])
})

test('builder, each variable alone and its own arguments in place of the default, both runtimes', () => {
  const cases: [Record<string, string | undefined>, string[], string[], string[]][] = [
    [{ RR_LOG: undefined }, ['--shards', '3', 'on-prem', '/trace'], [], ['--shards', '3', 'on-prem', '/trace']],
    [{ PERNOSCO_ZSTD_COMPRESSION_LEVEL: '1' }, [], ['--env', 'PERNOSCO_ZSTD_COMPRESSION_LEVEL=1'], ['on-prem', '/trace']],
    [{}, ['on-prem', '/trace', '--skip-gdb-add-index'], [], ['on-prem', '/trace', '--skip-gdb-add-index']],
    [{ RR_LOG: 'ReplaySession:debug', RR_LOG_FILE: '/trace/rr.log' }, [], ['--env', 'RR_LOG=ReplaySession:debug', '--env', 'RR_LOG_FILE=/trace/rr.log'], ['on-prem', '/trace']],
  ]
  for (const [rt, head, m] of [['podman', PODMAN_ROOTFUL, PM], ['docker', DOCKER, DM]] as const)
    for (const [o, given, env, args] of cases)
      assert.deepEqual(builderArgv(ctx(rt), '/home/u/trace', given, o), [...head, '--mount', `type=bind,src=/home/u/trace,dst=/trace${m}`, ...GIVEN_M('/home/u/trace', m),
        '--env', 'RUST_BACKTRACE=full', ...env, '--entrypoint', 'db_builder', B, ...args], `${rt} ${JSON.stringify(o)}`)
})

test('record in a container: SYS_PTRACE only, trace dir the only mount, both runtimes', () => {
  const tail = (m: string) => ['--mount', `type=bind,src=/home/u/rr,dst=/trace${m}`, '--env', '_RR_TRACE_DIR=/trace', 'my/image:1', 'rr', 'record', './t', '--flag']
  const withPtrace = (a: string[]) => a.flatMap(x => x === 'ALL' ? ['ALL', '--cap-add', 'SYS_PTRACE'] : [x])
  assert.deepEqual(recordContainerArgv(ctx('podman'), '/home/u/rr', 'my/image:1', ['./t', '--flag']), [...withPtrace(PODMAN_ROOTFUL), ...tail(PM)])
  assert.deepEqual(recordContainerArgv(ctx('docker', { cfg: { ...FULL, capAdd: ['NET_ADMIN'] } }), '/home/u/rr', 'my/image:1', ['./t', '--flag'])
    .filter(a => a === 'NET_ADMIN'), [], 'config capAdd does not reach the recording container')
  assert.deepEqual(recordContainerArgv(ctx('docker'), '/home/u/rr', 'my/image:1', ['./t', '--flag']), [...withPtrace(DOCKER), ...tail(DM)])
})

test('host commands: rr record, start, rm', () => {
  assert.deepEqual(recordArgv(undefined, ['./t', 'a b']), ['rr', 'record', './t', 'a b'])
  assert.deepEqual(recordArgv('/o', ['./t']), ['env', '_RR_TRACE_DIR=/o', 'rr', 'record', './t'])
  // podman adds what mounts.conf lists when a container starts: an empty list instead (issue 27).
  assert.deepEqual(startArgv('podman', 'n'), ['podman', 'start', '--default-mounts-file', '/dev/null', '--attach', 'n'])
  assert.deepEqual(startArgv('docker', 'n'), ['docker', 'start', '--attach', 'n'])
  assert.deepEqual(rmArgv('podman', 'n'), ['podman', 'rm', '--force', '--time', '0', 'n'])
  assert.deepEqual(rmArgv('docker', 'n'), ['docker', 'rm', '--force', 'n'])
})

test('never: privileged, unconfined seccomp, host network/pid/ipc/userns, devices, 0.0.0.0', () => {
  for (const rt of ['podman', 'docker'] as const) for (const rootless of [false, true]) {
    const argv = builderArgv(ctx(rt, { rootless, cfg: FULL }), '/t', ['--shards', '2'], {}), a = argv.join(' ')
    for (const bad of ['--privileged', '--pid', '--uts', '--device', '--publish', '-p', '--volume', '-v', 'host', '--userns=host', 'bash', 'chmod'])
      assert.ok(!argv.includes(bad), `${rt}: ${bad}`)
    for (const bad of ['seccomp=unconfined', '0.0.0.0', 'network host', 'ipc host', 'label=disable'])
      assert.ok(!a.includes(bad), `${rt}: ${bad}`)
  }
})

test('POLICY: one reason per flag, relaxations marked; SECCOMP denies escapes and allows debugger calls', () => {
  // POLICY is the argv itself; its reasons are comments. Read from the source: the array alternates a reason
  // (comment lines, the last ending in '.') and its flags (at most two lines), starting with a reason.
  const src = fs.readFileSync(path.join(ROOT, 'pernosco.mts'), 'utf8')
  const body = src.slice(src.indexOf('export function POLICY('))
  const lines: string[] = body.slice(body.indexOf('return [') + 8, body.indexOf('\n  ]\n')).split('\n').map(l => l.trim()).filter(Boolean)
  const runs: string[][] = []
  for (const l of lines) {
    const kind = l.startsWith('//') ? 'why' : 'flags'
    if (runs.at(-1)?.[0] === kind) runs.at(-1)!.push(l)
    else runs.push([kind, l])
  }
  assert.equal(runs[0][0], 'why', 'the first flag has its reason')
  for (const [k, run] of runs.entries()) {
    assert.equal(run[0], k % 2 ? 'flags' : 'why', `${run[1]}: reasons and flags alternate`)
    if (run[0] === 'why') assert.match(run.at(-1)!, /\.$/, `${run[1]}: a reason ends with a full stop`)
    if (run[0] === 'flags') assert.ok(run.length <= 3, `${run[1]}: one reason for at most two lines of flags`)
  }
  assert.ok(runs.length >= 36, `${runs.length / 2} reasons`)
  assert.equal(lines.filter(l => l.startsWith('//') && l.includes('WEAKENS')).length, 2, 'capAdd and AppArmor are marked')
  const p = JSON.parse(SECCOMP)
  assert.equal(p.defaultAction, 'SCMP_ACT_ALLOW')
  // The whole list: the denied calls; openat2 as ENOSYS (its mode is out of seccomp's sight); then, for
  // S_ISUID and then S_ISGID, each call that sets a mode, refused when that bit is in its mode argument.
  const modeArg = [['chmod', 1], ['fchmod', 1], ['fchmodat', 2], ['fchmodat2', 2], ['creat', 1], ['open', 2], ['openat', 3], ['mknod', 1], ['mknodat', 2]] as const
  // Issue 27: socket(AF_ALG = 38) and socket(AF_VSOCK = 40), compared on the low 32 bits, fail with EPERM;
  // every call that sets or removes an extended attribute (an ACL) fails with EOPNOTSUPP.
  const family = (af: number) => ({ names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: 0xffffffff, valueTwo: af, op: 'SCMP_CMP_MASKED_EQ' }] })
  const xattr = ['setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat', 'removexattr', 'lremovexattr', 'fremovexattr', 'removexattrat']
  assert.deepEqual(p.syscalls, [{ names: [...SECCOMP_DENIED], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }, family(38), family(40), { names: xattr, action: 'SCMP_ACT_ERRNO', errnoRet: 95 },
    { names: ['openat2'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    ...[2048, 1024].flatMap(bit => modeArg.map(([name, index]) => ({ names: [name], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index, value: bit, valueTwo: bit, op: 'SCMP_CMP_MASKED_EQ' }] })))])
  for (const s of ['open_by_handle_at', 'kexec_load', 'init_module', 'finit_module', 'delete_module', 'bpf', 'keyctl', 'add_key', 'request_key',
    'swapon', 'swapoff', 'reboot', 'settimeofday', 'clock_settime', 'acct', 'iopl', 'ioperm', 'socketcall']) assert.ok(SECCOMP_DENIED.includes(s), s)
  for (const s of ['ptrace', 'mount', 'unshare', 'userfaultfd', 'perf_event_open', 'clone', 'pivot_root']) assert.ok(!SECCOMP_DENIED.includes(s), s)
})

test('server, default config: podman rootful, rootless, docker; trace read-only, no storage, no sources', () => {
  const tail = (m: string) => ['--mount', `type=bind,src=/home/u/trace,dst=/pernosco/database${m},readonly`,
    '--env', 'RUST_BACKTRACE=full', '--env', 'RUST_LOG=error', '--env', 'PERNOSCO_ENABLE_VARIABLES_ANNOTATIONS=0',
    '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/app-server:a4fca5f637f1825e6d6eda47c34b785233d974f9', '--empty-umask', '--standalone', '--host', '0.0.0.0']
  assert.deepEqual(serverArgv(ctx('podman'), '/home/u/trace', undefined, []), [...PODMAN_ROOTFUL, ...tail(PM)])
  assert.deepEqual(serverArgv(ctx('podman', { rootless: true }), '/home/u/trace', undefined, []), [...PODMAN_ROOTLESS, ...tail(PM)])
  assert.deepEqual(serverArgv(ctx('docker'), '/home/u/trace', undefined, []), [...DOCKER, ...tail(DM)])
})

test('server, every option: storage read-write, sources read-only under /sources<FROM>, both runtimes', () => {
  for (const [rt, head, m] of [['podman', PODMAN_ROOTFUL, PM], ['docker', DOCKER, DM]] as const)
    assert.deepEqual(serverArgv(ctx(rt), '/t', '/s', [['/src', '/src'], ['/build/x', '/home/u/x']]), [...head,
      '--mount', `type=bind,src=/t,dst=/pernosco/database${m},readonly`, '--mount', `type=bind,src=/s,dst=/pernosco/storage${m}`,
      '--mount', `type=bind,src=/src,dst=/sources/src${m},readonly`, '--mount', `type=bind,src=/home/u/x,dst=/sources/build/x${m},readonly`,
      '--env', 'RUST_BACKTRACE=full', '--env', 'RUST_LOG=error', '--env', 'PERNOSCO_ENABLE_VARIABLES_ANNOTATIONS=0',
      '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/app-server:a4fca5f637f1825e6d6eda47c34b785233d974f9',
      '--empty-umask', '--standalone', '--host', '0.0.0.0', '--app-storage', '/pernosco/storage', '--serve-sources', '/sources'], rt)
  assert.equal(serverArgv(ctx('docker', { cfg: FULL }), '/t', undefined, []).at(-5), 'reg.example/s:2')
})

test('the bridge: plain node in the server\'s network namespace only; rootless podman through its user namespace', () => {
  // The namespace serve checked goes along: the bridge exits unless it is in it (a reused PID, issue 27).
  const at = ['42', 'net:[4026532999]']
  assert.deepEqual(bridgeArgv('podman', true, at, '/usr/bin/node', '/tmp/pernosco-x/bridge.sock'), ['podman', 'unshare', 'nsenter', '--target', '42', '--net', '/usr/bin/node', '-e', BRIDGE, 'net:[4026532999]', '/tmp/pernosco-x/bridge.sock'])
  assert.deepEqual(bridgeArgv('podman', false, at, '/usr/bin/node', '/tmp/pernosco-x/bridge.sock'), ['nsenter', '--target', '42', '--net', '/usr/bin/node', '-e', BRIDGE, 'net:[4026532999]', '/tmp/pernosco-x/bridge.sock'])
  assert.deepEqual(bridgeArgv('docker', true, at, '/usr/bin/node', '/tmp/pernosco-x/bridge.sock'), ['nsenter', '--target', '42', '--net', '/usr/bin/node', '-e', BRIDGE, 'net:[4026532999]', '/tmp/pernosco-x/bridge.sock'])
  assert.deepEqual(pidArgv('docker', 'n'), ['docker', 'inspect', '--format', '{{.State.Pid}}', 'n'])
  assert.match(BRIDGE, /net\.connect\(3000, '127\.0\.0\.1'\)/)
  assert.match(BRIDGE, /\.listen\(process\.argv\.at\(-1\)/, 'listens on the socket path it is given, nothing else')
  assert.ok(!/\.on\('data'|@|\\0/.test(BRIDGE), 'never reads the data; no abstract socket name')
})


// pernosco.mts compiles schema.json with validateSchema off (it cost ~40 ms of every start): the check lives here.
test('schema.json is a valid draft-07 JSON Schema (the meta-schema check pernosco.mts skips at run time)', async () => {
  const { Ajv } = await import('ajv')
  const fs = await import('node:fs')
  const ajv = new Ajv()
  assert.equal(ajv.validateSchema(JSON.parse(fs.readFileSync(path.join(ROOT, 'schema.json'), 'utf8'))), true, JSON.stringify(ajv.errors))
  assert.equal(ajv.validateSchema({ type: 'no-such-type' }), false) // control: the check can fail
})

// README's "For auditors" walks the file with line anchors: each must land where its part starts.
test('README auditor anchors: each lands on its banner, comment or definition, and says the same line', async () => {
  const fs = await import('node:fs')
  const src = fs.readFileSync(path.join(ROOT, 'pernosco.mts'), 'utf8').split('\n')
  const links = [...fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').matchAll(/^- \[(.*)\]\(pernosco\.mts#L(\d+)\) \(line (\d+)\)$/gm)]
  assert.ok(links.length >= 12, 'the anchor list is there')
  for (const [, text, at, said] of links) {
    assert.equal(at, said, text)
    const line = src[+at - 1], name = /`(\w+)`/.exec(text)?.[1]
    const starts = line.startsWith('// ---- ') || (+at === 2 && line.startsWith('// pernosco.mts')) ||
      (name !== undefined && new RegExp(`^(// ${name}\\b|(export )?(async )?(const|function|class|interface|type) ${name}\\b)`).test(line))
    assert.ok(starts, `${text}: line ${at} is ${JSON.stringify(line)}`)
  }
})

test('the clean-up after a container: one find command, its whole argv; owners once each; no group/other bit the directory lacked', () => {
  const whole = (perm: string, close: string) => ['env', 'LC_ALL=C', 'find', '-P', '/home/u/trace',
    '(', '!', '-uid', '1000', '!', '-uid', '0', '-o', '!', '-type', 'f', '!', '-type', 'd', '!', '-type', 'l',
    '-o', '-lname', '/*', '-o', '-lname', '..', '-o', '-lname', '../*', '-o', '-lname', '*/..', '-o', '-lname', '*/../*', ')',
    '-prune', '-printf', 'removed %P (type %y, uid %U)\\n', '-exec', 'rm', '-rf', '--', '{}', '+',
    '-o', '-type', 'd', '(', '!', '-perm', '-700', '-o', '-perm', perm, ')', '-exec', 'chmod', '-c', `u+rwx,${close}`, '--', '{}', ';',
    '-o', '-type', 'f', '-perm', perm, '-exec', 'chmod', '-c', close, '--', '{}', '+']
  // Issue 27: a 0700 trace keeps nothing for group or other; a 0755 one only their read and search; a 0750 one group's.
  assert.deepEqual(cleanArgv('/home/u/trace', [1000, 1000, 0], 0o40700), whole('/6077', 'ug-s,g-rwx,o-rwx'))
  assert.deepEqual(cleanArgv('/home/u/trace', [1000, 1000, 0], 0o40755), whole('/6022', 'ug-s,g-w,o-w'))
  assert.deepEqual(cleanArgv('/home/u/trace', [1000, 1000, 0], 0o40750), whole('/6027', 'ug-s,g-w,o-rwx'))
  assert.deepEqual(cleanArgv('/home/u/trace', [1000, 1000, 0], 0o40777), whole('/6022', 'ug-s,g-w,o-w'), 'write for others never stays')
})

/** The sections of pernosco.mts as README's size paragraph names them, each from its first line. */
const SECTIONS: [string, RegExp][] = [['header and types', /^#!/], ['POLICY', /^\/\/ ---- POLICY/], ['SECCOMP', /^\/\/ SECCOMP: /],
  ['validators', /^\/\/ ---- Validators/], ['builders', /^\/\/ ---- Builders/], ['executors', /^\/\/ ---- Executors/], ['VERIFY', /^\/\/ ---- VERIFY/],
  ['runAs and runContainer', /^\/\*\* Who the containers run as/], ['trace hygiene', /^\/\/ ---- Trace hygiene/], ['proxy', /^\/\/ ---- Proxy/],
  ['commands', /^\/\/ ---- Commands/], ['CLI', /^\/\/ ---- CLI/]]

test('size (issue 17): comment-only lines >= 20 %, no growth past the ratchet, and README\'s size paragraph says each section\'s lines', () => {
  const lines = fs.readFileSync(path.join(ROOT, 'pernosco.mts'), 'utf8').replace(/\n$/, '').split('\n')
  const comments = lines.filter(l => /^\s*(\/\/|\/\*\*|\*)/.test(l)).length
  assert.ok(comments / lines.length >= 0.2, `${comments} of ${lines.length} lines are comments: ${(100 * comments / lines.length).toFixed(1)} %`)
  // The target is 680 lines (ceiling 700); until a design change gets there, the file may not grow (README, For auditors).
  assert.ok(lines.length <= 1498, `${lines.length} lines`)
  const at = SECTIONS.map(([, re]) => lines.findIndex(l => re.test(l)))
  assert.ok(at.every((a, i) => a >= 0 && (i === 0 || a > at[i - 1])), `sections in order: ${at}`)
  const said = SECTIONS.map(([name], i) => `${name} ${(at[i + 1] ?? lines.length) - at[i]}`).join(' · ')
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').replace(/\s+/g, ' ')
  assert.ok(readme.includes(`${lines.length} lines, ${comments} of them comment-only (${(100 * comments / lines.length).toFixed(1)} %): ${said}.`),
    `README should say: ${lines.length} lines, ${comments} of them comment-only (${(100 * comments / lines.length).toFixed(1)} %): ${said}.`)
})

test('server, sources that package-build --copy-sources put in the trace: served from the read-only trace, no mount of their own; --sources wins (issue 18)', () => {
  const S = '643334553517.dkr.ecr.us-east-2.amazonaws.com/customers/app-server:a4fca5f637f1825e6d6eda47c34b785233d974f9'
  for (const [rt, head, m] of [['podman', PODMAN_ROOTFUL, PM], ['docker', DOCKER, DM]] as const) {
    assert.deepEqual(serverArgv(ctx(rt), '/t', undefined, [], true), [...head, '--mount', `type=bind,src=/t,dst=/pernosco/database${m},readonly`,
      '--env', 'RUST_BACKTRACE=full', '--env', 'RUST_LOG=error', '--env', 'PERNOSCO_ENABLE_VARIABLES_ANNOTATIONS=0', S,
      '--empty-umask', '--standalone', '--host', '0.0.0.0', '--serve-sources', '/pernosco/database/sources'], rt)
    assert.deepEqual(serverArgv(ctx(rt), '/t', undefined, [['/src', '/home/u/src']], true), [...head, '--mount', `type=bind,src=/t,dst=/pernosco/database${m},readonly`,
      '--mount', `type=bind,src=/home/u/src,dst=/sources/src${m},readonly`, '--env', 'RUST_BACKTRACE=full', '--env', 'RUST_LOG=error', '--env', 'PERNOSCO_ENABLE_VARIABLES_ANNOTATIONS=0', S,
      '--empty-umask', '--standalone', '--host', '0.0.0.0', '--serve-sources', '/sources'], `${rt}: --sources wins`)
  }
})
