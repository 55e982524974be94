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
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import minimist from 'minimist'
import chalk from 'chalk'
import { Ajv } from 'ajv'

const SELF = fileURLToPath(import.meta.url)
export const VERSION = '0.1.0'
export type Runtime = 'podman' | 'docker'
export interface Config {
  runtime?: Runtime; images: { builder: string; server: string }; cgroupParent?: string; capAdd: string[]
  limits: { memory: string; cpus: number; pids: number; tmp: string }
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
  ['A private, size-capped /tmp; exec because the builder runs tools from it.', c => ['--tmpfs', `/tmp:rw,exec,nosuid,nodev,mode=1777,size=${c.cfg.limits.tmp}`]],
  ['An init as PID 1 reaps zombies and forwards signals, so a stop is prompt.', () => ['--init']],
  ['A fixed hostname: the host\'s name is not disclosed.', () => ['--hostname', 'pernosco']],
  ['A private IPC namespace: no shared memory with the host or other containers.', () => ['--ipc', 'private']],
  ['Limits: memory (no extra swap), CPUs, processes (a fork storm stops here).', c => ['--memory', c.cfg.limits.memory, '--memory-swap', c.cfg.limits.memory, '--cpus', String(c.cfg.limits.cpus), '--pids-limit', String(c.cfg.limits.pids)]],
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
export const bindMount = (src: string, dst: string, ro = false) => ['--mount', `type=bind,src=${src},dst=${dst}${ro ? ',readonly' : ''}`]
export const envFlags = (env: Record<string, string | undefined>) => Object.entries(env).flatMap(([k, v]) => v === undefined ? [] : ['--env', `${k}=${v}`])

export interface BuildOpts { shards?: number; compression?: number; checkTrace?: boolean; skipGdbAddIndex?: boolean; rrLog?: string }
/** The db builder: the trace dir is its only mount. No `--empty-umask`: files keep your umask. */
export function builderArgv(c: Ctx, trace: string, o: BuildOpts): string[] {
  return [c.rt, 'create', ...confinement(c), ...bindMount(trace, '/trace'),
    ...envFlags({ RUST_BACKTRACE: 'full', RR_LOG: o.rrLog, RR_LOG_FILE: o.rrLog && '/trace/rr.log', PERNOSCO_ZSTD_COMPRESSION_LEVEL: o.compression?.toString() }),
    '--entrypoint', 'db_builder', c.cfg.images.builder,
    ...(o.shards ? ['--shards', String(o.shards)] : []), ...(o.checkTrace ? ['--check-trace'] : []), 'on-prem', '/trace',
    ...(o.skipGdbAddIndex ? ['--skip-gdb-add-index'] : [])]
}

/** rr record in the user's own image: the same confinement plus SYS_PTRACE; the trace dir is its only mount. */
export function recordContainerArgv(c: Ctx, out: string, image: string, cmd: string[]): string[] {
  const cc = { ...c, cfg: { ...c.cfg, capAdd: ['SYS_PTRACE'] } }
  return [c.rt, 'create', ...confinement(cc), ...bindMount(out, '/trace'), ...envFlags({ _RR_TRACE_DIR: '/trace' }), image, 'rr', 'record', ...cmd]
}

/** rr record on the host; `env` sets rr's own trace-dir variable only when --output is given. */
export const recordArgv = (out: string | undefined, cmd: string[]) => [...(out ? ['env', `_RR_TRACE_DIR=${out}`] : []), 'rr', 'record', ...cmd]
export const startArgv = (rt: Runtime, name: string) => [rt, 'start', '--attach', name]
export const rmArgv = (rt: Runtime, name: string) => rt === 'podman' ? [rt, 'rm', '--force', '--time', '0', name] : [rt, 'rm', '--force', name]

// ---- Executors: the only code that spawns; argv arrays, never a shell. ----
export interface Result { code: number; out: string }
export interface Sys {
  env: NodeJS.ProcessEnv; uid: number; gid: number; cwd: string; proc: string
  run(argv: readonly string[], capture?: boolean): Promise<Result>
  out(line: string): void; err(line: string): void; onSignal(f: () => void): () => void
}
export const realSys = (): Sys => ({
  env: process.env, uid: process.getuid!(), gid: process.getgid!(), cwd: process.cwd(), proc: '/proc',
  run: (argv, capture) => new Promise(res => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['inherit', capture ? 'pipe' : 'inherit', 'inherit'] })
    let out = ''
    p.stdout?.on('data', d => { out += d })
    p.on('error', e => res({ code: 127, out: e.message }))
    p.on('close', (code, sig) => res({ code: code ?? 128 + os.constants.signals[sig!], out }))
  }),
  out: l => { process.stdout.write(l + '\n') }, err: l => { process.stderr.write(l + '\n') },
  onSignal: f => { process.on('SIGINT', f); process.on('SIGTERM', f); return () => { process.off('SIGINT', f); process.off('SIGTERM', f) } },
})

/** Shell-quote for display, so --dry-run and -x print pasteable commands. */
export const quote = (argv: readonly string[]) => argv.map(a => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`).join(' ')

/** One invocation: its config, runtime, options and the host it runs on. */
export interface Run { sys: Sys; cfg: Config; rt: Runtime; dry: boolean; echo: boolean; o: minimist.ParsedArgs; interrupted: boolean }

async function exec(r: Run, argv: readonly string[], capture = false): Promise<Result> {
  if (r.dry || r.echo) (r.dry ? r.sys.out : r.sys.err)((r.dry ? '' : '+ ') + quote(argv))
  return r.dry ? { code: 0, out: '' } : r.sys.run(argv, capture)
}
const onPath = (env: NodeJS.ProcessEnv, bin: string) => (env.PATH ?? '').split(':').some(d => d && fs.existsSync(path.join(d, bin)))

/** A private 0700 directory for the seccomp profile; dry runs keep it so printed commands work. */
function privateDir(r: Run): { dir: string; seccomp: string; done(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pernosco-')), seccomp = path.join(dir, 'seccomp.json')
  fs.writeFileSync(seccomp, SECCOMP, { mode: 0o600, flag: 'wx' })
  if (r.dry) r.sys.out(`# seccomp profile written to ${seccomp}`)
  return { dir, seccomp, done: () => { if (!r.dry) fs.rmSync(dir, { recursive: true, force: true }) } }
}

/** create → start --attach → rm, with Ctrl-C/SIGTERM removing the container. Returns its exit code. */
async function runContainer(r: Run, kind: string, build: (c: Ctx) => string[]): Promise<number> {
  if (!r.dry && !onPath(r.sys.env, r.rt)) fail(`${r.rt} is not on PATH: install it, or choose the other with --runtime`)
  const tmp = privateDir(r), name = `pernosco-${kind}-${crypto.randomBytes(6).toString('hex')}`
  const c: Ctx = { rt: r.rt, cfg: r.cfg, rootless: r.sys.uid !== 0, uid: r.sys.uid, gid: r.sys.gid, name, seccomp: tmp.seccomp }
  const off = r.sys.onSignal(() => { r.interrupted = true; void r.sys.run(rmArgv(r.rt, name), true) })
  try {
    const created = await exec(r, build(c), true)
    if (created.code || r.interrupted) return r.interrupted ? 130 : created.code
    const { code } = await exec(r, startArgv(r.rt, name))
    return r.interrupted ? 130 : code
  } finally {
    await exec(r, rmArgv(r.rt, name), true)
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

function onlyBuild(r: Run, trace: string): Promise<number> {
  const o: BuildOpts = { shards: checkInt(r.o.shards, '--shards', 1, 1024), compression: checkInt(r.o['compression-level'], '--compression-level', 1, 22),
    checkTrace: r.o['check-trace'], skipGdbAddIndex: r.o['skip-gdb-add-index'], rrLog: r.o['builder-rr-log'] }
  return runContainer(r, 'builder', c => builderArgv(c, trace, o))
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
  if (dir) return runContainer(r, 'record', c => recordContainerArgv(c, dir, r.o.container, cmd))
  if (!r.dry && !onPath(r.sys.env, 'rr')) fail('rr is not on PATH: install rr (https://rr-project.org), or record in your image with --container IMAGE')
  return (await exec(r, recordArgv(out, cmd))).code
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
  'only-build': { usage: `only-build [TRACE] ${BUILD_USAGE}   run the db builder container`, ...BUILD_OPTS, run: r => onlyBuild(r, traceArg(r)) },
}
const GLOBAL = { string: ['runtime', 'config'], boolean: ['dry-run', 'x', 'help', 'version'] }
const GLOBAL_USAGE = 'Global options: --runtime podman|docker  --config FILE  --dry-run (print commands, run nothing)  -x (echo commands)  --help  --version'

function usage(cmd?: string): string {
  const cmds = cmd ? [COMMANDS[cmd]] : Object.values(COMMANDS)
  return ['Usage: npx zx pernosco.mts COMMAND [options]', ...cmds.map(c => '  ' + c.usage.replace(/ {3}/, '\n      ')), GLOBAL_USAGE].join('\n')
}

/** The command is the first word that is not a global option's value. */
const commandName = (args: string[]) => args.find((a, i) => !a.startsWith('-') && !['--runtime', '--config'].includes(args[i - 1])) ?? ''

function parse(args: string[]): minimist.ParsedArgs {
  const cmd = COMMANDS[commandName(args)]
  const o = minimist(args, { string: [...GLOBAL.string, ...cmd?.string ?? []], boolean: [...GLOBAL.boolean, ...cmd?.boolean ?? []], '--': true,
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
  const i = process.argv.findIndex(a => path.resolve(a) === SELF)
  process.exitCode = await main(process.argv.slice(i + 1))
}
