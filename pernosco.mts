#!/usr/bin/env -S npx zx
// pernosco.mts: run Pernosco's two closed-source containers (the db builder and the app
// server) on your own machine, confined so that even a malicious container can neither
// leak nor damage your data. Usage: `npx zx pernosco.mts --help`.
//
// TRUST BOUNDARY. Trusted: this file, node and its four packages, the container runtime
// (podman or docker) and the kernel. NOT trusted: the images, everything they write into
// the trace directory, and every byte the app server sends to your browser.
// Guarantees, given that trust (each is tested, see test/):
//  - the builder sees only the trace dir (read-write); the server sees the trace and the
//    sources read-only and its storage dir read-write; nothing else of the host;
//  - neither container has any network (`--network none`): no DNS, no gateway, no host port;
//  - no capabilities, no-new-privileges, a seccomp denylist, read-only root, pids/memory/cpu
//    limits, your own uid (never root of the host for a rootless run), a minimal environment;
//  - host-side writes into the trace never follow a symlink the builder may have planted.
// Residual risks (SECURITY.md): kernel bugs reachable through the syscalls a debugger needs
// (ptrace, unshare, mount in a user namespace, userfaultfd, perf_event_open); AppArmor is
// off for these containers; CPU and memory side channels; what you choose to mount.
// Like bubblewrap's, the protection is entirely determined by the arguments built here:
// POLICY lists every flag with its reason, the builders assemble argv arrays from it, and
// only `exec` spawns processes: never through a shell. Read in order: POLICY, SECCOMP,
// validators, builders, executors, commands, CLI.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import minimist from 'minimist'
import chalk from 'chalk'
import { Ajv } from 'ajv'

const SELF = fileURLToPath(import.meta.url)
export const VERSION = '0.1.0'
export type Runtime = 'podman' | 'docker'
export interface Config {
  runtime?: Runtime; images: { builder: string; server: string }; cgroupParent?: string; capAdd: string[]
  limits: { memory: string; cpus?: number; pids: number; tmp: string }
  serve: { hosts: string[]; tls?: { cert: string; key: string }; allowInsecureRemote: boolean }
}
/** What one container run is built from. Facts about the host are passed in, never read. */
export interface Ctx { rt: Runtime; cfg: Config; rootless: boolean; uid: number; gid: number; name: string; seccomp: string }

// ---- Policy: every confinement flag, with its reason. "WEAKENS" marks a relaxation. ----
type Rule = readonly [why: string, flags: (c: Ctx) => string[]]
export const POLICY = Object.freeze<Rule[]>([
  ['A fresh name per run: cleanup after Ctrl-C removes exactly this container.', c => ['--name', c.name]],
  ['Removed on exit, even if this wrapper is killed; we also `rm -f` it ourselves.', () => ['--rm']],
  ['No network at all: only loopback; no DNS resolver, gateway or host service to reach.', () => ['--network', 'none']],
  ['No capabilities. config.capAdd (default empty) adds back what it names: WEAKENS.', c => ['--cap-drop', 'ALL', ...c.cfg.capAdd.flatMap(k => ['--cap-add', k])]],
  ['Never gain privileges through exec (setuid bits, file capabilities).', () => ['--security-opt', 'no-new-privileges']],
  ['Our SECCOMP below: the runtime default blocks what a debugger needs; the reference used unconfined.', c => ['--security-opt', `seccomp=${c.seccomp}`]],
  ['WEAKENS: the default AppArmor profile denies mount(2), which the nested sandbox needs.', () => ['--security-opt', 'apparmor=unconfined']],
  ['The image is immutable while it runs; all writes go to the mounts and tmpfs below.', () => ['--read-only']],
  ['A private, size-capped /tmp; exec because the builder runs tools from it. podman 4 drops mode= on a tmpfs:\n'
    + 'U makes this tmpfs (never a host path) the container user\'s.', c => ['--tmpfs', `/tmp:rw,exec,nosuid,nodev,mode=1777,size=${c.cfg.limits.tmp}${c.rt === 'podman' ? ',U' : ''}`]],
  ['An init as PID 1 reaps zombies and forwards signals, so a stop is prompt.', () => ['--init']],
  ['A fixed hostname: the host\'s name is not disclosed.', () => ['--hostname', 'pernosco']],
  ['A private IPC namespace: no shared memory with the host or other containers.', () => ['--ipc', 'private']],
  ['Limits: memory (no extra swap), processes (a fork storm stops here), CPUs if configured.', ({ cfg: { limits: l } }) =>
    ['--memory', l.memory, '--memory-swap', l.memory, ...l.cpus ? ['--cpus', String(l.cpus)] : [], '--pids-limit', String(l.pids)]],
  ['An optional cgroup parent from config, for site-wide accounting.', c => c.cfg.cgroupParent ? ['--cgroup-parent', c.cfg.cgroupParent] : []],
  ['Run as you, not root, so output is yours without the reference\'s `chmod -R ugo+rwX`.', c => c.rt === 'podman' && c.rootless ? ['--userns=keep-id'] : ['--user', `${c.uid}:${c.gid}`]],
  ['podman copies host proxy variables into containers unless told not to.', c => c.rt === 'podman' ? ['--http-proxy=false'] : []],
  ['Never pull implicitly: images come only from `pull` or `load`.', () => ['--pull', 'never']],
  ['The environment is only what is listed: HOME points at the private /tmp.', () => ['--env', 'HOME=/tmp']],
])
// Seccomp: allow by default (a debugger replays arbitrary programs' syscalls), deny the
// kernel-surface and escape calls no debugger needs. ptrace, mount, unshare, userfaultfd and
// perf_event_open stay allowed on purpose. Non-listed architectures (e.g. x32) are killed.
export const SECCOMP_DENIED = Object.freeze(['acct', 'add_key', 'adjtimex', 'bpf', 'clock_adjtime', 'clock_settime',
  'create_module', 'delete_module', 'fanotify_init', 'finit_module', 'get_kernel_syms', 'init_module', 'io_uring_enter',
  'io_uring_register', 'io_uring_setup', 'ioperm', 'iopl', 'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie',
  'name_to_handle_at', 'nfsservctl', 'open_by_handle_at', 'query_module', 'quotactl', 'quotactl_fd', 'reboot',
  'request_key', 'settimeofday', 'stime', 'swapoff', 'swapon', '_sysctl', 'sysfs', 'syslog', 'uselib', 'ustat', 'vm86', 'vm86old'])
export const SECCOMP = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_AARCH64'],
  syscalls: [{ names: SECCOMP_DENIED, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }, null, 1)

// ---- Validators: each throws UserError (exit 2) with a message that says what to do. ----
export class UserError extends Error {}
const fail = (msg: string): never => { throw new UserError(msg) }
/** An existing directory, resolved with realpath, with no character that could add mount options. */
export function checkDir(p: string, what: string): string {
  if (!path.isAbsolute(p)) fail(`${what}: ${JSON.stringify(p)} is relative; give an absolute path, e.g. "$PWD/${p}"`)
  let real = ''
  try { real = fs.realpathSync(p) } catch { fail(`${what}: ${p} does not exist`) }
  if (!fs.statSync(real).isDirectory()) fail(`${what}: ${real} is not a directory`)
  if (/[,"=:\x00-\x1f\x7f]/.test(real)) fail(`${what}: ${JSON.stringify(real)} contains , " = : or a control character, which could alter mount options; rename or move it`)
  return real
}
export function checkInt(v: string | undefined, what: string, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || +v < lo || +v > hi) fail(`${what} must be an integer from ${lo} to ${hi}, not ${JSON.stringify(v)}`)
  return +v
}
const SCHEMA = JSON.parse(fs.readFileSync(path.join(path.dirname(SELF), 'schema.json'), 'utf8'))
const validate = new Ajv({ useDefaults: true }).compile(SCHEMA)
/** Parse and validate a config file's text; defaults come from schema.json. */
export function parseConfig(text: string, file: string): Config {
  let cfg: unknown
  try { cfg = JSON.parse(text) } catch (e) { fail(`config ${file}: not JSON: ${(e as Error).message}`) }
  if (!validate(cfg)) {
    const e = validate.errors![0], extra = (e.params as { additionalProperty?: string }).additionalProperty
    fail(`config ${file}: ${e.instancePath || '/'} ${e.message}${extra ? `: ${JSON.stringify(extra)}` : ''}`)
  }
  return cfg as Config
}

// ---- Builders: pure functions from (ctx, options) to argv arrays. ----
const confinement = (c: Ctx) => POLICY.flatMap(([, flags]) => flags(c))
/** A bind mount without submounts (so read-only is recursively read-only), podman also nosuid,nodev. */
export const bindMount = (rt: Runtime, src: string, dst: string, ro = false) =>
  ['--mount', `type=bind,src=${src},dst=${dst},${rt === 'podman' ? 'bind-nonrecursive,nosuid,nodev' : 'bind-nonrecursive=true'}${ro ? ',readonly' : ''}`]
export const envFlags = (env: Record<string, string | undefined>) => Object.entries(env).flatMap(([k, v]) => v === undefined ? [] : ['--env', `${k}=${v}`])
export interface BuildOpts { shards?: number; compression?: number; checkTrace?: boolean; skipGdbAddIndex?: boolean; rrLog?: string }
/** The db builder: the trace dir is its only mount. No `--empty-umask`: files keep your umask. */
export function builderArgv(c: Ctx, trace: string, o: BuildOpts): string[] {
  return [c.rt, 'create', ...confinement(c), ...bindMount(c.rt, trace, '/trace'),
    ...envFlags({ RUST_BACKTRACE: 'full', RR_LOG: o.rrLog, RR_LOG_FILE: o.rrLog && '/trace/rr.log', PERNOSCO_ZSTD_COMPRESSION_LEVEL: o.compression?.toString() }),
    '--entrypoint', 'db_builder', c.cfg.images.builder,
    ...(o.shards ? ['--shards', String(o.shards)] : []), ...(o.checkTrace ? ['--check-trace'] : []), 'on-prem', '/trace',
    ...(o.skipGdbAddIndex ? ['--skip-gdb-add-index'] : [])]
}
/** rr record in the user's own image: the same confinement plus SYS_PTRACE; the trace dir is its only mount. */
export function recordContainerArgv(c: Ctx, out: string, image: string, cmd: string[]): string[] {
  const cc = { ...c, cfg: { ...c.cfg, capAdd: ['SYS_PTRACE'] } }
  return [c.rt, 'create', ...confinement(cc), ...bindMount(c.rt, out, '/trace'), ...envFlags({ _RR_TRACE_DIR: '/trace' }), image, 'rr', 'record', ...cmd]
}
/** rr record on the host; `env` sets rr's own trace-dir variable only when --output is given. */
export const recordArgv = (out: string | undefined, cmd: string[]) => [...(out ? ['env', `_RR_TRACE_DIR=${out}`] : []), 'rr', 'record', ...cmd]
/** The app server: trace and sources read-only, storage read-write, still no network: see serve(). */
export function serverArgv(c: Ctx, trace: string, storage: string | undefined, sources: [from: string, to: string][]): string[] {
  return [c.rt, 'create', ...confinement(c), ...bindMount(c.rt, trace, '/pernosco/database', true),
    ...storage ? bindMount(c.rt, storage, '/pernosco/storage') : [], ...sources.flatMap(([from, to]) => bindMount(c.rt, to, `/sources${from}`, true)),
    ...envFlags({ RUST_BACKTRACE: 'full', PERNOSCO_ENABLE_VARIABLES_ANNOTATIONS: '0' }), c.cfg.images.server, '--empty-umask', '--standalone', '--host', '0.0.0.0',
    ...storage ? ['--app-storage', '/pernosco/storage'] : [], ...sources.length ? ['--serve-sources', '/sources'] : []]
}
/** The bridge, plain node inside the server's network namespace only (so it starts fast): for each request it connects to
 * port 3000 and passes the socket back over its IPC channel; it never reads the data and listens on nothing. */
export const BRIDGE = `const net = require('net'); process.on('disconnect', () => process.exit(0))
process.on('message', ({ id }) => { const s = net.connect(3000, '127.0.0.1')
  s.once('connect', () => process.send({ id }, s)).once('error', e => process.send({ id, error: e.message })) })
process.send('ready')`
/** Rootless podman enters the namespace through podman's user namespace. */
export const bridgeArgv = (rt: Runtime, rootless: boolean, pid: string, node: string) =>
  [...rt === 'podman' && rootless ? ['podman', 'unshare'] : [], 'nsenter', '--target', pid, '--net', node, '-e', BRIDGE]
export const pidArgv = (rt: Runtime, name: string) => [rt, 'inspect', '--format', '{{.State.Pid}}', name]
export const startArgv = (rt: Runtime, name: string) => [rt, 'start', '--attach', name]
export const rmArgv = (rt: Runtime, name: string) => rt === 'podman' ? [rt, 'rm', '--force', '--time', '0', name] : [rt, 'rm', '--force', name]

// ---- Executors: the only code that spawns; argv arrays, never a shell. ----
export interface Result { code: number; out: string; err?: string }
export interface Sys {
  env: NodeJS.ProcessEnv; uid: number; gid: number; cwd: string; proc: string
  run(argv: readonly string[], capture?: boolean): Promise<Result>
  out(line: string): void; err(line: string): void; onSignal(f: () => void): () => void
  bridge(argv: readonly string[]): Bridge
}
/** Opens TCP connections to the server's port 3000 inside its network namespace. */
export interface Bridge { ready: Promise<void>; open(cb: (e: Error | null, s?: net.Socket) => void): void; close(): void }
export const realSys = (): Sys => ({
  env: process.env, uid: process.getuid!(), gid: process.getgid!(), cwd: process.cwd(), proc: '/proc',
  run: (argv, capture) => new Promise(res => {
    // Captured commands (create, inspect, rm) never touch our terminal: stderr comes back too, shown on failure.
    const p = spawn(argv[0], argv.slice(1), { stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit' })
    let out = '', err = ''
    p.stdout?.on('data', d => { out += d }); p.stderr?.on('data', d => { err += d })
    p.on('error', e => res({ code: 127, out, err: e.message }))
    p.on('close', (code, sig) => res({ code: code ?? 128 + os.constants.signals[sig!], out, err }))
  }),
  out: l => { process.stdout.write(l + '\n') }, err: l => { process.stderr.write(l + '\n') },
  onSignal: f => { process.on('SIGINT', f); process.on('SIGTERM', f); return () => { process.off('SIGINT', f); process.off('SIGTERM', f) } },
  bridge: argv => {
    // The child only connects and hands each socket over the IPC channel (fd passing); BRIDGE is plain JS: no loader.
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_OPTIONS: '' } })
    const waiting = new Map<number, (e: Error | null, s?: net.Socket) => void>()
    let id = 0
    const ready = new Promise<void>((ok, no) => { child.once('message', ok); child.once('exit', () => no(new UserError("the bridge could not enter the server's network namespace: "
      + 'run as root (docker, rootful podman), or use rootless podman; there is no fallback to a container network'))) })
    child.on('message', (m: { id: number; error?: string }, s?: net.Socket) => { waiting.get(m.id)?.(m.error ? new Error(m.error) : null, s); waiting.delete(m.id) })
    child.on('exit', () => { for (const cb of waiting.values()) cb(new Error('bridge exited')); waiting.clear() })
    return { ready, open: cb => { waiting.set(++id, cb); if (!child.send({ id })) cb(new Error('bridge gone')) }, close: () => { if (child.connected) child.disconnect(); setTimeout(() => child.kill(), 1000).unref() } }
  },
})
/** Shell-quote for display, so --dry-run and -x print pasteable commands. */
export const quote = (argv: readonly string[]) => argv.map(a => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
/** One invocation: its config, runtime, options and the host it runs on. */
export interface Run { sys: Sys; cfg: Config; rt: Runtime; dry: boolean; echo: boolean; o: minimist.ParsedArgs; interrupted: boolean; ended?: boolean }
const show = (r: Run, argv: readonly string[]) => { if (r.dry || r.echo) (r.dry ? r.sys.out : r.sys.err)((r.dry ? '' : '+ ') + quote(argv)) }
async function exec(r: Run, argv: readonly string[], capture: boolean | 'quiet' = false): Promise<Result> {
  show(r, argv)
  const res = r.dry ? { code: 0, out: '' } : await r.sys.run(argv, !!capture)
  if (res.code && res.err && capture !== 'quiet') r.sys.err(res.err.trim())
  return res
}
const onPath = (env: NodeJS.ProcessEnv, bin: string) => (env.PATH ?? '').split(':').some(d => d && fs.existsSync(path.join(d, bin)))
/** A private 0700 directory for the seccomp profile; dry runs keep it so printed commands work. */
function privateDir(r: Run): { dir: string; seccomp: string; done(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pernosco-')), seccomp = path.join(dir, 'seccomp.json')
  fs.writeFileSync(seccomp, SECCOMP, { mode: 0o600, flag: 'wx' })
  if (r.dry) r.sys.out(`# seccomp profile written to ${seccomp}`)
  return { dir, seccomp, done: () => { if (!r.dry) fs.rmSync(dir, { recursive: true, force: true }) } }
}
/** The local image for a reference, pulled only when allowed; a pinned digest must be exactly this image's. */
async function resolveImage(r: Run, ref: string): Promise<{ Id?: string; Config?: { Env?: string[] } }> {
  const pin = /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1], inspect = async (x: string) => JSON.parse((await exec(r, [r.rt, 'image', 'inspect', x], 'quiet')).out || '[]')[0]
  let img = await inspect(ref) ?? (pin && !r.dry ? await inspect(pin) : undefined) // after `load`, a pin may only match the image ID
  if (!img && !r.dry) {
    if (!r.o.pull) fail(`image ${ref} is not here and --no-pull was given: \`pull\` it, or \`load\` a saved copy`)
    if ((await exec(r, [r.rt, 'pull', ref])).code) fail(`pulling ${ref} failed: log in with \`${r.rt} login REGISTRY\` (credentials stay with ${r.rt}), or \`load\` a saved copy`)
    img = await inspect(ref)
  }
  const ids = img ? [img.Digest, ...img.RepoDigests ?? [], img.Id].map(d => `sha256:${String(d).replace(/^.*sha256:/, '')}`) : []
  if (pin && img && !ids.includes(pin)) fail(`image ${ref} is ${ids.at(-1)} here, not ${pin}: refusing to run it (re-tagged or tampered?)`)
  return img ?? {}
}
/** What `inspect` shows that the argv did not ask for: a containers.conf or daemon config can add mounts, env, networks. */
export function verify(argv: readonly string[], c: Ctx, info: any, img: { Id?: string; Config?: { Env?: string[] } }): string[] {
  const vals = (flag: string) => argv.flatMap((a, i) => a === flag ? [argv[i + 1]] : []), hc = info.HostConfig ?? {}, sec: string[] = hc.SecurityOpt ?? []
  const want = vals('--mount').map(m => { const o = Object.fromEntries(m.split(',').map(kv => kv.split('='))); return `${o.src}:${o.dst}:${'readonly' in o ? 'ro' : 'rw'}` })
  const got = (info.Mounts ?? []).map((m: { Source: string; Destination: string; RW: boolean }) => `${m.Source}:${m.Destination}:${m.RW ? 'rw' : 'ro'}`)
  const caps = (hc.CapAdd ?? []).map((k: string) => k.replace(/^CAP_/, '')).sort().join(), user = vals('--user')[0] ?? `${c.uid}:${c.gid}`
  const env = new Set([...img.Config?.Env ?? [], ...vals('--env'), 'container=podman', 'HOSTNAME=pernosco', 'TERM=xterm']), bare = (id?: string) => id?.replace(/^sha256:/, '')
  const seccompOk = sec.some(o => o === `seccomp=${c.seccomp}` || o.startsWith('seccomp={') && isDeepStrictEqual(JSON.parse(o.slice(8)), JSON.parse(SECCOMP)))
  return [got.sort().join() !== want.sort().join() && `mounts ${got.join(' ')}`, hc.NetworkMode !== 'none' && `network ${hc.NetworkMode}`,
    caps !== vals('--cap-add').sort().join() && `capabilities ${caps}`, (hc.Privileged || !hc.ReadonlyRootfs) && 'privileged or writable root',
    !(sec.includes('no-new-privileges') && seccompOk) && `security options ${sec.join(' ').slice(0, 200)}`, info.Config?.User !== user && `user ${info.Config?.User}`,
    bare(info.Image) !== bare(img.Id) && `image ${info.Image}, not the one checked (${img.Id})`,
    ...(info.Config?.Env ?? []).filter((e: string) => !env.has(e)).map((e: string) => `environment ${e.split('=')[0]}`)].filter((x): x is string => !!x)
}
/** create → inspect-verify → start --attach (while `during` sets up what talks to it) → rm; a signal removes the container. */
async function runContainer(r: Run, kind: string, image: string, build: (c: Ctx) => string[],
  { during, capture = false }: { during?: (name: string, c: Ctx) => Promise<() => void>; capture?: boolean } = {}): Promise<Result> {
  if (!r.dry && !onPath(r.sys.env, r.rt)) fail(`${r.rt} is not on PATH: install it, or choose the other with --runtime`)
  const img = await resolveImage(r, image), tmp = privateDir(r), name = `pernosco-${kind}-${crypto.randomBytes(6).toString('hex')}`
  const c: Ctx = { rt: r.rt, cfg: r.cfg, rootless: r.sys.uid !== 0, uid: r.sys.uid, gid: r.sys.gid, name, seccomp: tmp.seccomp }
  const off = r.sys.onSignal(() => { r.interrupted = true; void r.sys.run(rmArgv(r.rt, name), true) })
  let stop = () => {}
  try {
    const argv = build(c), created = await exec(r, argv, true)
    if (created.code || r.interrupted) return { code: r.interrupted ? 130 : created.code, out: '' }
    const [info] = JSON.parse((await exec(r, [r.rt, 'inspect', name], true)).out || '[{}]')
    const bad = r.dry ? [] : verify(argv, c, info, img)
    if (bad.length) fail(`${name} is not what pernosco.mts asked for, so it was removed unstarted: ${bad.join('; ')}. Check containers.conf or the daemon config`)
    const started = exec(r, startArgv(r.rt, name), capture).finally(() => { r.ended = true })
    if (during) stop = await during(name, c).catch(async e => { await r.sys.run(rmArgv(r.rt, name), true); throw e })
    const res = await started
    return r.interrupted ? { code: 130, out: '' } : res
  } finally {
    stop(); show(r, rmArgv(r.rt, name))
    if (!r.dry) await r.sys.run(rmArgv(r.rt, name), true) // an error here means it was already gone
    off(); tmp.done()
  }
}

// ---- Host-side work on the trace: it was written by the builder before, so it is hostile. ----
/** lstat that returns undefined for "absent" and refuses symlinks. */
function entry(dir: string, name: string): fs.Stats | undefined {
  const st = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false })
  if (st?.isSymbolicLink()) fail(`trace: ${path.join(dir, name)} is a symlink; refusing to write through it (the builder may have planted it). Remove it and retry`)
  return st
}
/** Create a new file under dir with O_EXCL|O_NOFOLLOW: it can never land anywhere else. */
function writeNew(dir: string, name: string, data: string | Buffer, mode = 0o644) {
  const fd = fs.openSync(path.join(dir, name), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode)
  try { fs.writeFileSync(fd, data) } finally { fs.closeSync(fd) }
}
export const LIBTHREAD_DB = ['/usr/lib64/libthread_db.so', '/usr/lib/x86_64-linux-gnu/libthread_db.so']
export const SOURCES_FALLBACK = JSON.stringify([{ priority: -10, files: [{ url: '/sources/', at: '/' }] }])
/** After the builder: remove or neutralise what could make the next host-side read hang or write land elsewhere. */
export function sanitize(r: Run, trace: string) {
  const walk = (dir: string): string[] => fs.readdirSync(dir).flatMap(d => {
    const p = path.join(dir, d), st = fs.lstatSync(p), rel = path.relative(trace, p)
    const why = st.uid !== r.sys.uid ? `owned by uid ${st.uid}` : !st.isSymbolicLink() && !st.isFile() && !st.isDirectory() ? 'a device, FIFO or socket'
      : st.isSymbolicLink() && path.relative(trace, path.resolve(dir, fs.readlinkSync(p))).startsWith('..') ? 'a symlink out of the trace' : ''
    try {
      if (why) return fs.rmSync(p, { recursive: true, force: true }), [`${rel}: ${why}, removed`]
      const fix = st.mode & 0o6000 && !st.isSymbolicLink() ? [`${rel}: setuid/setgid bit, cleared`] : []
      if (fix.length) { const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW); fs.fchmodSync(fd, st.mode & 0o1777); fs.closeSync(fd) }
      return [...fix, ...st.isDirectory() ? walk(p) : []]
    } catch (e) { return [`${rel}: ${why || 'setuid/setgid bit'}, could NOT fix: ${(e as Error).message}`] }
  })
  for (const f of walk(trace)) r.sys.err(chalk.yellow(`pernosco: the builder left ${f}`))
}
async function packageBuild(r: Run, trace: string): Promise<number> {
  if (!r.o['skip-rr']) {
    if (!onPath(r.sys.env, 'rr')) fail('rr is not on PATH: install rr (https://rr-project.org), or pass --skip-rr')
    const { code } = await exec(r, ['rr', 'pack', trace])
    if (code) return code
  }
  const lib = LIBTHREAD_DB.find(f => fs.existsSync(f)), dbg = path.join(trace, 'files.system-debuginfo')
  const dbgSt = entry(trace, 'files.system-debuginfo'), srcSt = entry(trace, 'sources.fallback')
  if (dbgSt && !dbgSt.isDirectory()) fail(`trace: ${dbg} is not a directory`)
  const libSt = dbgSt && entry(dbg, 'libthread_db.so')
  if (r.dry) for (const l of [lib && `copy ${lib} to ${dbg}/libthread_db.so`, !srcSt && `write ${trace}/sources.fallback`]) if (l) r.sys.out(`# would ${l}`)
  if (r.dry) return 0
  if (lib) {
    if (!dbgSt) fs.mkdirSync(dbg, { mode: 0o755 })
    if (libSt) fs.unlinkSync(path.join(dbg, 'libthread_db.so'))
    writeNew(dbg, 'libthread_db.so', fs.readFileSync(lib), 0o555)
  }
  if (!srcSt) writeNew(trace, 'sources.fallback', SOURCES_FALLBACK)
  return 0
}
async function onlyBuild(r: Run, trace: string): Promise<number> {
  const o: BuildOpts = { shards: checkInt(r.o.shards, '--shards', 1, 1024), compression: checkInt(r.o['compression-level'], '--compression-level', 1, 22),
    checkTrace: r.o['check-trace'], skipGdbAddIndex: r.o['skip-gdb-add-index'], rrLog: r.o['builder-rr-log'] }
  const { code } = await runContainer(r, 'builder', r.cfg.images.builder, c => builderArgv(c, trace, o))
  if (!r.dry) sanitize(r, trace)
  return code
}
/** rr's own default: $_RR_TRACE_DIR, else ~/.local/share/rr; the trace is its latest-trace. */
const rrDir = (r: Run) => r.sys.env._RR_TRACE_DIR || path.join(r.sys.env.HOME ?? os.homedir(), '.local/share/rr')
const traceArg = (r: Run) => checkDir(String(r.o._[0] ?? path.join(rrDir(r), 'latest-trace')), 'trace')
async function record(r: Run): Promise<number> {
  const cmd = r.o['--'] ?? []
  if (!cmd.length) fail('record: give the command after --, e.g. `record -- ./my-test`')
  const par = fs.readFileSync(path.join(r.sys.proc, 'sys/kernel/perf_event_paranoid'), 'utf8').trim()
  if (+par > 1) fail(`rr needs /proc/sys/kernel/perf_event_paranoid <= 1 (it is ${par}): sudo sysctl kernel.perf_event_paranoid=1`)
  const out = r.o.output === undefined ? undefined : checkDir(r.o.output, '--output')
  const dir = r.o.container && (out ?? checkDir(rrDir(r), 'trace dir'))
  if (dir) return (await runContainer(r, 'record', r.o.container, c => recordContainerArgv(c, dir, r.o.container, cmd))).code
  if (!r.dry && !onPath(r.sys.env, 'rr')) fail('rr is not on PATH: install rr (https://rr-project.org), or record in your image with --container IMAGE')
  return (await exec(r, recordArgv(out, cmd))).code
}

// ---- Serve: the wrapper's own proxy is the only way in, and it forces the browser-side policy. ----
// Same-origin CSP on every response, whatever the server sent; nothing reports anywhere. The UI runs in a sandboxed
// iframe of a shell page on a second port (another origin), whose frame-src stops the UI navigating itself elsewhere.
export const CSP = ["default-src 'self'", "connect-src 'self'", "script-src 'self' 'unsafe-inline' 'unsafe-eval'", "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:", "font-src 'self' data:", "media-src 'self' blob:", "worker-src 'self' blob:", "child-src 'self' blob:", "frame-src 'self'",
  "manifest-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "webrtc 'block'", 'sandbox allow-scripts allow-same-origin allow-forms allow-downloads']
export const PERMISSIONS = 'accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), hid=(), microphone=(), midi=(), payment=(), publickey-credentials-get=(), serial=(), usb=()'
export const forcedHeaders = (csp: string, allow = '') => ({ 'content-security-policy': csp, 'connection-allowlist': `(response-origin${allow});webrtc=block`,
  'x-dns-prefetch-control': 'off', 'referrer-policy': 'no-referrer', 'x-content-type-options': 'nosniff', 'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin', 'permissions-policy': PERMISSIONS })
/** Backend response headers that pass; all others (CSP, Link, Refresh, Set-Cookie, Report-To, CORS...) are dropped. */
export const KEEP_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-range', 'accept-ranges', 'etag', 'last-modified', 'cache-control', 'expires', 'date', 'vary']
const HOP = ['connection', 'keep-alive', 'upgrade', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding']
export function responseHeaders(h: http.IncomingHttpHeaders, origin: string, forced: Record<string, string>): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = { ...forced }
  for (const k of KEEP_HEADERS) if (h[k] !== undefined) out[k] = h[k]
  if (h.location) try { const u = new URL(h.location, origin); if (u.origin === origin) out.location = u.pathname + u.search + u.hash } catch { /* dropped */ }
  return out
}
/** Our request head for the upstream socket: node's server parser has checked the request line and every header. */
const requestHead = (req: http.IncomingMessage, keep: (name: string) => boolean) => req.rawHeaders.reduce((s, v, i, a) =>
  i % 2 || !keep(v.toLowerCase()) ? s : `${s}${v}: ${a[i + 1]}\r\n`, `${req.method} ${req.url} HTTP/1.1\r\n`) + '\r\n'
/** The app server's response on one upstream socket, parsed here (node's client costs twice as much: README, Performance) and framed anew
 * by node's ServerResponse, so nothing it sends escapes our headers; unparsable: 502. Feed it each read, then null; done(true): reusable. */
export function relay(up: net.Socket, res: http.ServerResponse, bodiless: boolean, fix: (h: http.IncomingHttpHeaders) => http.OutgoingHttpHeaders, done: (reuse: boolean) => void) {
  let buf: Buffer = Buffer.alloc(0), left = 0, pending = 0, head = true, chunked = false, trailer = false, over = false, told = false, reusable = false
  const tell = () => told || pending || (told = true, done(reusable)) // once, and only when every write of the read buffer has been flushed
  const end = (ok: boolean, reuse = ok) => over || (over = true, reusable = reuse && !buf.length, tell(), ok ? res.end()
    : res.headersSent ? res.destroy() : res.writeHead(502, fix({})).end('bad response from the Pernosco server\n'))
  res.on('close', () => over || (over = true, told = true, done(false))) // the browser went away mid-response
  return (d: Buffer | null): unknown => {
    if (d === null) return end(!head && left < 0, false) // a body without a length ends at the close; anything else was cut short
    buf = buf.length ? Buffer.concat([buf, d]) : d
    while (!over) {
      const n = left < 0 ? buf.length : Math.min(left, buf.length) // body bytes: of a length, of a chunk, or (-1) up to the close
      if (n) { pending++; up.pause(); res.write(buf.subarray(0, n), () => --pending || (over ? tell() : up.resume())) } // the read buffer is reused
      buf = buf.subarray(n); left -= left < 0 ? 0 : n
      if (left) return
      if (!head && !chunked) return end(true)
      const e = buf.indexOf(head ? '\r\n\r\n' : '\r\n'), text = buf.toString('latin1', 0, e)
      if (e < 0) return (buf = Buffer.from(buf)).length > 65536 && end(false) // a copy: the read buffer is reused
      buf = buf.subarray(e + (head ? 4 : 2))
      if (trailer) { if (!text) end(true) } // trailers are dropped, up to an empty line
      else if (!head && text) { // a chunk's size line ('' is the CRLF after its data)
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(text)
        if (!m) return end(false)
        left = parseInt(m[1], 16); trailer = !left
      } else if (head) {
        const [status, ...lines] = text.split('\r\n'), h: Record<string, string> = {}, code = +(/^HTTP\/1\.[01] ([1-5]\d\d)( |$)/.exec(status)?.[1] ?? 0)
        for (const l of lines) { const m = /^([\w!#$%&'*+.^`|~-]+):[ \t]*(.*?)[ \t]*$/.exec(l); if (!m) return end(false); const k = m[1].toLowerCase(); h[k] = k in h ? `${h[k]}, ${m[2]}` : m[2] }
        const te = h['transfer-encoding'], cl = h['content-length'], none = bodiless || code === 204 || code === 304
        if (!code || te !== undefined && !/^chunked$/i.test(te) || cl !== undefined && !/^\d{1,15}$/.test(cl)) return end(false)
        if (code < 200) continue // 100 Continue, 103 Early Hints: not passed on
        if (te) delete h['content-length']
        try { res.writeHead(code, fix(h)) } catch { return end(false) }
        head = false; chunked = !!te && !none; left = none || te ? 0 : cl === undefined ? -1 : +cl
      }
    }
  }
}
const digest = (s: string) => crypto.createHash('sha256').update(s).digest(), sameToken = (given: string | undefined, want: Buffer) => given !== undefined && crypto.timingSafeEqual(digest(given), want)
export interface ProxyOpts { bridge: Bridge; host: string; port: number; token: string; names: string[]; tls?: { cert: Buffer; key: Buffer } }
/** Listen on two ports (shell, then UI); resolve once both listen. Every request is checked before it may reach the bridge. */
export async function startProxy(o: ProxyOpts) {
  const mk = (h: http.RequestListener) => o.tls ? https.createServer(o.tls, h) : http.createServer(h), scheme = o.tls ? 'https' : 'http'
  const listen = (srv: net.Server, port: number) => new Promise<number>((ok, no) => srv.once('error', e => no(new UserError(`cannot listen on ${o.host}:${port}: ${e.message}`)))
    .listen(port, o.host, () => ok((srv.address() as net.AddressInfo).port)))
  // Upstream keep-alive sockets from the bridge, one request at a time each; one that speaks out of turn is closed. Reads land in one
  // buffer per socket (`onread`, no garbage per read: README, Performance); a socket from IPC takes it once rewrapped around its handle.
  const idle = new Set<net.Socket>(), tunnels = new Set<net.Socket>(), readers = new WeakMap<net.Socket, (d: Buffer | null) => void>()
  const upstream = (cb: (s?: net.Socket) => void) => { const [s] = idle; if (s) return idle.delete(s), cb(s)
    o.bridge.open((e, got) => { const buffer = Buffer.alloc(65536), s: net.Socket | undefined = got && new net.Socket({ handle: (got as unknown as { _handle: object })._handle,
      readable: true, writable: true, onread: { buffer, callback: (n: number) => void (readers.get(s!) ?? (() => s!.destroy()))(buffer.subarray(0, n)) } } as net.SocketConstructorOpts)
      cb(s?.on('close', () => { idle.delete(s); readers.get(s)?.(null) }).on('error', () => {})) }) }
  const shell = mk(onShell), ui = mk(onUi), sp = await listen(shell, o.port), up = await listen(ui, o.port && o.port + 1)
  const h = net.isIPv6(o.host) ? `[${o.host}]` : o.host, S = `${scheme}://${h}:${sp}`, U = `${scheme}://${h}:${up}`, cookie = `${o.tls ? '__Host-' : ''}pernosco-${sp}`
  const hostOk = (req: http.IncomingMessage, port: number) => [h, ...o.names].some(n => req.headers.host === `${n}:${port}`)
  const token = digest(o.token), authed = (req: http.IncomingMessage) => sameToken((req.headers.cookie ?? '').split(/;\s*/).find(c => c.startsWith(cookie + '='))?.slice(cookie.length + 1), token)
  const SF = forcedHeaders(`default-src 'none'; frame-src ${U}; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`, ` "${U}/*"`)
  const UF = forcedHeaders([...CSP, `frame-ancestors ${S}`].join('; '))
  const deny = (res: http.ServerResponse, code: number, why: string, F = UF) => { res.writeHead(code, { ...F, 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(why + '\n') }
  /** Why a UI request may not pass, or '' when it may. */
  const refuse = (req: http.IncomingMessage) => !hostOk(req, up) ? '403 bad Host' : !authed(req) ? '401 open the URL that `serve` printed'
    : (req.headers.upgrade || !['GET', 'HEAD'].includes(req.method!)) && req.headers.origin !== U ? '403 bad Origin'
    : req.headers['service-worker'] ? '403 no service workers' : req.headers['transfer-encoding'] ? '411 send request bodies with a content-length' : ''
  function onShell(req: http.IncomingMessage, res: http.ServerResponse) {
    const url = new URL(req.url!, S)
    if (!hostOk(req, sp)) return deny(res, 403, 'bad Host', SF)
    if (url.pathname !== '/' || req.method !== 'GET') return deny(res, 404, 'not found', SF)
    if (url.searchParams.has('token') && sameToken(url.searchParams.get('token')!, token))
      return res.writeHead(302, { ...SF, location: '/', 'set-cookie': `${cookie}=${o.token}; HttpOnly; SameSite=Strict; Path=/${o.tls ? '; Secure' : ''}` }).end()
    if (!authed(req)) return deny(res, 401, 'open the URL that `serve` printed', SF)
    res.writeHead(200, { ...SF, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end('<!doctype html><meta charset="utf-8"><title>Pernosco</title>'
      + `<style>html,body,iframe{margin:0;border:0;width:100%;height:100%;display:block}</style><iframe src="${U}/" sandbox="${CSP.at(-1)!.slice(8)}"></iframe>`)
  }
  function onUi(req: http.IncomingMessage, res: http.ServerResponse) {
    const why = refuse(req)
    if (why) return deny(res, +why.slice(0, 3), why.slice(4))
    if (req.headers['sec-fetch-dest'] === 'document') return res.writeHead(302, { ...UF, location: `${S}/` }).end() // top level: back into the frame
    upstream(s => {
      if (!s) return deny(res, 502, 'the Pernosco server is not answering')
      readers.set(s, relay(s, res, req.method === 'HEAD', h => responseHeaders(h, U, UF), reuse => { readers.delete(s); reuse && req.complete && !s.destroyed ? idle.add(s.resume()) : s.destroy() }))
      s.write(requestHead(req, k => !HOP.includes(k) && k !== 'cookie'))
      if (+req.headers['content-length']! > 0) req.pipe(s, { end: false })
    })
  }
  ui.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => {
    const why = refuse(req)
    if (why) return sock.end(`HTTP/1.1 ${why.slice(0, 3)} Refused\r\nconnection: close\r\n\r\n`)
    o.bridge.open((e, s) => {
      if (e || !s) return sock.destroy()
      s.write(requestHead(req, k => k !== 'cookie')); s.write(head)
      s.pipe(sock).pipe(s); tunnels.add(s)
      for (const [a, b] of [[s, sock], [sock, s]]) a.on('error', () => b.destroy()).on('close', () => { b.destroy(); tunnels.delete(s) })
    })
  })
  return { url: `${S}/?token=${o.token}`, shell: S, ui: U, close: () => { for (const s of [shell, ui]) s.close().closeAllConnections(); for (const t of [...tunnels, ...idle]) t.destroy() } }
}
const sleep = (ms: number) => new Promise(ok => setTimeout(ok, ms))
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/
/** --sources DIR or FROM=TO: FROM is where the trace expects sources, TO where they are on this host. */
function source(spec: string): [string, string] {
  const [from, to = from] = spec.split(/=(.*)/s)
  if (!path.isAbsolute(from) || path.normalize(from) !== from || /[,"=:\x00-\x1f\x7f]/.test(from)) fail(`--sources: ${JSON.stringify(from)} must be a plain absolute path`)
  return [from.replace(/\/$/, ''), checkDir(to, '--sources')]
}
async function serve(r: Run): Promise<number> {
  const trace = traceArg(r), storage = r.o.storage === undefined ? undefined : checkDir(r.o.storage, '--storage')
  const sources = [r.o.sources ?? []].flat().map(source), m = /^(?:(.+):)?(\d+)$/.exec(r.o.tunnel ?? '127.0.0.1:0')
  const host = m?.[1]?.replace(/^\[(.*)\]$/, '$1') ?? '127.0.0.1', port = checkInt(m?.[2], '--tunnel port', r.o.tunnel ? 1 : 0, 65534)!
  if (!m || !net.isIP(host)) fail(`--tunnel must be [ADDRESS:]PORT with a numeric address, not ${JSON.stringify(r.o.tunnel)}`)
  const cfg = r.cfg.serve, ssh = `ssh -L ${port || 8080}:127.0.0.1:${port || 8080} -L ${port + 1 || 8081}:127.0.0.1:${port + 1 || 8081} THIS-HOST, then serve --tunnel ${port || 8080}`
  if (!LOOPBACK.test(host) && !cfg.tls && !cfg.allowInsecureRemote) fail(`--tunnel ${host} is not loopback: set serve.tls (cert, key) in the config, or forward loopback ports instead: ${ssh}`)
  if (!LOOPBACK.test(host) && !cfg.tls) r.sys.err(chalk.yellow(`pernosco: WARNING: serving without TLS on ${host}: anyone on the path can read the UI and steal its cookie. Safer: ${ssh}`))
  let tls: ProxyOpts['tls']
  try { tls = cfg.tls && { cert: fs.readFileSync(cfg.tls.cert), key: fs.readFileSync(cfg.tls.key) } } catch (e) { fail(`serve.tls: ${(e as Error).message}`) }
  return (await runContainer(r, 'server', r.cfg.images.server, c => serverArgv(c, trace, storage, sources), { during: async (name, c) => {
    let pid = r.dry ? (await exec(r, pidArgv(r.rt, name), true), 'PID') : ''
    for (let i = 0; i < 1000 && !/^[1-9]\d*$/.test(pid) && !r.ended; i++) pid = (await exec(r, pidArgv(r.rt, name), true)).out.trim() || (await sleep(20), '')
    const argv = bridgeArgv(r.rt, c.rootless, pid, process.execPath)
    show(r, argv)
    if (r.dry || r.ended) return () => {}
    if (!/^[1-9]\d*$/.test(pid)) fail('the server container did not start')
    const bridge = r.sys.bridge(argv)
    await bridge.ready.catch(e => { bridge.close(); throw e })
    const proxy = await startProxy({ bridge, host, port, token: crypto.randomBytes(32).toString('hex'), names: cfg.hosts, tls }).catch(e => { bridge.close(); throw e })
    for (let i = 0; i < 3000 && !r.ended && !await new Promise(ok => bridge.open((e, s) => { s?.destroy(); ok(!e) })); i++) await sleep(10)
    if (!r.ended) r.sys.out(`Pernosco is ready: open ${proxy.url}` + (LOOPBACK.test(host) ? '' : `\n(or, safer, from your machine: ${ssh})`))
    return () => { proxy.close(); bridge.close() }
  } })).code
}

// ---- Images and diagnostics ----
const IMAGES = (r: Run) => [['db_builder', r.cfg.images.builder], ['app_server', r.cfg.images.server]] as const
const outDir = (r: Run) => checkDir(String(r.o._[0] ?? r.sys.cwd), 'directory')
async function each(r: Run, f: (name: string, ref: string) => Promise<unknown>) { for (const [n, ref] of IMAGES(r)) await f(n, ref); return 0 }
/** Tar files are named after the image ID, so a load can check that it got what was saved. */
const tarName = (name: string, id = 'unknown') => `${name}.${id.replace(/^sha256:/, '').slice(0, 12)}.tar`
const save = (r: Run) => each(r, async (name, ref) => {
  const f = path.join(outDir(r), tarName(name, (await resolveImage(r, ref)).Id))
  if (!fs.existsSync(f) && (await exec(r, [r.rt, 'save', '-o', f, ref])).code) fail(`saving ${ref} to ${f} failed`)
})
const load = (r: Run) => each(r, async (name, ref) => {
  const dir = outDir(r), tars = fs.readdirSync(dir).filter(f => f.startsWith(name + '.') && f.endsWith('.tar'))
  if (tars.length !== 1) fail(`load: expected one ${name}.*.tar in ${dir}, found ${tars.length ? tars.join(', ') : 'none'}`)
  if ((await exec(r, [r.rt, 'load', '-i', path.join(dir, tars[0])])).code) fail(`loading ${tars[0]} failed`)
  const id = (await resolveImage({ ...r, o: { ...r.o, pull: false } }, ref)).Id
  if (!r.dry && tarName(name, id) !== tars[0]) fail(`${tars[0]} loaded, but ${ref} is ${id}: not the image that was saved`)
})
/** Each image's CycloneDX SBOM, read by `cat` in a container with the same confinement and no mounts. */
export const bomArgv = (c: Ctx, image: string) => [c.rt, 'create', ...confinement(c), '--entrypoint', 'cat', image, '/sbom.json']
const bom = (r: Run) => each(r, async (name, ref) => {
  const dir = outDir(r), { code, out } = await runContainer(r, 'bom', ref, c => bomArgv(c, ref), { capture: true })
  let sbom: { bomFormat?: string } = {}
  try { sbom = JSON.parse(out) } catch { /* below */ }
  if (!r.dry && (code || sbom.bomFormat !== 'CycloneDX')) fail(`${ref} has no CycloneDX /sbom.json (cat exited ${code})`)
  if (!r.dry) fs.writeFileSync(path.join(dir, `${name}.json`), out)
})
/** The builder image's rr, with build's confinement, for diagnostics; the trace is at /trace. */
export const rrArgv = (c: Ctx, trace: string, args: string[], rrLog?: string) =>
  [c.rt, 'create', ...confinement(c), ...bindMount(c.rt, trace, '/trace'), ...envFlags({ RR_LOG: rrLog }), '--entrypoint', '/usr/local/bin/rr', c.cfg.images.builder, ...args]
async function rr(r: Run) {
  const trace = traceArg(r), { code } = await runContainer(r, 'rr', r.cfg.images.builder, c => rrArgv(c, trace, r.o['--'] ?? [], r.o['builder-rr-log']))
  if (!r.dry) sanitize(r, trace)
  return code
}
/** One table of what this host has and needs; non-zero exit when something required is missing. */
async function check(r: Run): Promise<number> {
  const read = (f: string) => { try { return fs.readFileSync(path.join(r.sys.proc, f), 'utf8').trim() } catch { return '' } }
  const ver = async (argv: string[]) => onPath(r.sys.env, argv[0]) ? (await r.sys.run(argv, true)).out.trim().split('\n')[0] : ''
  const rows: [string, boolean, string, string][] = [ // what, required, found (empty: missing), fix
    [`${r.rt}`, true, await ver([r.rt, '--version']), `install ${r.rt}, or choose the other with --runtime`],
    ['mode', false, r.sys.uid ? `rootless (uid ${r.sys.uid})` : 'rootful (root)', ''],
    ['cgroups', false, /^0::[^\n]*$/.test(read('self/cgroup')) ? 'v2' : '', 'v1 or hybrid: rootless podman ignores memory/pids limits; boot with cgroup v2'],
    ['user namespaces', true, +read('sys/user/max_user_namespaces') > 0 ? read('sys/user/max_user_namespaces') : '', 'sudo sysctl user.max_user_namespaces=15000'],
    ['perf_event_paranoid (record)', false, +read('sys/kernel/perf_event_paranoid') <= 1 ? read('sys/kernel/perf_event_paranoid') : '', 'sudo sysctl kernel.perf_event_paranoid=1'],
    ['rr (record, build)', false, await ver(['rr', '--version']), 'install rr from https://rr-project.org'],
    ['nsenter (serve)', true, onPath(r.sys.env, 'nsenter') ? 'yes' : '', 'install util-linux'],
  ]
  for (const [name, ref] of IMAGES(r)) rows.push([`${name} image`, true, await resolveImage({ ...r, o: { ...r.o, pull: false } }, ref)
    .then(i => i.Id ? `${ref} (${i.Id.replace(/^sha256:/, '').slice(0, 12)})` : '', e => { if (e instanceof UserError) return ''; throw e }), '`pull` or `load` it'])
  for (const [what, req, found, fix] of rows) r.sys.out(`${(found ? chalk.green : req ? chalk.red : chalk.yellow)((found ? 'ok' : req ? 'MISSING' : 'missing').padEnd(8))} ${what.padEnd(28)} ${found || fix}`)
  return rows.some(([, req, found]) => req && !found) ? 1 : 0
}

// ---- CLI ----
interface Command { usage: string; string?: string[]; boolean?: string[]; run(r: Run): Promise<number> }
const BUILD_OPTS = { string: ['shards', 'compression-level', 'builder-rr-log'], boolean: ['check-trace', 'skip-gdb-add-index'] }
const BUILD_USAGE = '[--shards N] [--compression-level 1..22] [--check-trace] [--skip-gdb-add-index] [--builder-rr-log SPEC]'
export const COMMANDS: Record<string, Command> = {
  record: { usage: 'record [--output DIR] [--container IMAGE] -- CMD ARGS...   rr record, on the host or in your image', string: ['output', 'container'], run: record },
  build: { usage: `build [TRACE] [--skip-rr] ${BUILD_USAGE}   package-build, then only-build`, string: BUILD_OPTS.string, boolean: ['skip-rr', ...BUILD_OPTS.boolean],
    run: async r => { const t = traceArg(r); return (await packageBuild(r, t)) || onlyBuild(r, t) } },
  'package-build': { usage: 'package-build [TRACE] [--skip-rr]   rr pack, add libthread_db.so and sources.fallback', boolean: ['skip-rr'], run: r => packageBuild(r, traceArg(r)) },
  serve: { usage: 'serve [TRACE] [--storage DIR] [--sources DIR | --sources FROM=TO]... [--tunnel [ADDR:]PORT]   the app server, behind our proxy', string: ['storage', 'sources', 'tunnel'], run: serve },
  pull: { usage: 'pull   pull both images (registry login stays with the runtime)', run: r => each(r, async (_, ref) => (await exec(r, [r.rt, 'pull', ref])).code
    && fail(`pulling ${ref} failed: log in with \`${r.rt} login REGISTRY\`, or \`load\` a saved copy`)).then(() => each(r, (_, ref) => resolveImage(r, ref))) },
  save: { usage: 'save [DIR]   write both images to DIR/NAME.ID.tar for an air-gapped machine', run: save },
  load: { usage: 'load [DIR]   load them there and check each is the image saved', run: load },
  bom: { usage: 'bom [DIR]   write db_builder.json and app_server.json, the images\' SBOMs', run: bom },
  rr: { usage: 'rr [TRACE] [--builder-rr-log SPEC] -- ARGS   the builder image\'s rr on the trace, confined', string: ['builder-rr-log'], run: rr },
  check: { usage: 'check   what this host has and needs, with fixes', run: check },
  'only-build': { usage: `only-build [TRACE] ${BUILD_USAGE}   run the db builder container`, ...BUILD_OPTS, run: r => onlyBuild(r, traceArg(r)) },
}
const GLOBAL = { string: ['runtime', 'config'], boolean: ['dry-run', 'x', 'help', 'version', 'pull'] }
const GLOBAL_USAGE = 'Global options: --runtime podman|docker  --config FILE  --no-pull  --dry-run (print commands, run nothing)  -x (echo)  --help  --version'
function usage(cmd?: string): string {
  const cmds = cmd ? [COMMANDS[cmd]] : Object.values(COMMANDS)
  return ['Usage: npx zx pernosco.mts COMMAND [options]', ...cmds.map(c => '  ' + c.usage.replace(/ {3}/, '\n      ')), GLOBAL_USAGE].join('\n')
}
/** The command is the first word that is not a global option's value. */
const commandName = (args: string[]) => args.find((a, i) => !a.startsWith('-') && !['--runtime', '--config'].includes(args[i - 1])) ?? ''
function parse(args: string[]): minimist.ParsedArgs {
  const cmd = COMMANDS[commandName(args)]
  const o = minimist(args, { string: [...GLOBAL.string, ...cmd?.string ?? []], boolean: [...GLOBAL.boolean, ...cmd?.boolean ?? []], '--': true, default: { pull: true },
    unknown: a => a.startsWith('-') ? fail(`unknown option ${a}; see --help`) : true })
  if (!cmd && !o.help && !o.version) fail(o._.length ? `unknown command ${JSON.stringify(o._[0])}; see --help` : usage())
  o._.splice(o._.indexOf(commandName(args)), 1)
  return o
}
function loadConfig(sys: Sys, file: string | undefined): Config {
  const f = file ?? path.join(sys.cwd, 'pernosco.json')
  if (file === undefined && !fs.existsSync(f)) return parseConfig('{}', '(defaults)')
  let text = ''
  try { text = fs.readFileSync(f, 'utf8') } catch { fail(`config ${f}: cannot read it`) }
  return parseConfig(text, f)
}
/** Parse, configure, dispatch; every UserError ends here as one line and exit 2. */
export async function main(args: string[], sys: Sys = realSys()): Promise<number> {
  if ('NO_COLOR' in sys.env) chalk.level = 0
  try {
    const o = parse(args), name = commandName(args)
    if (o.version) { sys.out(VERSION); return 0 }
    if (o.help) { sys.out(usage(COMMANDS[name] && name)); return 0 }
    const cfg = loadConfig(sys, o.config), rt = (o.runtime ?? cfg.runtime ?? (onPath(sys.env, 'podman') ? 'podman' : 'docker')) as Runtime
    if (rt !== 'podman' && rt !== 'docker') fail(`--runtime must be podman or docker, not ${JSON.stringify(rt)}`)
    return await COMMANDS[name].run({ sys, cfg, rt, dry: o['dry-run'], echo: o.x, o, interrupted: false })
  } catch (e) {
    if (!(e instanceof UserError)) throw e
    sys.err(chalk.red('pernosco: ') + e.message)
    return 2
  }
}
if (process.argv.slice(1, 3).some(a => path.resolve(a) === SELF)) {
  const args = process.argv.slice(process.argv.findIndex(a => path.resolve(a) === SELF) + 1)
  process.exitCode = await main(args)
  setTimeout(() => process.exit(), 2000).unref() // a stuck socket or child never keeps us alive
}
