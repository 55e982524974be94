#!/usr/bin/env node
// pernosco.mts: run Pernosco's two closed-source containers (the db builder and the app server) on
// your own machine, confined so that even a malicious container can neither leak nor damage your data.
// Run it as `node pernosco.mts --help` (Node >= 22.18, or Deno), or `npx zx pernosco.mts --help`.
//
// TRUST BOUNDARY. Trusted: this file, node and its packages minimist, chalk and ajv (zx only launches
// it), the container runtime (podman or docker) and the kernel. NOT trusted: the images, everything
// they write into the trace directory, and every byte the app server sends.
// Guarantees, given that trust (each is tested, see test/):
//  - the builder sees only the trace dir (read-write; never one with a hard link to a file outside); the
//    server sees the trace and the sources read-only and its storage dir read-write; nothing else of the
//    host, nor what the runtime's own configuration would add (VERIFY, mounts.conf, /etc/hosts);
//  - neither container has any network (`--network none`): no DNS, no gateway, no host port, no vsock;
//  - no capabilities, no-new-privileges, a seccomp denylist, read-only root, pids/memory/cpu limits,
//    your own uid and never the host's root, no setuid or setgid file, a minimal environment;
//  - host-side writes into the trace never follow a symlink the builder may have planted, nor resolve one;
//    as root, what touches a directory a container wrote, or reads what a trace names, runs as its user;
//  - the browser reaches the server only through our proxy on loopback (IPv4 and IPv6), which forces a
//    same-origin CSP and no-store on every response, node's own included, under a name of its own per serve;
//  - what the containers print reaches the terminal as tagged data, never as control sequences.
// Residual risks (SECURITY.md): kernel bugs reachable through the syscalls a debugger needs (ptrace,
// unshare, mount in a user namespace, userfaultfd, perf_event_open); AppArmor is off for these
// containers; CPU and memory side channels; what you choose to mount.
// Like bubblewrap's, the protection is entirely determined by the arguments built here: POLICY lists
// every flag with its reason, the builders assemble argv arrays from it, VERIFY checks the created
// container against them, and only the executors spawn processes, never through a shell.
// Sections, in reading order: POLICY, SECCOMP, validators, builders, executors, VERIFY, trace
// hygiene, proxy, commands, CLI.

import { spawn, spawnSync, type StdioOptions } from 'node:child_process'
import fs from 'node:fs'
import type * as http from 'node:http'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { pipeline, type Duplex, type Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import minimist from 'minimist'
import chalk from 'chalk'
import { Ajv } from 'ajv'

const SELF = fileURLToPath(import.meta.url)
// By require: on Node 24 an ESM import of node:http also loads undici, http2 and tls, ~50 ms of start-up.
const HTTP = createRequire(import.meta.url)('node:http') as typeof http
export const VERSION = '0.2.0'
export type Runtime = 'podman' | 'docker'
export interface Config {
  runtime?: Runtime; user?: string; images: { builder: string; server: string }; cgroupParent?: string
  capAdd: string[]
  limits: { memory: string; cpus?: number; pids: number; tmp: string }
}
/** What one container run is built from. Facts about the host are passed in, never read. */
export interface Ctx {
  rt: Runtime; cfg: Config; rootless: boolean; uid: number; gid: number; name: string; seccomp: string
}

// ---- POLICY: the flags every container gets, in order, a reason above each. "WEAKENS": a relaxation. ----
export function POLICY(c: Ctx): string[] {
  const l = c.cfg.limits
  const podman = c.rt === 'podman'
  return [
    // A fresh name per run: cleanup after Ctrl-C removes exactly this container.
    '--name', c.name,
    // Removed when it exits. We also `rm -f` it on our exit, a signal or an internal error (kill -9 aside).
    '--rm',
    // No network at all: only loopback; no DNS resolver, gateway or host service.
    '--network', 'none',
    // No capabilities. config.capAdd (default empty) adds back what it names: WEAKENS.
    '--cap-drop', 'ALL', ...c.cfg.capAdd.flatMap(k => ['--cap-add', k]),
    // Never gain privileges through exec (setuid bits, file capabilities).
    '--security-opt', 'no-new-privileges',
    // Our SECCOMP below: the default blocks what a debugger needs; the reference used unconfined.
    '--security-opt', `seccomp=${c.seccomp}`,
    // WEAKENS: the default AppArmor profile denies mount(2), which the nested sandbox needs.
    '--security-opt', 'apparmor=unconfined',
    // The image is immutable while it runs; all writes go to the mounts and the tmpfs.
    '--read-only',
    // A private, size-capped /tmp; exec: the builder runs tools from it. podman 4 drops mode= on a tmpfs,
    // so U makes this tmpfs (never a host path) the container user's.
    '--tmpfs', `/tmp:rw,exec,nosuid,nodev,mode=1777,size=${l.tmp}${podman ? ',U' : ''}`,
    // An init as PID 1 reaps zombies and forwards signals, so a stop is prompt.
    '--init',
    // A fixed hostname: the host's name is not disclosed.
    '--hostname', 'pernosco',
    // A private IPC namespace: no shared memory with the host or other containers.
    '--ipc', 'private',
    // Limits: memory (no extra swap), CPUs if configured, processes (a fork storm stops here).
    '--memory', l.memory, '--memory-swap', l.memory, ...(l.cpus ? ['--cpus', String(l.cpus)] : []),
    '--pids-limit', String(l.pids),
    // An optional cgroup parent from config, for site-wide accounting.
    ...(c.cfg.cgroupParent ? ['--cgroup-parent', c.cfg.cgroupParent] : []),
    // Run as you (as root: runAs, never uid 0): output is yours without the reference's `chmod -R ugo+rwX`.
    ...(podman && c.rootless ? ['--userns=keep-id'] : ['--user', `${c.uid}:${c.gid}`]),
    // podman copies host proxy variables into containers unless told not to, and the host's /etc/hosts
    // entries (docker writes its own, never the host's).
    ...(podman ? ['--http-proxy=false', '--no-hosts'] : []),
    // Never pull: images come only from your own pull or load, checked before a run.
    '--pull', 'never',
    // The environment is only what is listed: HOME points at the private /tmp.
    '--env', 'HOME=/tmp',
  ]
}
// SECCOMP: allow by default (a debugger replays arbitrary programs' syscalls), deny the kernel-surface
// and escape calls no debugger needs. ptrace, mount, unshare, userfaultfd and perf_event_open stay
// allowed on purpose. Architectures not listed (e.g. x32) are killed. It replaces the runtime's default
// profile, so the socket families Docker's denies, ours denies too: socketcall (32-bit x86) takes its
// arguments in memory, out of seccomp's sight, so it could reach any socket family past the rules below.
export const SECCOMP_DENIED = Object.freeze(['acct', 'add_key', 'adjtimex', 'bpf', 'clock_adjtime',
  'clock_settime', 'create_module', 'delete_module', 'fanotify_init', 'finit_module', 'get_kernel_syms',
  'init_module', 'io_uring_enter', 'io_uring_register', 'io_uring_setup', 'ioperm', 'iopl', 'kexec_file_load',
  'kexec_load', 'keyctl', 'lookup_dcookie', 'name_to_handle_at', 'nfsservctl', 'open_by_handle_at',
  'query_module', 'quotactl', 'quotactl_fd', 'reboot', 'request_key', 'settimeofday', 'stime', 'swapoff',
  'swapon', '_sysctl', 'sysfs', 'syslog', 'uselib', 'ustat', 'vm86', 'vm86old', 'socketcall'])
// No ACL or other extended attribute is set or removed (EOPNOTSUPP, as on a file system without them, so
// copies carry on): ACLs would outlast the clean-up's mode bits and open the trace to other users.
const XATTR = ['setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat', 'removexattr', 'lremovexattr',
  'fremovexattr', 'removexattrat']
// socket(2) for AF_ALG (38: the kernel's crypto API, CVE-2026-31431 writes the page cache through it, so a
// read-only mount is not) and AF_VSOCK (40: not network-namespaced, it reaches the hypervisor past
// --network none), as moby #44562 and #52494 do, here as denials of each value (EPERM, like the rest: told
// apart from a kernel without the family). The kernel reads the family as an int: the mask compares its low
// 32 bits, so upper bits set in the register change nothing.
const family = (af: number) => ({ names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 1,
  args: [{ index: 0, value: 0xffffffff, valueTwo: af, op: 'SCMP_CMP_MASKED_EQ' }] })
// No setuid or setgid file, ever, not even while the container runs: the trace and the storage are host
// paths other local users may reach. Each call that sets a mode fails (EPERM) when the mode has S_ISUID
// (04000) or S_ISGID (02000): [call, index of its mode argument]. openat2 takes its mode in memory, out of
// seccomp's sight, so it fails with ENOSYS, and callers fall back to openat.
const MODE_ARG: [string, number][] = [['chmod', 1], ['fchmod', 1], ['fchmodat', 2], ['fchmodat2', 2],
  ['creat', 1], ['open', 2], ['openat', 3], ['mknod', 1], ['mknodat', 2]]
const setid = (bit: number) => MODE_ARG.map(([name, index]) => ({ names: [name], action: 'SCMP_ACT_ERRNO',
  errnoRet: 1, args: [{ index, value: bit, valueTwo: bit, op: 'SCMP_CMP_MASKED_EQ' }] }))
export const SECCOMP = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_AARCH64'],
  syscalls: [{ names: SECCOMP_DENIED, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }, family(38), family(40),
    { names: XATTR, action: 'SCMP_ACT_ERRNO', errnoRet: 95 },
    { names: ['openat2'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }, ...setid(0o4000), ...setid(0o2000)],
}, null, 1)

// ---- Validators: each throws UserError (exit 2) with a message that says what to do. ----
export class UserError extends Error {}
function fail(msg: string): never {
  throw new UserError(msg)
}
/** f's value, or where it throws `or`'s for the error (default undefined: a missing file, text not JSON). */
function attempt<T>(f: () => T, or = (_: Error): T | undefined => undefined): T | undefined {
  try {
    return f()
  } catch (e) {
    return or(e as Error)
  }
}
/** `--mount` is CSV: a comma, quote, = or : in a path could add mount options; so could a control char. */
const MOUNT_UNSAFE = /[,"=:\x00-\x1f\x7f]/
/** An existing directory, resolved with realpath, with no character that could alter mount options. */
export function checkDir(p: string, what: string): string {
  const tilde = p.startsWith('~') ? ' (only an unquoted ~ is your home: the shell expands it)' : ''
  if (!path.isAbsolute(p)) fail(`${what}: ${JSON.stringify(p)} is relative${tilde}; give an absolute path`)
  const real = attempt(() => fs.realpathSync.native(p)) ?? fail(`${what}: ${p} does not exist`)
  if (!fs.statSync(real).isDirectory()) fail(`${what}: ${real} is not a directory`)
  if (MOUNT_UNSAFE.test(real)) fail(`${what}: ${JSON.stringify(real)} contains , " = : or a control `
    + 'character, which could alter mount options; rename or move it')
  return real
}
export function checkInt(v: string | undefined, what: string, lo: number, hi: number): number | undefined {
  const ok = v === undefined || (/^\d+$/.test(v) && +v >= lo && +v <= hi)
  if (!ok) fail(`${what} must be an integer from ${lo} to ${hi}, not ${JSON.stringify(v)}`)
  return v === undefined ? undefined : +v
}
const SCHEMA = JSON.parse(fs.readFileSync(path.join(path.dirname(SELF), 'schema.json'), 'utf8'))
// validateSchema off: checking schema.json against the JSON Schema meta-schema (test/argv.test.mts does it)
// compiled the meta-schema on every start, ~40 ms. Strict mode still rejects unknown keywords here.
// verbose: an error carries its schema, whose description says what is allowed.
const validate = new Ajv({ useDefaults: true, validateSchema: false, verbose: true }).compile(SCHEMA)
/** Parse and validate a config file's text; defaults come from schema.json. An error names the field and
 * what it allows: the schema's description and values, or for an unknown key the known one it resembles. */
export function parseConfig(text: string, file: string): Config {
  const cfg: unknown = attempt(() => JSON.parse(text), e => fail(`config ${file}: not JSON: ${e.message}`))
  if (validate(cfg)) return cfg as Config
  const e = validate.errors![0]
  const { additionalProperty: extra, allowedValues } = e.params as { additionalProperty?: string
    allowedValues?: string[] }
  const known = Object.keys(e.parentSchema?.properties ?? {})
  const near = known.find(k => k.slice(0, 3).toLowerCase() === extra?.slice(0, 3).toLowerCase())
  const maybe = near ? `; did you mean ${JSON.stringify(near)}?` : `; known: ${known.join(', ')}`
  const why = extra ? `: ${JSON.stringify(extra)}${maybe}` : ` (${e.parentSchema?.description})`
  // A pattern in the message says less than the description's example does.
  const what = e.keyword === 'pattern' ? `${JSON.stringify(e.data)} is not allowed` : e.message
  const values = allowedValues ? `: ${allowedValues.join(' or ')}` : ''
  return fail(`config ${file}: ${e.instancePath || '/'} ${what}${values}${why}`)
}

// ---- Builders: pure functions from (ctx, options) to argv arrays. ----
/** A bind mount without submounts (so read-only is recursively read-only); podman also nosuid,nodev. */
export function bindMount(rt: Runtime, src: string, dst: string, ro = false): string[] {
  const opts = rt === 'podman' ? 'bind-nonrecursive,nosuid,nodev' : 'bind-nonrecursive=true'
  return ['--mount', `type=bind,src=${src},dst=${dst},${opts}${ro ? ',readonly' : ''}`]
}
export const envFlags = (env: Record<string, string | undefined>) =>
  Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : ['--env', `${k}=${v}`]))
/** The db builder: the trace dir is its only mount. `args`, given after `--`, are its own (it checks them),
 * `on-prem /trace` when none. `env`: its variables. No `--empty-umask`: files keep your umask. */
export function builderArgv(c: Ctx, trace: string, args: string[], env: Record<string, string | undefined>) {
  const given = bindMount(c.rt, `${trace}/${GIVEN}`, `/trace/${GIVEN}`, true) // see GIVEN
  return [c.rt, 'create', ...POLICY(c), ...bindMount(c.rt, trace, '/trace'), ...given,
    ...envFlags({ RUST_BACKTRACE: 'full', ...env }), '--entrypoint', 'db_builder', c.cfg.images.builder,
    ...(args.length ? args : ['on-prem', '/trace'])]
}
/** rr record in your own image: the same confinement plus SYS_PTRACE; the trace dir is its only mount. */
export function recordContainerArgv(c: Ctx, out: string, image: string, cmd: string[]): string[] {
  const traced = { ...c, cfg: { ...c.cfg, capAdd: ['SYS_PTRACE'] } }
  return [c.rt, 'create', ...POLICY(traced), ...bindMount(c.rt, out, '/trace'),
    ...envFlags({ _RR_TRACE_DIR: '/trace' }), image, 'rr', 'record', ...cmd]
}
/** rr record on the host; `env` sets rr's own trace-dir variable only when --output is given. */
export const recordArgv = (out: string | undefined, cmd: string[]) =>
  [...(out ? ['env', `_RR_TRACE_DIR=${out}`] : []), 'rr', 'record', ...cmd]
/** The app server: trace and sources read-only, storage read-write, still no network: see serve(). */
export function serverArgv(c: Ctx, trace: string, storage: string | undefined, sources: [string, string][],
  copied = false, log = 'error') {
  const mounts = [...bindMount(c.rt, trace, '/pernosco/database', true),
    ...(storage ? bindMount(c.rt, storage, '/pernosco/storage') : []),
    ...sources.flatMap(([from, to]) => bindMount(c.rt, to, `/sources${from}`, true))]
  const env = envFlags({ RUST_BACKTRACE: 'full', RUST_LOG: log, PERNOSCO_ENABLE_VARIABLES_ANNOTATIONS: '0' })
  // --host 0.0.0.0 is every address of its own network namespace, which has only loopback (--network none);
  // --empty-umask: as the reference wrapper passes it (the builder omits it: its files keep your umask).
  // Sources: those --sources mounts, else those package-build --copy-sources put in the (read-only) trace.
  const served = sources.length ? '/sources' : copied && '/pernosco/database/sources'
  const args = ['--empty-umask', '--standalone', '--host', '0.0.0.0',
    ...(storage ? ['--app-storage', '/pernosco/storage'] : []),
    ...(served ? ['--serve-sources', served] : [])]
  return [c.rt, 'create', ...POLICY(c), ...mounts, ...env, c.cfg.images.server, ...args]
}
/** The bridge: plain node (no loader, so it starts fast) in the server's network namespace only, a
 * forwarder. It listens on a unix socket by path in our private 0700 directory (never an abstract name:
 * those belong to the network namespace, where the server could connect to it) and pipes each connection
 * to port 3000; it never reads the data. It exits when our IPC channel closes: it never outlives us, and
 * at once unless it is in the namespace serverPid checked (argv[-2]): a PID reused since leads elsewhere. */
export const BRIDGE = `const net = require('net')
process.on('disconnect', () => process.exit(0))
if (require('fs').readlinkSync('/proc/self/ns/net') !== process.argv.at(-2)) process.exit(3)
net.createServer(c => {
  const s = net.connect(3000, '127.0.0.1').setNoDelay()
  for (const [a, b] of [[c, s], [s, c]]) a.on('error', () => b.destroy()).on('close', () => b.destroy())
  c.pipe(s).pipe(c)
}).listen(process.argv.at(-1), () => process.send('ready'))`
/** The watchdog: plain node, a child of ours reading a pipe from us (argv: the private directory, then the
 * rm command), in a process group of its own (what a terminal or `kill -PGID` sends ours never reaches it).
 * If the pipe closes with nothing said (we died: SIGKILL, any signal no handler catches, a crash), it
 * removes the container and the directory. */
export const WATCHDOG = `process.stdin.on('data', () => process.exit(0)).on('end', () => {
  const [dir, rm, ...args] = process.argv.slice(1)
  require('child_process').spawnSync(rm, args, { stdio: 'ignore', timeout: 60000 })
  require('fs').rmSync(dir, { recursive: true, force: true })
})`
/** Rootless podman enters the namespace through podman's user namespace. */
export const bridgeArgv = (rt: Runtime, rootless: boolean, [pid, ns]: string[], node: string, sock: string) =>
  [...(rt === 'podman' && rootless ? ['podman', 'unshare'] : []), 'nsenter', '--target', pid, '--net',
    node, '-e', BRIDGE, ns, sock]
export const pidArgv = (rt: Runtime, name: string) => [rt, 'inspect', '--format', '{{.State.Pid}}', name]
/** podman mounts what mounts.conf lists (/usr/share and /etc/containers; rootless: ~/.config/containers too;
 * RHEL ships entitlement keys so) when a container starts, unseen by inspect: none, from an empty list. */
export const startArgv = (rt: Runtime, name: string) =>
  [rt, 'start', ...(rt === 'podman' ? ['--default-mounts-file', '/dev/null'] : []), '--attach', name]
export const rmArgv = (rt: Runtime, name: string) =>
  [rt, 'rm', '--force', ...(rt === 'podman' ? ['--time', '0'] : []), name]

// ---- Executors: the only code that spawns; argv arrays, never a shell. ----
export interface Result { code: number; out: string; err?: string }
/** What a command reads (`input`), and the --log file a container's tagged lines go to. */
export interface Io { input?: string; log?: number }
/** The forwarder into the server's network namespace: `ready` once it listens, `died` when it exits. */
export interface Bridge { ready: Promise<void>; died: Promise<void>; close(): void }
export interface Sys {
  env: NodeJS.ProcessEnv; uid: number; gid: number; cwd: string; proc: string
  run(argv: readonly string[], capture?: boolean, tag?: string, io?: Io): Promise<Result>
  out(line: string): void; err(line: string, tone?: 'red' | 'yellow'): void
  onSignal(f: () => void): () => void
  bridge(argv: readonly string[]): Bridge
  watch(dir: string, rm: readonly string[]): () => void // the watchdog; call it when all is removed
}
/** C0 and C1 control characters but tab and newline: escape sequences (OSC 52 writes the clipboard, OSC 8
 * plants links), carriage returns and cursor moves that rewrite earlier lines. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g
/** Output of a container or of find is data, not terminal control: each line goes to `line` with controls
 * dropped. Lines are cut at 64 KiB: no newline means no memory held. */
function asLines(from: Readable, line: (l: string) => void) {
  let rest = ''
  const put = (l: string) => line(l.replace(CONTROL, ''))
  from.setEncoding('utf8')
  from.on('data', (d: string) => {
    const lines = (rest + d).split('\n')
    rest = lines.pop()!
    lines.forEach(put)
    if (rest.length <= 65536) return
    put(rest)
    rest = ''
  })
  from.on('end', () => rest && put(rest))
}
/** Captured commands (create, inspect, rm) never touch our terminal: stderr comes back, shown on failure.
 * A container's own output (tagged) goes through asLines; only host commands (rr) get the terminal. */
function runArgv(argv: readonly string[], capture = false, tag?: string, io: Io = {}): Promise<Result> {
  const piped = capture || tag !== undefined
  const stdin = io.input === undefined ? 'ignore' : 'pipe'
  const p = spawn(argv[0], argv.slice(1), { stdio: piped ? [stdin, 'pipe', 'pipe'] : 'inherit' })
  p.stdin?.on('error', () => {}).end(io.input) // a command that exits unread is its exit code's business
  const out: string[] = []
  const err: string[] = []
  // Each line prefixed with its tag, so that nothing a container prints passes for ours. With --log, it
  // goes to the log file instead, and to the terminal too if it starts with ^ERROR: (the reference's mark).
  const put = (to: NodeJS.WriteStream) => (l: string) => {
    if (io.log !== undefined) fs.writeSync(io.log, `${tag} ${l}\n`)
    if (io.log === undefined || l.startsWith('^ERROR:')) to.write(`${chalk.dim(tag)} ${l}\n`)
  }
  if (tag !== undefined) {
    asLines(p.stdout!, put(process.stdout))
    asLines(p.stderr!, put(process.stderr))
  } else {
    p.stdout?.on('data', d => out.push(d))
    p.stderr?.on('data', d => err.push(d))
  }
  return new Promise(res => {
    p.on('error', e => res({ code: 127, out: '', err: e.message }))
    p.on('close', (code, sig) => res({ code: code ?? 128 + os.constants.signals[sig!], out: out.join(''),
      err: err.join('') }))
  })
}
/** The bridge child; its IPC channel only says `ready`, and its closing ends the child. */
function startBridge(argv: readonly string[]): Bridge {
  const env = { ...process.env, NODE_OPTIONS: '' } // BRIDGE is plain JS: no loader
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env })
  const died = new Promise<void>(ok => child.once('exit', () => ok()))
  child.on('error', () => child.kill()) // a spawn or IPC error must not crash serve: `died` ends it
  const ready = new Promise<void>((ok, no) => {
    child.once('message', () => ok())
    void died.then(() => no(new UserError("the bridge could not enter the server's network namespace: "
      + 'run as root (docker, rootful podman), or use rootless podman; no container network is a fallback')))
  })
  const close = () => {
    if (child.connected) child.disconnect()
    setTimeout(() => child.kill(), 1000).unref()
  }
  return { ready, died, close }
}
export const realSys = (): Sys => ({
  env: process.env, uid: process.getuid!(), gid: process.getgid!(), cwd: process.cwd(), proc: '/proc',
  run: runArgv, bridge: startBridge,
  watch: (dir, rm) => {
    const env = { ...process.env, NODE_OPTIONS: '' } // plain JS, as BRIDGE
    const stdio: StdioOptions = ['pipe', 'ignore', 'ignore']
    const dog = spawn(process.execPath, ['-e', WATCHDOG, dir, ...rm], { stdio, env, detached: true })
    dog.on('error', () => {}).unref()
    dog.stdin!.on('error', () => {})
    return () => dog.stdin!.end('done')
  },
  // Every line we print is filtered like a container's: a path or a message may quote what the trace holds.
  out: l => process.stdout.write(l.replace(CONTROL, '') + '\n'),
  err: (l, tone) => {
    const line = l.replace(CONTROL, '')
    process.stderr.write(`${tone ? chalk[tone](line) : line}\n`)
  },
  onSignal: f => {
    ENDING.forEach(s => process.on(s, f))
    return () => ENDING.forEach(s => process.off(s, f))
  },
})
/** Every signal that would end us and that a handler may catch: each ends a run the way Ctrl-C does (SIGHUP:
 * a closed terminal or ssh session; SIGQUIT: Ctrl-\). SIGKILL and SIGSTOP cannot be caught; a fault
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL) leaves no state fit to run a handler in. */
const ENDING = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGVTALRM',
  'SIGPROF', 'SIGIO', 'SIGPWR', 'SIGXCPU', 'SIGXFSZ', 'SIGTRAP', 'SIGSYS', 'SIGABRT', 'SIGSTKFLT'] as const
/** Shell-quote for display, so --dry-run and -x print pasteable commands. */
export const quote = (argv: readonly string[]) =>
  argv.map(a => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
/** One invocation: its config, runtime, options and the host it runs on. Three flags, set once, never reset:
 * `interrupted` by runContainer's signal handler (the container is being removed; every later step ends with
 * 130); `started` by runContainer after VERIFY, just before `start` (storage needs its clean-up from then);
 * `ended` when `start --attach` returned (the container is gone: serve's waits stop). */
export interface Run {
  sys: Sys; cfg: Config; rt: Runtime; dry: boolean; echo: boolean; o: minimist.ParsedArgs
  interrupted: boolean; started?: boolean; ended?: boolean; log?: number
}
/** A command as --dry-run and -x print it; `then`: what reads its output. */
function show(r: Run, argv: readonly string[], then: readonly string[] = []) {
  const line = then.length ? `${quote(argv)} | ${quote(then)}` : quote(argv)
  if (r.dry) r.sys.out(line)
  else if (r.echo) r.sys.err('+ ' + line)
}
async function exec(r: Run, argv: readonly string[], capture: boolean | 'quiet' = false, tag?: string,
  input?: string) {
  show(r, argv)
  const io = { input, log: r.log }
  const res: Result = r.dry ? { code: 0, out: '' } : await r.sys.run(argv, !!capture, tag, io)
  // The runtime's own words, warnings too (rootless podman on cgroup v1 ignores the limits, and says so on
  // create); they may quote the image's (its config): realSys drops their controls, as every line's.
  if (res.err?.trim() && capture !== 'quiet') r.sys.err(res.err.trim())
  return res
}
const onPath = (env: NodeJS.ProcessEnv, bin: string) =>
  (env.PATH ?? '').split(':').some(d => d && fs.existsSync(path.join(d, bin)))
interface Image { Id?: string; Digest?: string; RepoDigests?: string[]; Config?: { Env?: string[] } }
async function inspectImage(r: Run, ref: string): Promise<Image | undefined> {
  const { out } = await exec(r, [r.rt, 'image', 'inspect', ref], 'quiet')
  return attempt(() => JSON.parse(out)[0])
}
/** The local image for a reference; a pinned digest must be exactly this image's. We never pull: images
 * come only from your own `pull` or `load`, with the runtime's credentials. */
async function resolveImage(r: Run, ref: string): Promise<Image> {
  const missing = !r.dry && !onPath(r.sys.env, r.rt)
  if (missing) fail(`${r.rt} is not on PATH: install it, or choose the other with --runtime`)
  const pin = /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1]
  let img = await inspectImage(r, ref)
  // After `podman load`, a pinned reference may match only the image ID.
  if (!img && pin && !r.dry) img = await inspectImage(r, pin)
  const how = 'they come with its on-premises licence: README, "Where the images come from"'
  if (!img && !r.dry) fail(`image ${ref} is not here: \`${r.rt} pull ${ref}\` or load it (${how})`)
  const all = [img?.Digest, ...img?.RepoDigests ?? [], img?.Id]
  const ids = all.map(d => `sha256:${String(d).split(':').at(-1)}`)
  if (pin && img && !ids.includes(pin)) fail(`image ${ref} is ${ids.at(-1)} here, not ${pin}: refused`)
  return img ?? {}
}

// ---- VERIFY: after `create`, `inspect` must show exactly what the argv asked for, or nothing starts. ----
// A containers.conf or daemon config can add mounts, variables, devices, networks and namespaces.
interface Inspect {
  Image?: string; BoundingCaps?: string[]; Mounts?: { Source: string; Destination: string; RW: boolean }[]
  Config?: { User?: string; Env?: string[] }
  HostConfig?: {
    NetworkMode?: string; CapAdd?: string[] | null; Privileged?: boolean; ReadonlyRootfs?: boolean
    SecurityOpt?: string[] | null; PidMode?: string; IpcMode?: string; Devices?: unknown[] | null
  }
}
const gotMounts = (i: Inspect) =>
  (i.Mounts ?? []).map(m => `${m.Source}:${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort().join(' ')
function askedMounts(mounts: string[]) {
  const fields = (m: string) => Object.fromEntries(m.split(',').map(kv => kv.split('=')))
  const one = (m: Record<string, string>) => `${m.src}:${m.dst}:${'readonly' in m ? 'ro' : 'rw'}`
  return mounts.map(fields).map(one).sort().join(' ')
}
/** podman leaves the capabilities it grants by default out of CapAdd: its bounding set is the whole truth. */
const caps = (i: Inspect) =>
  (i.BoundingCaps ?? i.HostConfig?.CapAdd ?? []).map(k => k.replace(/^CAP_/, '')).sort().join()
/** podman's own variables, and a PATH only when the image sets none (podman and docker add this one). */
const RUNTIME_ENV = ['container=podman', 'HOSTNAME=pernosco', 'TERM=xterm']
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
/** The names of the variables that are not the argv's, the image's or the runtime's own. */
function extraEnv(i: Inspect, asked: string[], img: Image) {
  const image = img.Config?.Env ?? []
  const runtime = image.some(e => e.startsWith('PATH=')) ? RUNTIME_ENV : [...RUNTIME_ENV, DEFAULT_PATH]
  const allowed = [...image, ...asked, ...runtime]
  return (i.Config?.Env ?? []).filter(e => !allowed.includes(e)).map(e => e.split('=')[0]).join(' ')
}
/** The security options, sorted; docker shows our seccomp profile inline, as its JSON. */
function securityOpts(i: Inspect, seccomp: string) {
  const inline = (o: string) => isDeepStrictEqual(attempt(() => JSON.parse(o.slice(8))), JSON.parse(SECCOMP))
  const ours = (o: string) => (o.startsWith('seccomp={') && inline(o) ? `seccomp=${seccomp}` : o)
  return (i.HostConfig?.SecurityOpt ?? []).map(ours).sort().join(' ')
}
/** Each failed row, as `what fact`. `flags` are the create argv's up to the image: the image's own
 * arguments (the builder's, after `--`) can name no flag that counts as asked. One row per check: what
 * inspect shows, what it must show, and the reason above it. */
export function verify(flags: readonly string[], c: Ctx, i: Inspect, img: Image): string[] {
  const vals = (f: string) => flags.flatMap((x, k) => (x === f ? [flags[k + 1] ?? ''] : []))
  const rows: [what: string, got: unknown, want: unknown][] = [
    // Only ours, read-only where asked: no injected volume.
    ['mounts', gotMounts(i), askedMounts(vals('--mount'))],
    // None: no DNS, gateway or host service.
    ['network', i.HostConfig?.NetworkMode, 'none'],
    // Only what config.capAdd names.
    ['capabilities', caps(i), vals('--cap-add').sort().join()],
    // Never: it undoes every other flag.
    ['privileged', !!i.HostConfig?.Privileged, false],
    // The image cannot change while it runs.
    ['read-only root', !!i.HostConfig?.ReadonlyRootfs, true],
    // Exactly ours: label=disable, unmask=ALL or systempaths=unconfined would each weaken it.
    ['security options', securityOpts(i, c.seccomp), vals('--security-opt').sort().join(' ')],
    // You, or as root the user runAs chose; never uid 0.
    ['user', i.Config?.User, vals('--user')[0] ?? `${c.uid}:${c.gid}`],
    // Its own PID namespace (docker says ''): host processes stay invisible.
    ['PID namespace', i.HostConfig?.PidMode || 'private', 'private'],
    // Its own IPC namespace (podman says shareable).
    ['IPC namespace', i.HostConfig?.IpcMode?.replace('shareable', 'private'), 'private'],
    // None: no host device node inside.
    ['devices', JSON.stringify(i.HostConfig?.Devices ?? []), '[]'],
    // The one whose identity was checked.
    ['image', i.Image?.replace(/^sha256:/, ''), img.Id?.replace(/^sha256:/, '')],
    // Only ours, the image's and the runtime's own (docker copies proxy settings, with credentials, in).
    ['environment', extraEnv(i, vals('--env'), img), ''],
  ]
  const failed = rows.filter(([, got, want]) => !isDeepStrictEqual(got, want))
  return failed.map(([what, got]) => `${what} ${String(got).slice(0, 200)}`)
}
/** Who the containers run as: you; as root, config.user or the user sudo came from; never uid 0, so no
 * container process is root of the host (rootless podman maps you to yourself with --userns=keep-id). */
function runAs(r: Run): [number, number] {
  if (r.sys.uid !== 0) return [r.sys.uid, r.sys.gid]
  const sudo = `${r.sys.env.SUDO_UID}:${r.sys.env.SUDO_GID}`
  // At most 9 digits: 4294967295 (-1) means "unchanged" to setresuid, and setpriv would keep root.
  const spec = r.cfg.user ?? (/^[1-9]\d{0,8}:[1-9]\d{0,8}$/.test(sudo) ? sudo : undefined)
  if (spec) return spec.split(':').map(Number) as [number, number]
  return fail('as root, the containers still never run as root: run as yourself (rootless podman), with sudo '
    + '(they run as SUDO_UID), or set "user": "UID:GID" in a --config file')
}
/** The containers that exist now and their private directories: even a crash removes them (crashed()). */
const LIVE = new Map<string, { rm: string[]; dir: string }>()
type During = (name: string, c: Ctx) => Promise<() => void>
/** create, inspect and VERIFY, start --attach (while `during` sets up what talks to it), rm. The seccomp
 * profile lives in a private 0700 directory of its own. How a signal ends a run: the handler (set before
 * anything exists) sets r.interrupted and starts `rm`; whatever step is under way then fails or returns,
 * the catch turns that into 130, and `finally`, which every way out passes, removes the container (again),
 * the directory and LIVE's entry. LIVE is for what bypasses `finally`: a crash (crashed(), at the end);
 * the watchdog for a death no code of ours sees. */
async function runContainer(r: Run, kind: string, image: string, build: (c: Ctx) => string[],
  during?: During) {
  const img = await resolveImage(r, image)
  const [uid, gid] = runAs(r)
  const name = `pernosco-${kind}-${crypto.randomBytes(6).toString('hex')}`
  const rm = rmArgv(r.rt, name)
  // Set before the directory exists: a signal removes all, and so does every way out.
  const off = r.sys.onSignal(() => {
    r.interrupted = true
    void r.sys.run(rm, true)
  })
  // A dry run keeps one profile per version in your cache (so the printed commands work, and none pile up).
  const cache = r.sys.env.XDG_CACHE_HOME || path.join(r.sys.env.HOME ?? os.homedir(), '.cache')
  const dir = r.dry ? path.join(cache, `pernosco-${VERSION}`)
    : fs.mkdtempSync(path.join(os.tmpdir(), 'pernosco-'))
  const seccomp = `${dir}/seccomp.json`
  const c: Ctx = { rt: r.rt, cfg: r.cfg, rootless: r.sys.uid !== 0, uid, gid, name, seccomp }
  if (r.dry) fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  if (r.dry) attempt(() => fs.unlinkSync(c.seccomp)) // the last dry run's, or a link: 'wx' never follows one
  fs.writeFileSync(c.seccomp, SECCOMP, { mode: 0o600, flag: 'wx' })
  if (r.dry) r.sys.out(`# seccomp profile written to ${c.seccomp}`)
  let stop = () => {}
  let watched = () => {}
  try {
    const argv = build(c)
    if (!r.dry) LIVE.set(name, { rm, dir })
    if (!r.dry) watched = r.sys.watch(dir, rm)
    // Created, not run: nothing in it starts before VERIFY has compared it with the argv.
    const { code } = await exec(r, argv, true)
    if (code || r.interrupted) return r.interrupted ? 130 : code
    const { out } = await exec(r, [r.rt, 'inspect', name], true)
    const flags = argv.slice(0, argv.indexOf(image))
    const bad = r.dry ? [] : verify(flags, c, attempt(() => JSON.parse(out)[0]) ?? {}, img)
    if (bad.length) fail(`${name} is not what pernosco.mts asked for, so it was removed unstarted: `
      + `${bad.join('; ')}. Check containers.conf or the daemon config`)
    r.started = true
    // Attached, so its exit code is ours; what it prints arrives tagged, as data (runArgv, asLines).
    const started = exec(r, startArgv(r.rt, name), false, `${kind} |`)
    void started.finally(() => {
      r.ended = true
    })
    if (during) stop = await during(name, c)
    const { code: exit } = await started
    return r.interrupted ? 130 : exit
  } catch (e) {
    if (!r.interrupted) throw e
    return 130 // what failed after a signal failed because of it (an inspect or a bridge racing the rm)
  } finally {
    stop()
    show(r, rm)
    if (!r.dry) await r.sys.run(rm, true) // an error here means it was already gone
    if (r.interrupted && !r.dry) r.sys.err(`pernosco: interrupted: ${name} is stopped and removed`)
    LIVE.delete(name)
    off()
    if (!r.dry) fs.rmSync(dir, { recursive: true, force: true })
    watched()
  }
}

// ---- Trace hygiene: the builder wrote the trace, so on the host every entry in it is hostile. ----
/** lstat that returns undefined for "absent" and refuses symlinks. */
function entry(dir: string, name: string): fs.Stats | undefined {
  const st = fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false })
  if (st?.isSymbolicLink()) fail(`trace: ${path.join(dir, name)} is a symlink; refusing to write through it`)
  return st
}
/** The clean-up of a directory a container wrote, as one GNU find command (findutils 4.9). -P: no link is
 * ever followed or resolved. find handles a directory before it reads it, so one made unreadable is opened
 * and one left open to others is closed first: from then on only entries of another uid could change under
 * us, and those go whole. LC_ALL=C: -lname compares bytes, whatever a name's encoding. `mode`: the
 * directory's before the run; no group or other bit it lacked survives, nor any write bit for them. */
export function cleanArgv(dir: string, owners: number[], mode: number): string[] {
  const foreign = [...new Set(owners)].flatMap(uid => ['!', '-uid', String(uid)])
  // A link is judged by its text, never resolved (resolving a name the builder chose can trigger an
  // automount such as /net/NAME, a lookup around --network none, or hang): absolute, or a `..` step.
  const out = ['/*', '..', '../*', '*/..', '*/../*'].flatMap(p => ['-o', '-lname', p])
  const shut = 0o022 | (0o077 & ~mode)
  const RWX: [number, string][] = [[4, 'r'], [2, 'w'], [1, 'x']]
  const rwx = (bits: number) => RWX.filter(([b]) => bits & b).map(([, c]) => c).join('')
  const close = `ug-s,g-${rwx(shut >> 3)},o-${rwx(shut & 7)}`
  // -perm /6NNN: setuid, setgid, or any bit of `shut`.
  const open = ['-perm', `/6${shut.toString(8).padStart(3, '0')}`]
  // How it groups: `( A ) -prune … -o -type d ( B ) … -o -type f C …`: the first match acts, and -prune
  // keeps find out of what it removes. Each -o alternative runs only where those before it did not match.
  return ['env', 'LC_ALL=C', 'find', '-P', dir,
    // A: removed whole and unread (rm -rf follows no link either): an entry of another uid, what is not a
    // file, directory or link (a FIFO or a device hangs a read), a link that could point out of `dir`.
    '(', ...foreign, '-o', '!', '-type', 'f', '!', '-type', 'd', '!', '-type', 'l', ...out, ')',
    '-prune', '-printf', 'removed %P (type %y, uid %U)\\n', '-exec', 'rm', '-rf', '--', '{}', '+',
    // B: a directory we cannot read or that is too open: fixed (`;`: at once) before find reads it.
    '-o', '-type', 'd', '(', '!', '-perm', '-700', '-o', ...open, ')',
    '-exec', 'chmod', '-c', `u+rwx,${close}`, '--', '{}', ';',
    // C: a file too open.
    '-o', '-type', 'f', ...open, '-exec', 'chmod', '-c', close, '--', '{}', '+']
}
/** As root, the options that make a spawned command run as the containers' user: spawn sets the uid and gid
 * and drops every supplementary group. Not root: nothing to change, it runs as you. */
const asUser = (r: Run) => (r.sys.uid === 0 ? { uid: runAs(r)[0], gid: runAs(r)[1] } : {})
/** After a container wrote `dir` (the trace after the builder, the storage dir after the app server): what
 * may stay is owned by the containers' user, by us, or by the directory's owner (your recording, notes).
 * As root it runs as the containers' user (spawn sets the uid and gid and drops every supplementary
 * group): root never acts by name inside a directory a container could write. True when it completed. */
export async function sanitize(r: Run, dir: string, who: string, mode: number) {
  const argv = cleanArgv(dir, [runAs(r)[0], r.sys.uid, fs.statSync(dir).uid], mode)
  show(r, argv)
  // It finishes whatever signal comes meanwhile: find has a process group of its own (a terminal's Ctrl-C
  // does not reach it) and ours waits for it.
  const off = r.sys.onSignal(() => {})
  const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...asUser(r) })
  const say = (l: string) => r.sys.err(`pernosco: after ${who}: ${l}`, 'yellow')
  asLines(p.stdout, say)
  asLines(p.stderr, say)
  const code = await new Promise(ok => p.on('error', () => ok(127)).on('close', ok))
  off()
  if (code) say(`the clean-up is INCOMPLETE (find exited ${code}): check ${dir} before you use it`)
  return !code
}
/** rr's unpacked trace hard-links the files your program mapped (mmap_hardlink_*) until `rr pack` copies
 * them: the builder, which may write the trace, would write into your binaries. None may have two names. */
function noHardLinks(r: Run, trace: string) {
  const argv = ['find', '-P', trace, '-type', 'f', '-links', '+1', '-print', '-quit']
  show(r, argv)
  const found = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', ...asUser(r) })
  const first = JSON.stringify(found.stdout?.trim() ?? '') // a name the builder made may hold a newline
  if (first !== '""') fail(`${first} has another name (a hard link): the builder could write your file `
    + `through it. rr's own go with \`rr pack ${trace}\` (build runs it); remove one made inside the trace`)
  if (found.status !== 0) fail(`find could not check ${trace} for hard links: ${found.stderr ?? found.error}`)
}
const RR_URL = 'https://rr-project.org'
export const LIBTHREAD_DB = ['/usr/lib64/libthread_db.so', '/usr/lib/x86_64-linux-gnu/libthread_db.so']
export const SOURCES_FALLBACK = JSON.stringify([{ priority: -10, files: [{ url: '/sources/', at: '/' }] }])
const SUFFIX: Record<string, string> = { debuglink: 'debug', debugaltlink: 'sup', dwp: 'dwp' }
/** What package-build copies into the trace, from `rr sources` (rr >= 5.6), as [host file, path in the trace]
 * in the reference's layout: external_debug_info by build-id and type, each of `dwos` that no copied .dwp
 * covers, by its 64-bit id (read as a string: a JS number would round it), and of `files` the sources under
 * --copy-sources (real paths) at sources/PATH, where serve lets the app server find them. Where each comes
 * from: rr reads `path`, `full_path`, `comp_dir`, `name`, `build_id` and `id` from the DWARF and ELF notes
 * of the traced binaries, so whoever built those chose them. Hence ids must be hex and decimal before they
 * name a file in the trace, a source path is normalized (no `..` left), and copyIn reads only as you. */
export function debugCopies(json: string, copySources: string[], exists = isFile): [string, string][] {
  type Fields = Record<string, string>
  const s: { external_debug_info?: Fields[]; dwos?: Fields[]; files?: Record<string, string[]> } =
    JSON.parse(json.replace(/([{,]\s*"id"\s*:\s*)(\d+)/g, '$1"$2"') || '{}')
  const ext = s.external_debug_info ?? []
  const unknown = (t: string) => fail(`rr sources: unknown debug info type "${t}"`)
  const kind = (t: string) => (Object.hasOwn(SUFFIX, t) ? SUFFIX[t] : unknown(t))
  // debug/.build-id/XX/REST.debug (.sup, .dwp): XX is the build-id's first two hex digits, as gdb looks.
  const hex = (id: string) => /^[0-9a-f]{2,}$/.exec(id)?.[0] ?? fail(`rr sources: bad build-id ${id}`)
  const byId = (e: Fields) =>
    `debug/.build-id/${hex(e.build_id).slice(0, 2)}/${e.build_id.slice(2)}.${kind(e.type)}`
  const dwp = ext.filter(e => e.type === 'dwp' && exists(e.path)).map(e => e.build_id)
  const dwos = (s.dwos ?? []).filter(d => !dwp.includes(d.build_id))
  const dwo = (d: Fields) => {
    const id = BigInt(/^\d{1,20}$/.exec(d.id)?.[0] ?? fail(`rr sources: bad DWO id ${d.id}`)).toString(16)
    if (id.length > 16) fail(`rr sources: bad DWO id ${d.id}`)
    return `debug/.dwo/${id.padStart(16, '0')}.dwo`
  }
  const files = Object.entries(s.files ?? {}).flatMap(([dir, names]) => names.map(n => path.join(dir, n)))
  const mine = files.filter(f => copySources.some(d => f.startsWith(d + '/')))
  return [...ext.map(e => [e.path, byId(e)]),
    ...dwos.map(d => [d.full_path || path.join(d.comp_dir ?? '', d.name), dwo(d)]),
    ...mine.map(f => [f, `sources${f}`])] as [string, string][]
}
/** Whether `p` is `dir` or under it, by their text (give real paths). */
const inside = (p: string, dir: string) => `${p}/`.startsWith(`${dir}/`)
/** Only a regular file is read: a FIFO would hang the read, a device must not be read at all. */
const isFile = (p: string) => attempt(() => fs.statSync(p).isFile()) ?? false
const checkFile = (p: string, what: string) =>
  (path.isAbsolute(p) && isFile(p) ? p : fail(`${what}: ${JSON.stringify(p)} is not an absolute file path`))
/** As root, `f` runs with the containers' user's rights (effective uid and gid, no supplementary group):
 * whatever it does by name, through a link another process of that user swaps in meanwhile included, that
 * user could do alone. Synchronous only: nothing else of ours runs meanwhile. */
function withUser<T>(r: Run, f: () => T): T {
  if (r.sys.uid !== 0) return f()
  const groups = process.getgroups!()
  try {
    process.setgroups!([])
    process.setegid!(runAs(r)[1])
    process.seteuid!(runAs(r)[0])
    return f()
  } catch (e) {
    // That user may not reach it, or a name changed under us: one line, as any refusal.
    const code = (e as NodeJS.ErrnoException).code ?? ''
    const refused = ['EACCES', 'ENOENT', 'ENOTDIR', 'ELOOP'].includes(code)
    throw refused ? new UserError(`${(e as Error).message}: as root, this is done as uid ${runAs(r)[0]}`) : e
  } finally {
    process.seteuid!(0)
    process.setegid!(0)
    process.setgroups!(groups)
  }
}
/** `to` in the trace, anew: each directory on the way made or checked by entry() (no link followed), the
 * data written by `fill` (it returns why not, if not) into a new name (O_EXCL) and renamed over whatever is
 * at `to` (a file or a link, never through one; a directory there goes). As root, every step by name runs
 * withUser, and what it makes is that user's; only `fill` (a spawn, as that user) runs as root. */
function placeIn(r: Run, trace: string, to: string, fill: (fd: number) => string | undefined, mode = 0o444) {
  const dest = path.join(trace, to)
  const [tmp, fd] = withUser(r, () => {
    let dir = trace
    for (const part of path.dirname(to).split('/')) {
      const st = entry(dir, part)
      dir = path.join(dir, part)
      if (st && !st.isDirectory()) fail(`trace: ${dir} is not a directory`)
      if (!st) fs.mkdirSync(dir, { mode: 0o755 })
    }
    if (fs.lstatSync(dest, { throwIfNoEntry: false })?.isDirectory()) fs.rmSync(dest, { recursive: true })
    const name = path.join(dir, `.pernosco-${crypto.randomBytes(6).toString('hex')}`)
    return [name, openNew(r, name, mode)] as const
  })
  const why = fill(fd)
  fs.closeSync(fd)
  withUser(r, () => (why === undefined ? fs.renameSync(tmp, dest) : fs.unlinkSync(tmp)))
  return why
}
/** `text` into the trace at `to`; a dry run says so. */
function writeIn(r: Run, trace: string, to: string, text: string) {
  if (r.dry) return r.sys.out(`# would write ${path.join(trace, to)}`)
  placeIn(r, trace, to, fd => void fs.writeSync(fd, text), 0o644) // a text of ours: yours to edit
}
/** `from` into the trace at `to`. `cat` reads it as you; as root, as the containers' user (asUser): never
 * what only root may read. */
function copyIn(r: Run, trace: string, [from, to]: [string, string], under?: string[]) {
  if (r.dry) return r.sys.out(`# would copy ${from} to ${path.join(trace, to)}`)
  const missing = `pernosco: ${JSON.stringify(from)}: missing or not a regular file, not copied`
  // Absolute only: a relative name (the DWARF's own) would be read from where you stand, ~/.aws say.
  const real = path.isAbsolute(from) ? attempt(() => fs.realpathSync(from)) ?? '' : ''
  const kernel = /^\/(proc|sys|dev)\//.test(real) // its files: /proc/self/environ would be cat's own
  // A source only where its real path is under a directory you named: a link in it leads nowhere else.
  const outside = under && !under.some(d => inside(real, d))
  if (!isFile(real) || kernel || outside) return r.sys.err(missing, 'yellow')
  const why = placeIn(r, trace, to, fd => {
    const cat = spawnSync('cat', ['--', real], { stdio: ['ignore', fd, 'pipe'], env: {}, ...asUser(r) })
    // Debug info is ELF: whatever else a binary names (a key of yours, say) never lands in the trace.
    const magic = Buffer.alloc(4)
    fs.readSync(fd, magic, 0, 4, 0)
    const elf = /^(sources|gdbinit)\//.test(to) || magic.toString('latin1') === '\x7fELF'
    if (cat.status !== 0) return String(cat.stderr ?? cat.error).trim()
    return elf ? undefined : 'not ELF'
  })
  if (why) r.sys.err(`pernosco: ${JSON.stringify(from)}: not copied: ${why}`, 'yellow')
}
/** rr pack, then what the builder expects beside the trace: the host's libthread_db.so, what `rr sources`
 * lists (debugCopies; printed, not run, in a dry run), the printers (gdbinit), the matching overlays
 * (overlays), sources.user, sources.fallback. `build`: what would stop the builder stops it before rr pack
 * changes the trace. */
async function packageBuild(r: Run, trace: string, build = false): Promise<number> {
  const pack = !r.o['skip-rr']
  // A builder may have rewritten the trace's binaries, which name what `rr sources` lists (debugCopies),
  // and may still be at work in it: package-build never touches a trace a builder was given.
  if (entry(trace, GIVEN)) fail(`${trace} was given to the db builder, which may have rewritten what `
    + '`rr sources` reads: package a new recording, or rebuild this one with `only-build`')
  const owner = r.sys.uid === 0 ? runAs(r) : undefined // as root, never copy or write as root
  const noRr = pack && !r.dry && !onPath(r.sys.env, 'rr') // a dry run only prints rr's commands
  if (noRr) fail(`rr is not on PATH: install rr (${RR_URL}), or pass --skip-rr`)
  const many = (k: string) => [r.o[k] ?? []].flat().map(String)
  // --substitute LIB=DIR: rr looks for the sources of LIB (its original file's name) under DIR, copied too.
  const subs = many('substitute').map(spec => {
    const [lib, dir] = spec.split(/=(.*)/s)
    const ok = /^[^/=]+$/.test(lib) && dir !== undefined
    if (!ok) fail(`--substitute is LIB=DIR, LIB a file name (e.g. libc-2.32.so): not ${JSON.stringify(spec)}`)
    return [lib, checkDir(dir, '--substitute')]
  })
  const copy = [...many('copy-sources').map(d => checkDir(d, '--copy-sources')), ...subs.map(([, d]) => d)]
  const script = many('gdb-script').flatMap(f => ['--gdb-script', checkFile(f, '--gdb-script')])
  const mirror = (m: string) => (/^s3:\/\/./.test(m) ? m : checkDir(m, '--system-debuginfo'))
  const mirrors = many('system-debuginfo').map(mirror)
  const rrNeeded = copy.length + script.length + mirrors.length > 0 && !pack
  if (rrNeeded) fail('--copy-sources, --substitute, --gdb-script, --system-debuginfo run rr: drop --skip-rr')
  if (build) builderEnv(r) // its options are checked before anything runs, as are both images
  for (const image of build ? [r.cfg.images.builder, r.cfg.images.server] : []) await resolveImage(r, image)
  // rr reads and copies what the trace names: as root, as the containers' user (setpriv: no group kept).
  const as = owner ? ['setpriv', `--reuid=${owner[0]}`, `--regid=${owner[1]}`, '--clear-groups', '--'] : []
  const packed = pack ? await exec(r, [...as, 'rr', 'pack', trace], false, 'rr pack |') : undefined
  if (packed?.code) return packed.code
  const substitute = subs.flatMap(([lib, dir]) => ['--substitute', `${lib}=${dir}`])
  const listed = pack ? await exec(r, [...as, 'rr', 'sources', ...substitute, ...script, trace], true)
    : { code: 0, out: '' }
  const newer = subs.length ? ', and --substitute a newer one' : ''
  if (listed.code) fail(`\`rr sources\` failed (it needs rr >= 5.6${newer}): update rr, or pass --skip-rr`)
  const lib = LIBTHREAD_DB.filter(f => fs.existsSync(f)).slice(0, 1)
  const libCopy = lib.map((f): [string, string] => [f, 'files.system-debuginfo/libthread_db.so'])
  for (const c of [...libCopy, ...debugCopies(listed.out, copy)]) {
    copyIn(r, trace, c, c[1].startsWith('sources/') ? copy : undefined)
  }
  const json = JSON.parse(listed.out || '{}')
  const inits = Object.keys(json.files ?? {}).flatMap(repo => gdbinit(r, trace, repo, copy))
  const lines = inits.map(sub => `directory /trace/gdbinit/${sub}\nsource /trace/gdbinit/${sub}/.gdbinit\n`)
  if (inits.length) writeIn(r, trace, 'gdbinit/.gdbinit', lines.join(''))
  if (mirrors.length) await overlays(r, trace, mirrors, as)
  // rr's comp_dir_substitutions as the rules the builder reads (the reference's sources.user).
  const rules = Object.entries(json.comp_dir_substitutions ?? {}).map(([lib, dir]) =>
    ({ condition: { binary: lib }, overrideCompDir: dir }))
  if (rules.length) writeIn(r, trace, 'sources.user', JSON.stringify(rules))
  if (!entry(trace, 'sources.fallback')) writeIn(r, trace, 'sources.fallback', SOURCES_FALLBACK)
  return 0
}
/** What a source tree ships for gdb (Mozilla's, Chromium's printers), copied as the reference does. */
const GDB_PATHS = ['.gdbinit', '.gdbinit_python', 'third_party/python/gdbpp', 'tools/gdb',
  'third_party/libcxx-pretty-printers', 'third_party/blink/tools/gdb', 'third_party/skia/tools/gdb',
  'v8/tools/gdbinit', 'v8/tools/gdb-v8-support.py']
/** Chromium's own .gdbinit reads paths in the tree; this one, as the reference writes, reads the copies. */
const CHROME_GDBINIT = `python
import sys
sys.path.insert(0, "/trace/gdbinit/SUB/tools/gdb/")
sys.path.insert(0, "/trace/gdbinit/SUB/third_party/libcxx-pretty-printers/")
import gdb_chrome
try:
    from libcxx.v1.printers import register_libcxx_printers
    register_libcxx_printers(None)
except Exception:
    pass
gdb.execute('source /trace/gdbinit/SUB/tools/gdb/viewg.gdb')
end
`
/** `repo`'s GDB_PATHS (files, and the files of trees: find as you) into gdbinit/SUB, SUB its path with _ for
 * /; [SUB] if it then has a .gdbinit, for gdbinit/.gdbinit to source. SUB goes into gdb's and Python's text:
 * only a plain name. */
function gdbinit(r: Run, trace: string, repo: string, copy: string[]): string[] {
  const sub = repo.replaceAll('/', '_')
  // Only a tree under a directory you named, and in it only files no link leads out of: by real paths.
  const real = (p: string) => attempt(() => fs.realpathSync(p)) ?? ''
  const top = path.isAbsolute(repo) ? real(repo) : ''
  if (!/^[\w.+-]+$/.test(sub) || !copy.some(d => inside(top, d))) return []
  const find = ['find', '-P', ...GDB_PATHS.map(g => path.join(repo, g)), '-type', 'f', '-print0']
  show(r, find)
  const found = spawnSync(find[0], find.slice(1), { encoding: 'utf8', ...asUser(r) }).stdout ?? ''
  const files = found.split('\0').filter(f => f.startsWith(`${repo}/`) && inside(real(f), top))
  for (const f of files) copyIn(r, trace, [f, `gdbinit/${sub}/${path.relative(repo, f)}`])
  const chrome = files.includes(`${repo}/tools/gdb/gdb_chrome.py`)
  if (chrome) writeIn(r, trace, `gdbinit/${sub}/.gdbinit`, CHROME_GDBINIT.replaceAll('SUB', sub))
  return chrome || files.includes(`${repo}/.gdbinit`) ? [sub] : []
}
/** --system-debuginfo: each SOURCE (a directory, or s3://BUCKET/PREFIX read by your aws) holds
 * trace-overlay.manifest.xz, xz JSON {"overlays": {NAME: [build-id...]}}, and each NAME, an xz tar. Those
 * that list a build-id of the trace's mapped files (rr buildid) are unpacked into it, in sorted order, by
 * GNU tar as you (never root): it strips leading /, skips names with .., creates a link that could lead out
 * only after every file, and as you makes no device; then each gets the trace's clean-up (no link out, no
 * FIFO, socket or device, no mode more open than the trace's) before the next is unpacked. */
async function overlays(r: Run, trace: string, mirrors: string[], as: string[]) {
  const mapped = fs.readdirSync(trace).filter(n => /^mmap_[^\n]*$/.test(n)) // a newline would make two names
  const input = mapped.map(n => `${path.join(trace, n)}\n`).join('')
  const listed = await exec(r, [...as, 'rr', 'buildid'], true, undefined, input)
  if (listed.code) fail(`\`rr buildid\` failed (${listed.code}): update rr`)
  const ids = listed.out.split('\n').filter(id => /^[0-9a-f]+$/.test(id))
  const mode = fs.statSync(trace).mode
  const clean = async (who: string) => (await sanitize(r, trace, who, mode)) || fail('overlays: stopped')
  if (!r.dry) await clean('rr pack') // a link already in the trace must not lead the first archive out
  for (const mirror of mirrors) {
    const read = (name: string) => {
      const at = `${mirror}/${name}`
      if (mirror.startsWith('s3://')) return ['aws', 's3', 'cp', at, '-']
      if (!r.dry && !fs.lstatSync(at, { throwIfNoEntry: false })?.isFile()) fail(`${at}: not a regular file`)
      // dd follows no link swapped in meanwhile (nofollow) and waits on no FIFO (nonblock).
      return ['dd', `if=${at}`, 'iflag=nofollow,nonblock', 'bs=1M', 'status=none']
    }
    const text = await piped(r, read('trace-overlay.manifest.xz'), ['xz', '-dc'])
    const manifest = attempt(() => JSON.parse(text))
    if (!r.dry && !manifest) fail(`--system-debuginfo ${mirror}: no trace-overlay.manifest.xz of xz JSON`)
    const all = Object.entries<unknown>(manifest?.overlays ?? {})
    const wanted = all.filter(([, list]) => Array.isArray(list) && list.some(id => ids.includes(id)))
    for (const [name] of wanted.sort()) {
      if (!/^[\w+-][\w.+-]*$/.test(name)) fail(`${mirror}: overlay ${JSON.stringify(name)} refused`)
      // Nothing the trace has is replaced, nor made what is ours to write: our marks (pernosco-built...),
      // the source rules the builder reads (sources.fallback, sources.user), the printers gdb sources.
      const tar = ['tar', '-xJf', '-', '-C', trace, '--no-same-owner', '--no-same-permissions',
        '--skip-old-files', '--exclude=pernosco-*', '--exclude=sources.*', '--exclude=gdbinit']
      try {
        await piped(r, read(name), tar)
      } finally {
        if (!r.dry) await clean(`overlay ${name}`) // whatever tar did before it failed
      }
    }
  }
}
/** `from | to` without a shell, streamed; `to` runs as you (as root: the containers' user), and so does
 * `from` unless it is aws (your credentials). `to`'s output, or a failure that says why. */
async function piped(r: Run, from: string[], to: string[]): Promise<string> {
  show(r, from, to)
  if (r.dry) return ''
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe']
  const a = spawn(from[0], from.slice(1), { stdio, ...from[0] === 'aws' ? {} : asUser(r) })
  const b = spawn(to[0], to.slice(1), { stdio: [a.stdout!, 'pipe', 'pipe'], ...asUser(r) })
  a.stdout!.destroy() // b holds the pipe: if b ends first, `a` is not left writing to our copy of it
  const out: Buffer[] = []
  const err: Buffer[] = []
  b.stdout!.on('data', (d: Buffer) => {
    out.push(d)
    if (out.length > 256) b.kill() // a manifest is small (and tar says nothing): no unbounded read
  })
  for (const p of [a, b]) p.stderr!.on('data', d => err.push(d))
  // `a`'s output is b's: its 'exit' is its end; b's 'close' comes after the last of its output.
  const ended = (p: typeof a, end: string) => new Promise(ok => p.on('error', () => ok(127)).on(end, ok))
  const codes = await Promise.all([ended(a, 'exit'), ended(b, 'close')])
  const why = Buffer.concat(err).toString().trim()
  if (codes.some(c => c !== 0)) fail(`${quote(from)} | ${quote(to)} failed (${codes}): ${why}`)
  return Buffer.concat(out).toString()
}
/** A new file ('wx' is O_CREAT|O_EXCL: it never follows a link at the name); as root, the containers' user's
 * (fchown on what was opened, never by name), whose clean-up may then fix its mode. */
function openNew(r: Run, file: string, mode = 0o644) {
  const fd = fs.openSync(file, 'wx+', mode)
  if (r.sys.uid === 0) fs.fchownSync(fd, ...runAs(r))
  return fd
}
function writeNew(r: Run, file: string, text: string) {
  const fd = openNew(r, file)
  fs.writeSync(fd, text)
  fs.closeSync(fd)
  return true
}

// ---- Proxy: the only way in to the server; it forces the browser-side policy. ----
// Same-origin CSP on every response, whatever the server sent; nothing reports anywhere. The UI runs in
// a sandboxed iframe of a shell page on a second port (another origin) whose frame-src keeps the UI from
// navigating itself elsewhere. Both use a host name of this serve's own, so cookies, cache and storage
// are shared with no other local web app and no earlier serve.
export const CSP = ["default-src 'self'", "connect-src 'self'",
  "script-src 'self' 'unsafe-inline' 'unsafe-eval'", "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:", "font-src 'self' data:",
  "media-src 'self' blob:", "worker-src 'self' blob:", "child-src 'self' blob:", "frame-src 'self'",
  "manifest-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "webrtc 'block'",
  'sandbox allow-scripts allow-same-origin allow-forms allow-downloads']
export const PERMISSIONS = 'accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), '
  + 'hid=(), microphone=(), midi=(), payment=(), publickey-credentials-get=(), serial=(), usb=()'
/** On every response of both ports. no-store: nothing the server sent outlives the session in the browser. */
export const forcedHeaders = (csp: string, allow = '') => ({ 'content-security-policy': csp,
  'connection-allowlist': `(response-origin${allow});webrtc=block`, 'x-dns-prefetch-control': 'off',
  'referrer-policy': 'no-referrer', 'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin', 'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': PERMISSIONS, 'cache-control': 'no-store' })
/** Server response headers that pass; all others (CSP, Link, Refresh, Set-Cookie, Report-To, CORS, caching
 * and its validators...) are dropped. */
export const KEEP_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-range',
  'accept-ranges', 'date', 'vary']
/** Ours, the allowlisted ones, and a Location that the browser resolves to our origin, sent absolute (so
 * that `/.//evil` cannot become `//evil` on the way). */
export function responseHeaders(h: http.IncomingHttpHeaders, origin: string, forced: object) {
  const out: http.OutgoingHttpHeaders = { ...forced }
  for (const k of KEEP_HEADERS) if (h[k] !== undefined) out[k] = h[k]
  const to = h.location === undefined ? undefined : attempt(() => new URL(h.location!, origin))
  if (to?.origin === origin) out.location = to.href
  return out
}
/** Hop-by-hop request headers are the proxy's business; our cookie never reaches the server. */
const DROP = ['connection', 'keep-alive', 'upgrade', 'proxy-connection', 'proxy-authorization', 'te',
  'trailer', 'transfer-encoding', 'cookie']
const requestHeaders = (req: http.IncomingMessage) =>
  Object.fromEntries(Object.entries(req.headers).filter(([k]) => !DROP.includes(k)))
/** The only headers of the server's 101 that reach the browser, in a 101 of our own. */
const KEEP_UPGRADE = ['sec-websocket-accept', 'sec-websocket-protocol', 'sec-websocket-extensions']
/** A response head by hand, for the upgrade path only (no ServerResponse there). Its values are our
 * constants or headers that node's parser (llhttp) accepted, which hold no CR or LF. */
function rawHead(status: number, h: object) {
  const lines = Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  return `HTTP/1.1 ${status} ${HTTP.STATUS_CODES[status]}\r\n${lines}\r\n`
}
/** An answer written on the socket itself (node's own errors, refused upgrades), then the connection ends;
 * destroyed after a second if the peer does not close. Only on a connection where nothing was written yet:
 * elsewhere a head could land inside a response already under way, so it is closed without one. */
function answerRaw(sock: net.Socket, status: number, forced: object, why = '') {
  const length = Buffer.byteLength(why)
  const h = { ...forced, 'content-type': 'text/plain', 'content-length': length, connection: 'close' }
  if (sock.writableEnded) return // answered already
  if (sock.writable && sock.bytesWritten === 0) sock.end(rawHead(status, h) + why)
  else sock.destroy()
  setTimeout(() => sock.destroy(), 1000).unref()
}
/** The status node itself would send for a client error (its _http_server.js, node 20 and 24). */
const CLIENT_STATUS: Record<string, number> =
  { HPE_HEADER_OVERFLOW: 431, HPE_CHUNK_EXTENSIONS_OVERFLOW: 413, ERR_HTTP_REQUEST_TIMEOUT: 408 }
const clientStatus = (e: NodeJS.ErrnoException) => CLIENT_STATUS[e.code ?? ''] ?? 400
/** How long the proxy waits (ms), so a stalled peer holds nothing for long. A query may compute a while. */
export const TIMEOUTS = { upstream: 300_000, pooled: 30_000, browser: 300_000 }
const digest = (s: string) => crypto.createHash('sha256').update(s).digest()
const sameToken = (given: string | undefined, want: Buffer) =>
  given !== undefined && crypto.timingSafeEqual(digest(given), want)
export interface ProxyOpts {
  socketPath: string; port: number; token: string; name: string; timeouts?: typeof TIMEOUTS; webrtc?: boolean
}
/** Where WebRTC is not known blocked (issue 21: only Chromium >= 152 enforces Connection-Allowlist's
 * webrtc=block), the shell frames the UI only in a browser whose WebRTC is switched off; else it explains. */
export const GUARD = "if (!window.RTCPeerConnection && !window.webkitRTCPeerConnection) document.body"
  + ".replaceChildren(document.querySelector('template').content)"
const NO_WEBRTC = '<p>Not shown: this browser lets any page use WebRTC, a way out no header closes here. '
  + 'Firefox: set media.peerconnection.enabled to false (about:config, or its Preferences policy); reload. '
  + 'Or use Chromium 152 or later, or restart serve with --allow-webrtc-leak (README).</p>'
/** Listen on two loopback ports (shell, then UI); every request is checked before it may reach the bridge. */
export async function startProxy(o: ProxyOpts) {
  const t = o.timeouts ?? TIMEOUTS
  // The policies of answers to a client that has not shown this serve's Host and token: the same, with no
  // name in them. Cookies ignore ports: another local user who learnt the name could listen on another port
  // of it and receive the cookie from your browser. So only an authenticated answer names the origins.
  const SF0 = forcedHeaders("default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
  const UF0 = forcedHeaders([...CSP, "frame-ancestors 'none'"].join('; '))
  // Node answers some requests itself, before any handler: 400, 408, 413 and 431 through 'clientError';
  // 417 for an unknown Expect (checkExpectation); a missing Host is ours to refuse. Each gets our
  // nameless headers here (node 20 and 24 have no other answer of their own), or no answer at all.
  const server = (onRequest: http.RequestListener, forced: typeof UF0) =>
    HTTP.createServer({ requireHostHeader: false }, onRequest).setTimeout(t.browser)
      .on('clientError', (e: NodeJS.ErrnoException, s: net.Socket) => answerRaw(s, clientStatus(e), forced))
      .on('checkExpectation', (_, res: http.ServerResponse) => deny(res, 417, 'no Expect', forced))
  const shells = await listenLoopback(() => server(onShell, SF0), o.port)
  const sp = boundPort(shells[0])
  const uiServer = () => server(onUi, UF0).on('upgrade', onUpgrade)
  const uis = await listenLoopback(uiServer, o.port && o.port + 1).catch(e => {
    shells.forEach(s => s.close()) // the shell's ports are not left listening
    throw e
  })
  const up = boundPort(uis[0])
  const S = `http://${o.name}:${sp}`
  const U = `http://${o.name}:${up}`
  const cookie = `pernosco-${sp}`
  const token = digest(o.token)
  const guard = digest(GUARD).toString('base64')
  const SF = forcedHeaders(`default-src 'none'; frame-src ${U}; style-src 'unsafe-inline'; base-uri 'none'; `
    + `form-action 'none'; frame-ancestors 'none'; script-src 'sha256-${guard}'`, ` "${U}/*"`)
  const UF = forcedHeaders([...CSP, `frame-ancestors ${S}`].join('; '))
  // Upstream: node's own HTTP client (llhttp parses every byte the server sends), on keep-alive sockets to
  // the bridge's unix socket; at most 16 (node counts each as it opens), further requests wait here.
  const agent = new HTTP.Agent({ keepAlive: true, maxSockets: 16, timeout: t.pooled })
  const upstream = { agent, socketPath: o.socketPath }
  const tunnels = new Set<Duplex>()
  const hostOk = (req: http.IncomingMessage, port: number) => req.headers.host === `${o.name}:${port}`
  const ours = (req: http.IncomingMessage) =>
    (req.headers.cookie ?? '').split(/;\s*/).find(c => c.startsWith(cookie + '='))?.slice(cookie.length + 1)
  const authed = (req: http.IncomingMessage) => sameToken(ours(req), token)
  const safe = (req: http.IncomingMessage) => ['GET', 'HEAD'].includes(req.method!) && !req.headers.upgrade
  /** The UI port's checks, in order: the first that fails answers, and nothing reaches the server. */
  const UI_CHECKS: [status: number, why: string, ok: (req: http.IncomingMessage) => boolean][] = [
    [403, 'bad Host: open the URL that `serve` printed', req => hostOk(req, up)], // DNS rebinding
    [401, 'open the URL that `serve` printed', authed], // other local users, other web pages
    [403, 'bad Origin', req => safe(req) || req.headers.origin === U], // cross-site writes and WebSockets
    [403, 'no service workers', req => !req.headers['service-worker']], // one would outlive the session
    [400, 'only WebSocket upgrades', req => /^(websocket)?$/i.test(req.headers.upgrade ?? '')],
    [411, 'send request bodies with a content-length', req => !req.headers['transfer-encoding']],
  ]
  const refusal = (req: http.IncomingMessage) => UI_CHECKS.find(([, , ok]) => !ok(req))
  function deny(res: http.ServerResponse, status: number, why: string, forced = UF0) {
    if (res.writableEnded) return // answered already (a timeout)
    if (res.headersSent) return res.destroy()
    res.writeHead(status, HTTP.STATUS_CODES[status], { ...forced, 'content-type': 'text/plain' })
    res.end(why + '\n')
  }
  function onShell(req: http.IncomingMessage, res: http.ServerResponse) {
    if (!hostOk(req, sp)) return deny(res, 403, 'bad Host: open the URL that `serve` printed', SF0)
    const [where, query] = req.url!.split(/\?(.*)/s) // no URL parsing: `//` or `//[` must not throw
    if (where !== '/' || req.method !== 'GET') return deny(res, 404, 'not found', SF0)
    if (sameToken(new URLSearchParams(query).get('token') ?? undefined, token)) {
      const set = `${cookie}=${o.token}; HttpOnly; SameSite=Strict; Path=/`
      return res.writeHead(302, { ...SF0, location: '/', 'set-cookie': set }).end()
    }
    if (!authed(req)) return deny(res, 401, 'open the URL that `serve` printed', SF0)
    res.writeHead(200, { ...SF, 'content-type': 'text/html; charset=utf-8' })
    const frame = `<iframe src="${U}/" sandbox="${CSP.at(-1)!.slice(8)}"></iframe>`
    // The User-Agent of this top-level request is the user's browser's own: the UI cannot set it.
    const blocks = +(/Chrom(?:e|ium)\/(\d+)/.exec(req.headers['user-agent'] ?? '')?.[1] ?? 0) >= 152
    res.end('<!doctype html><meta charset="utf-8"><title>Pernosco</title><style>html,body,iframe{margin:0;'
      + 'border:0;width:100%;height:100%;display:block}</style>'
      + (blocks || o.webrtc ? frame : `<template>${frame}</template>${NO_WEBRTC}<script>${GUARD}</script>`))
  }
  function onUi(req: http.IncomingMessage, res: http.ServerResponse) {
    const refused = refusal(req)
    if (refused) return deny(res, refused[0], refused[1])
    // A top-level navigation to the UI goes back into the sandboxed frame.
    if (req.headers['sec-fetch-dest'] === 'document') {
      return res.writeHead(302, { ...UF, location: `${S}/` }).end()
    }
    const out = toServer(req, requestHeaders(req), (status, why) => deny(res, status, why, UF))
    out.on('response', answer => relay(answer, res))
    // A close with neither an answer nor an error (a 101 to a plain request): answer, never hang.
    out.on('close', () => res.headersSent || deny(res, 502, 'bad response from the Pernosco server', UF))
    res.on('close', () => res.writableFinished || out.destroy()) // the browser left: free the upstream socket
    // Bodies always have a length (chunked ones are refused); a request without one is sent at once.
    if (req.headers['content-length']) pipeline(req, out, () => {})
    else out.end()
  }
  type Answer = (status: number, why: string) => void
  /** A request to the server through the bridge; `answer` tells the browser when the server does not: no
   * head within t.upstream of the request's arrival (a wait for a socket included), or an error. Both may
   * come (the timer's destroy() raises 'error'): deny and answerRaw answer once, then do nothing. */
  function toServer(req: http.IncomingMessage, headers: http.OutgoingHttpHeaders, answer: Answer) {
    const out = HTTP.request({ ...upstream, method: req.method, path: req.url, headers })
    const late = setTimeout(() => {
      answer(504, 'the Pernosco server did not answer in time')
      out.destroy()
    }, t.upstream)
    out.on('error', () => answer(502, 'the Pernosco server did not answer'))
    // node's client emits 'close' right after 'upgrade' too (its _http_client.js, node 20 and 24)
    out.on('response', () => clearTimeout(late)).on('close', () => clearTimeout(late))
    return out
  }
  /** The server's answer, framed anew by node's ServerResponse under our headers. */
  function relay(answer: http.IncomingMessage, res: http.ServerResponse) {
    const status = answer.statusCode!
    const headers = responseHeaders(answer.headers, U, UF)
    // A 205 has no body (RFC 9110 15.3.6), but llhttp reads one: never pass it on, never reuse the socket.
    if (status === 205) headers['content-length'] = 0
    const head = attempt(() => res.writeHead(status, headers))
    if (!head || status === 205) answer.destroy()
    if (!head) return deny(res, 502, 'bad response from the Pernosco server', UF)
    if (status === 205) return res.end()
    // pipe(): backpressure without pipeline's per-call machinery (measured: README, Performance). An error
    // upstream breaks the browser's response; the browser leaving destroys `out` (onUi).
    answer.on('error', () => res.destroy())
    answer.pipe(res)
  }
  /** A WebSocket: the same checks, node's client for the server's 101, and our own 101 to the browser. The
   * order things can happen in: a refusal answers and ends here. Else, until the server answers, `early`
   * ends the browser's socket if it sends or closes, and its 'close' destroys `out`. Then exactly one of
   * `out`'s 'error', 'response' (refused: 502) or 'upgrade' (the tunnel: `early` off, our 101, then the two
   * sockets piped, each one's close closing the other), or toServer's timer (504). */
  function onUpgrade(req: http.IncomingMessage, sock: Duplex, head: Buffer) {
    sock.on('error', () => sock.destroy()) // node removed its own listener: a reset must not crash us
    const refuse = (status: number, why: string) => answerRaw(sock as net.Socket, status, UF0, why + '\n')
    const refused = refusal(req)
    if (refused) return refuse(refused[0], refused[1])
    // A browser sends nothing before the 101: what came after the request (a pipelined request with the
    // cookie) must reach neither the server nor the tunnel.
    if (head.length) return refuse(400, 'nothing may follow an upgrade request before its answer')
    if (sock.destroyed) return // reset before node gave it to us: its 'close' has been and gone
    // Reading also shows when the browser leaves (node's sockets are half-open).
    const early = () => sock.destroy()
    sock.on('data', early).on('end', () => sock.destroy())
    const headers = { ...requestHeaders(req), connection: 'Upgrade', upgrade: 'websocket' }
    // Until the 101, this socket has no timeout of node's: toServer's counts from the request's arrival.
    const out = toServer(req, headers, refuse)
    out.on('response', answer => {
      answer.destroy()
      refuse(502, 'the Pernosco server refused the WebSocket')
    })
    out.on('upgrade', (answer, theirs: net.Socket, theirHead: Buffer) => {
      theirs.on('error', () => theirs.destroy()).setTimeout(0) // a debugging session may idle for hours
      if (sock.destroyed) return theirs.destroy() // the browser left while the server answered
      sock.off('data', early)
      const kept = KEEP_UPGRADE.filter(k => answer.headers[k]).map(k => [k, answer.headers[k]])
      sock.write(rawHead(101, { upgrade: 'websocket', connection: 'Upgrade', ...Object.fromEntries(kept) }))
      tunnels.add(theirs).add(sock)
      for (const [a, b] of [[theirs, sock], [sock, theirs]]) a.on('close', () => tunnels.delete(b.destroy()))
      theirs.unshift(theirHead)
      theirs.pipe(sock).pipe(theirs)
    })
    sock.on('close', () => out.destroy())
    out.end()
  }
  const close = () => {
    for (const s of [...shells, ...uis]) s.close().closeAllConnections()
    tunnels.forEach(s => s.destroy())
    agent.destroy()
  }
  return { url: `${S}/?token=${o.token}`, shell: S, ui: U, close }
}
const boundPort = (srv: net.Server) => (srv.address() as net.AddressInfo).port
const listen = (srv: net.Server, at: net.ListenOptions) => new Promise<Error | undefined>(ok => {
  srv.once('error', ok).listen(at, () => ok(undefined))
})
/** The same port on 127.0.0.1 and ::1. Chromium resolves *.localhost to ::1 first: a ::1 left free would
 * let another local user's listener take the token. Only a host with no IPv6 loopback at all listens on one.
 * A free port (0) whose ::1 twin is taken is tried again, 20 times at most. */
async function listenLoopback(make: () => http.Server, want: number): Promise<http.Server[]> {
  for (let i = 0; i < 20; i++) {
    const v4 = make()
    const e4 = await listen(v4, { port: want, host: '127.0.0.1' })
    if (e4) fail(`cannot listen on 127.0.0.1:${want}: ${e4.message}`)
    const v6 = make()
    const e6 = await listen(v6, { port: boundPort(v4), host: '::1' })
    if (!e6) return [v4, v6]
    if (/EADDRNOTAVAIL|EAFNOSUPPORT/.test(e6.message)) return [v4] // no IPv6 loopback here
    v4.close()
    if (want) fail(`cannot listen on [::1]:${want}: ${e6.message}; another program holds it`)
  }
  return fail('no free port on both 127.0.0.1 and ::1 after 20 tries')
}

// ---- Commands ----
const sleep = (ms: number) => new Promise(ok => setTimeout(ok, ms))
/** rr's own default: $_RR_TRACE_DIR, else ~/.local/share/rr; the trace is its latest-trace. */
const rrDir = (r: Run) =>
  r.sys.env._RR_TRACE_DIR || path.join(r.sys.env.HOME ?? os.homedir(), '.local/share/rr')
const traceArg = (r: Run) => checkDir(String(r.o._[0] ?? path.join(rrDir(r), 'latest-trace')), 'trace')
async function record(r: Run): Promise<number> {
  const cmd = r.o['--'] ?? []
  if (!cmd.length) fail('record: give the command after --, e.g. `record -- ./my-test`')
  const knob = path.join(r.sys.proc, 'sys/kernel/perf_event_paranoid')
  const par = r.dry ? '0' : attempt(() => fs.readFileSync(knob, 'utf8').trim()) // a dry run runs no rr
  if (par === undefined) fail(`rr needs perf events, and this kernel has no ${knob} (a VM without a PMU?)`)
  if (+par > 1) fail(`rr needs ${knob} <= 1 (it is ${par}): sudo sysctl kernel.perf_event_paranoid=1`)
  const out = r.o.output === undefined ? undefined : checkDir(r.o.output, '--output')
  const image = r.o.container
  if (image) {
    const dir = out ?? checkDir(rrDir(r), 'trace dir')
    return runContainer(r, 'record', image, c => recordContainerArgv(c, dir, image, cmd))
  }
  const rr = r.dry || onPath(r.sys.env, 'rr')
  if (!rr) fail(`rr is not on PATH: install rr (${RR_URL}), or use --container`)
  return (await exec(r, recordArgv(out, cmd))).code
}
/** Ours, made before the builder first runs and mounted read-only over itself inside it (builderArgv): a
 * mount point it can neither remove nor change. package-build refuses a trace that has it. */
export const GIVEN = 'pernosco-given-to-builder'
/** What serve looks for: written by us once the builder exited 0 (its own files are not ours to know, nor
 * to read: one could be a FIFO); removed before each build, so an interrupted one is not taken for built. */
export const BUILT = 'pernosco-built'
function builderEnv(r: Run) {
  const level = checkInt(r.o['compression-level'], '--compression-level', 1, 22)?.toString()
  const log = r.o['builder-rr-log']
  return { RUST_LOG: rustLog(r), RR_LOG: log, RR_LOG_FILE: log && '/trace/rr.log',
    PERNOSCO_ZSTD_COMPRESSION_LEVEL: level }
}
/** only-build: the db builder on the trace, then the trace's clean-up. */
async function onlyBuild(r: Run) {
  const trace = traceArg(r)
  const env = builderEnv(r)
  const argv = (c: Ctx) => builderArgv(c, trace, r.o['--'] ?? [], env)
  if (!r.dry) noHardLinks(r, trace)
  const given = entry(trace, GIVEN)
  if (given && !given.isFile()) fail(`trace: ${trace}/${GIVEN} is not a file`)
  if (!given && !r.dry) writeNew(r, path.join(trace, GIVEN), '')
  const mark = path.join(trace, BUILT)
  if (!r.dry) attempt(() => fs.unlinkSync(mark)) // a build stopped half-way is not built
  const mode = fs.statSync(trace).mode
  const code = await runContainer(r, 'builder', r.cfg.images.builder, argv)
  if (r.dry) return code
  const clean = await sanitize(r, trace, 'the builder', mode)
  // Ours, once the builder has ended and a clean-up passed: unlink (never recursive, never through a link)
  // what it put at the name, then writeNew. A directory there stays, and serve refuses it.
  attempt(() => fs.unlinkSync(mark))
  const built = !code && clean && attempt(() => writeNew(r, mark, `${r.cfg.images.builder}\n`))
  if (built) r.sys.out(`Built: ${trace} holds its Pernosco database; next: serve ${quote([trace])}`)
  return code
}
/** --sources DIR or FROM=TO: FROM is where the trace expects sources, TO where they are on this host. */
function source(spec: string): [string, string] {
  const [from, to = from] = spec.split(/=(.*)/s)
  const plain = path.isAbsolute(from) && path.normalize(from) === from && !MOUNT_UNSAFE.test(from)
  if (!plain) fail(`--sources: ${JSON.stringify(from)} must be a plain absolute path`)
  return [from.replace(/\/$/, ''), checkDir(to, '--sources')]
}
async function serve(r: Run): Promise<number> {
  const trace = traceArg(r)
  const built = attempt(() => fs.lstatSync(path.join(trace, BUILT)).isFile())
  if (!built) fail(`${trace} holds no finished Pernosco database: run \`build ${trace}\` first`)
  // --storage: made (0700) if missing; one serve at a time, by a name bound in our network namespace.
  const given = r.o.storage
  const make = given !== undefined && !r.dry && path.isAbsolute(given) && !fs.existsSync(given)
  // Made as the containers' user (asUser), never by root in a dir another may own; if not, checkDir says why.
  if (make) spawnSync('mkdir', ['-p', '-m', '700', '--', given], { stdio: 'ignore', ...asUser(r) })
  const storage = given === undefined ? undefined : checkDir(given, '--storage')
  const mode = storage ? fs.statSync(storage).mode : 0
  const held = storage && !r.dry ? net.createServer().unref() : undefined
  const busy = held && await listen(held, { path: `\0pernosco-${digest(storage!).toString('hex')}` })
  if (busy) fail(`--storage ${storage} is in use by another serve (one at a time)`)
  const sources = [r.o.sources ?? []].flat().map(source)
  const port = checkInt(r.o.tunnel, '--tunnel', 1024, 65534) ?? 0
  // A name of this serve's own: browsers resolve *.localhost to loopback without DNS (RFC 6761 6.3).
  const name = `pernosco-${crypto.randomBytes(5).toString('hex')}.localhost`
  let died = false
  // Each prerequisite fails where it is needed, with its fix (README, Prerequisites, lists them all).
  const noNsenter = !r.dry && !onPath(r.sys.env, 'nsenter')
  if (noNsenter) fail('serve needs nsenter to reach the server: install util-linux')
  // While the server runs: its PID, the bridge into its network namespace, the proxy in front of the bridge.
  const during: During = async (cname, c) => {
    const target = await serverPid(r, c)
    const socketPath = path.join(path.dirname(c.seccomp), 'bridge.sock') // in our private 0700 directory
    const argv = bridgeArgv(r.rt, c.rootless, target, process.execPath, socketPath)
    show(r, argv)
    if (r.dry || r.ended) return () => {}
    if (!target[0]) fail('the server container did not start')
    const bridge = r.sys.bridge(argv)
    const token = crypto.randomBytes(32).toString('hex')
    const webrtc = r.o['allow-webrtc-leak']
    if (webrtc) r.sys.err('pernosco: --allow-webrtc-leak: the UI can reach other hosts by WebRTC', 'red')
    // The proxy listens while the bridge starts (no URL, so no token, is out before both are up).
    const listening = startProxy({ socketPath, port, token, name, webrtc })
    const proxy = await Promise.all([listening, bridge.ready]).then(([p]) => {
      // Rootless, the bridge runs in podman's mount namespace too: its socket must be the one we see.
      if (!attempt(() => fs.statSync(socketPath).isSocket())) fail(`the bridge's socket is not visible here`)
      return p
    }).catch(e => {
      bridge.close()
      void listening.then(p => p.close(), () => {})
      throw e
    })
    // The bridge is the only way in: if it dies, the server is stopped rather than left unreachable.
    void bridge.died.then(() => {
      died = !r.ended && !r.interrupted
      if (died) r.sys.err('pernosco: the bridge to the server exited; stopping the server', 'red')
      if (died) void r.sys.run(rmArgv(r.rt, cname), true)
    })
    // "ready" once the server answers through the bridge (3000 tries at most; then the URL all the same).
    for (let i = 0; i < 3000 && !r.ended && !await answers(socketPath); i++) await sleep(10)
    const [a, b] = port ? [port, port + 1] : [8080, 8081]
    const ssh = `ssh -L ${a}:127.0.0.1:${a} -L ${b}:127.0.0.1:${b} THIS-HOST, and serve --tunnel ${a}`
    const browsers = 'Chromium 152 or later shows the UI; Firefox with WebRTC off (README, Browsers)'
    if (!r.ended) r.sys.out(`Pernosco is ready: open ${proxy.url}\n(from another machine: ${ssh})`)
    if (!r.ended) r.sys.out(`${browsers}. Ctrl-C stops it.`)
    return () => {
      proxy.close()
      bridge.close()
    }
  }
  const copied = fs.lstatSync(path.join(trace, 'sources'), { throwIfNoEntry: false })?.isDirectory()
  const argv = (c: Ctx) => serverArgv(c, trace, storage, sources, copied, rustLog(r))
  try {
    const code = await runContainer(r, 'server', r.cfg.images.server, argv, during)
    return died ? 1 : code
  } finally {
    // Also when serve fails after the server started (a taken port): what it wrote is cleaned all the same.
    if (storage && r.started && !r.dry) await sanitize(r, storage, 'the app server', mode)
    held?.close() // the kernel also drops the name when this process ends, however it ends
  }
}
/** The server's PID on the host once it runs, from `inspect` (0 until then), and its network namespace, for
 * the bridge to enter and check; never our own network namespace, where the bridge would reach the host's
 * port 3000. Polls for 2 minutes at most. */
async function serverPid(r: Run, c: Ctx): Promise<string[]> {
  const netns = (pid: string) => attempt(() => fs.readlinkSync(path.join(r.sys.proc, pid, 'ns/net')))
  const ours = netns('self')
  for (let i = 0; i < 1200 && !r.ended; i++) {
    const pid = (await exec(r, pidArgv(r.rt, c.name), true)).out.trim()
    if (r.dry) return ['PID', 'NETNS']
    const ns = /^[1-9]\d*$/.test(pid) ? netns(pid) : undefined
    if (ns && ns === ours) fail(`the server's PID ${pid} is in our own network namespace: refused`)
    if (ns) return [pid, ns]
    await sleep(100)
  }
  return ['', '']
}
/** Whether the server answers HTTP through the bridge yet (any status), within a second. */
const answers = (socketPath: string) => new Promise<boolean>(ok => {
  const req = HTTP.get({ socketPath, path: '/', agent: false, timeout: 1000 }, res => {
    res.destroy()
    ok(true)
  })
  req.on('error', () => ok(false)).on('timeout', () => req.destroy())
})

// ---- CLI ----
/** Every option: its argument ('' for a switch) and what it does, with its default; --help prints them. */
const OPTIONS: Record<string, [arg: string, help: string]> = {
  output: ['DIR', "where rr writes the trace (default: rr's own, $_RR_TRACE_DIR or ~/.local/share/rr)"],
  container: ['IMAGE', 'record inside IMAGE, an image of yours with rr in it (default: on this host)'],
  'skip-rr': ['', 'run neither rr pack nor rr sources (a trace that was packed already)'],
  'copy-sources': ['DIR', 'copy the sources under DIR that `rr sources` lists into the trace (repeatable)'],
  substitute: ['LIB=DIR', "LIB's sources are under DIR, copied too; LIB: e.g. libc-2.32.so (repeatable)"],
  'gdb-script': ['FILE', 'a gdb script `rr sources` runs while it loads symbols and sources'],
  'system-debuginfo': ['DIR|s3://B/P', 'unpack the distro debuginfo overlays the trace needs (repeatable)'],
  'compression-level': ['N', "the builder's zstd level, 1 to 22 (default: the builder's own)"],
  'builder-rr-log': ['SPEC', "the builder's RR_LOG, logged to TRACE/rr.log (default: none)"],
  storage: ['DIR', 'where the UI keeps your notes, made 0700 if missing (default: none, nothing kept)'],
  sources: ['DIR|FROM=TO', 'sources the UI shows, read-only; TO shown as FROM (repeatable; default: none)'],
  tunnel: ['PORT', 'listen on PORT and PORT+1, 1024 to 65534, for ssh -L (default: two free ports)'],
  'allow-webrtc-leak': ['', 'show the UI in a browser whose WebRTC is on: it could reach other hosts'],
  runtime: ['podman|docker', "default: the config's runtime, else podman if on PATH, else docker"],
  config: ['FILE', 'a JSON config, see schema.json (default: ./pernosco.json if there, else defaults)'],
  'dry-run': ['', 'print every command it would run, run nothing'],
  x: ['', 'echo each command before it runs'],
  help: ['', 'this text; COMMAND --help: that command alone'],
  log: ['LEVEL:FILE', "RUST_LOG=LEVEL, the containers' output to FILE (default: error, to the terminal)"],
  version: ['', 'the version'],
}
const GLOBAL = ['runtime', 'config', 'log', 'dry-run', 'x', 'help', 'version']
const REPEATABLE = ['copy-sources', 'substitute', 'system-debuginfo', 'sources']
const BUILD = ['compression-level', 'builder-rr-log']
const PACKAGE = ['skip-rr', 'copy-sources', 'substitute', 'gdb-script', 'system-debuginfo']
interface Command {
  args: string; options: string[]; what: string; example: string; run(r: Run): Promise<number>
}
export const COMMANDS: Record<string, Command> = {
  record: { args: '[options] -- CMD ARGS...', options: ['output', 'container'], run: record,
    what: 'rr record CMD, here or in IMAGE', example: 'record -- ./my-test --gtest_filter=Crash' },
  build: { args: '[TRACE] [options] [-- BUILDER ARGS]', options: [...PACKAGE, ...BUILD],
    what: "package-build, then only-build; TRACE: rr's latest-trace if not given",
    example: 'build ~/.local/share/rr/my-test-0',
    run: async r => (await packageBuild(r, traceArg(r), true)) || onlyBuild(r) },
  'package-build': { args: '[TRACE] [options]', options: PACKAGE,
    what: 'rr pack; copy in what rr sources lists, libthread_db.so, sources.fallback',
    example: 'package-build --copy-sources ~/src', run: r => packageBuild(r, traceArg(r)) },
  'only-build': { args: '[TRACE] [options] [-- BUILDER ARGS]', options: BUILD, run: onlyBuild,
    what: 'run the db builder container on a packaged trace', example: 'only-build --compression-level 9' },
  serve: { args: '[TRACE] [options]', options: ['storage', 'sources', 'tunnel', 'allow-webrtc-leak'],
    what: 'the app server, behind our proxy on loopback', run: serve,
    example: 'serve --sources ~/src --storage ~/pernosco-notes' },
}
/** `--help`: the commands; `COMMAND --help`: that one, each option with its default, and an example. */
function usage(cmd?: string): string {
  const opt = (k: string) => `  ${k.length > 1 ? '--' : '-'}${k} ${OPTIONS[k][0]}`.padEnd(34) + OPTIONS[k][1]
  const names = cmd ? [cmd] : Object.keys(COMMANDS)
  const synopses = names.map(n => `  ${n} ${COMMANDS[n].args}\n      ${COMMANDS[n].what}`)
  const example = cmd ? COMMANDS[cmd].example : 'record -- ./my-test, then build, then serve'
  const own = cmd ? ['Options:', ...COMMANDS[cmd].options.map(opt)] : []
  return ['Usage: pernosco.mts COMMAND [options]', ...synopses, ...own, 'Global options:', ...GLOBAL.map(opt),
    `Example: pernosco.mts ${example}`].join('\n')
}
/** The command is the first word that is not a global option's value. */
const commandName = (args: string[]) =>
  args.find((a, i) => !a.startsWith('-') && !['--runtime', '--config', '--log'].includes(args[i - 1])) ?? ''
/** Options are the command's own and the global ones; any other is refused, never ignored. What follows
 * `--` stays apart (o['--']): the command to record, or the builder's own arguments. */
function parse(args: string[]): minimist.ParsedArgs {
  const cmd = COMMANDS[commandName(args)]
  const all = [...GLOBAL, ...cmd?.options ?? []]
  const o = minimist(args, { string: all.filter(k => OPTIONS[k][0]), '--': true,
    boolean: all.filter(k => !OPTIONS[k][0]),
    unknown: a => (a.startsWith('-') ? fail(`unknown option ${a}; see --help`) : true) })
  const asked = cmd || o.help || o.version
  if (!asked && o._.length) fail(`unknown command ${JSON.stringify(o._[0])}; see --help`)
  if (!asked) fail(usage())
  o._.splice(o._.indexOf(commandName(args)), 1)
  const twice = all.find(k => Array.isArray(o[k]) && !REPEATABLE.includes(k))
  if (twice) fail(`--${twice} may be given once`)
  return o
}
/** --config FILE, else ./pernosco.json if it exists, else schema.json's defaults. What relaxes POLICY is
 * taken only from a file you name, and said in red on every run: a file found where you stand may have come
 * with a repository you cloned. */
function loadConfig(sys: Sys, file: string | undefined): Config {
  const f = file ?? path.join(sys.cwd, 'pernosco.json')
  if (file === undefined && !fs.existsSync(f)) return parseConfig('{}', '(defaults)')
  const unread = (e: Error) => fail(`config ${f}: cannot read it: ${e.message}`)
  const cfg = parseConfig(attempt(() => fs.readFileSync(f, 'utf8'), unread)!, f)
  const limits = isDeepStrictEqual(cfg.limits, parseConfig('{}', '').limits) ? '' : JSON.stringify(cfg.limits)
  const relaxing = { capAdd: cfg.capAdd.join(), cgroupParent: cfg.cgroupParent, user: cfg.user, limits }
  const relaxed = Object.entries(relaxing).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join('; ')
  if (relaxed && file === undefined) fail(`config ${f} relaxes the confinement (${relaxed}): pass --config`)
  if (relaxed) sys.err(`pernosco: config ${f} WEAKENS the confinement: ${relaxed}`, 'red')
  return cfg
}
/** RUST_LOG for both containers: --log's level, else error (as the reference). */
const rustLog = (r: Run) => String(r.o.log ?? 'error').split(':')[0]
/** --log LEVEL:FILE: the containers' output to FILE, a new file (openNew: none is replaced or followed). */
function openLog(r: Run, spec: string) {
  const [level, file = ''] = spec.split(/:(.*)/s)
  const levels = ['error', 'warn', 'info', 'debug']
  const ok = levels.includes(level) && path.isAbsolute(file)
  if (!ok) fail(`--log is LEVEL:/ABSOLUTE/FILE, LEVEL one of ${levels.join()}: not ${JSON.stringify(spec)}`)
  const taken = (e: Error) => fail(`--log ${JSON.stringify(file)}: ${e.message}; name a new file`)
  return r.dry ? undefined : attempt(() => openNew(r, file, 0o600), taken)
}
/** Parse, configure, dispatch; every UserError ends here as one line and exit 2. */
export async function main(args: string[], sys: Sys = realSys()): Promise<number> {
  if ('NO_COLOR' in sys.env) chalk.level = 0
  try {
    const o = parse(args)
    const name = commandName(args)
    if (o.version) sys.out(VERSION)
    if (o.help) sys.out(usage(COMMANDS[name] && name))
    if (o.version || o.help) return 0
    const cfg = loadConfig(sys, o.config)
    const rt = o.runtime ?? cfg.runtime ?? (onPath(sys.env, 'podman') ? 'podman' : 'docker')
    if (rt !== 'podman' && rt !== 'docker') fail(`--runtime must be podman or docker, not "${rt}"`)
    const r: Run = { sys, cfg, rt, dry: o['dry-run'], echo: o.x, o, interrupted: false }
    if (o.log !== undefined) r.log = openLog(r, o.log)
    return await COMMANDS[name].run(r)
  } catch (e) {
    if (!(e instanceof UserError)) throw e
    sys.err('pernosco: ' + e.message, 'red')
    return 2
  }
}
/** The last line of defence: whatever throws, no container of ours outlives this process. */
function crashed(e: unknown) {
  for (const { rm, dir } of LIVE.values()) {
    spawnSync(rm[0], rm.slice(1), { stdio: 'ignore', timeout: 30_000 })
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const why = String((e as Error)?.stack ?? e).replace(CONTROL, '')
  // Deno without a permission: its message names the flag (README, "Use it in your own repository").
  const deno = /^(NotCapable|PermissionDenied)\b/.test(why)
  if (deno) process.stderr.write(`pernosco: Deno: ${why.split('\n')[0]}\n`)
  else process.stderr.write(`pernosco: internal error; its containers were removed: ${why}\n`)
  process.exit(deno ? 2 : 70)
}
// Run directly, or through a symlink to this file (SELF is the file's real path).
const at = process.argv.findIndex((a, i) => i > 0 && i < 3 && attempt(() => fs.realpathSync(a)) === SELF)
if (at > 0) {
  process.on('uncaughtException', crashed).on('unhandledRejection', crashed)
  process.stdout.on('error', () => {}) // a reader that left (`--dry-run | head`) ends our output, not the run
  main(process.argv.slice(at + 1)).then(code => {
    process.exitCode = code
    setTimeout(() => process.exit(), 2000).unref() // a stuck socket or child never keeps us alive
  }, crashed)
}
