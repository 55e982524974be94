// Real-podman test setup: machine quirks live here, never in pernosco.mts's flags.
// (These VMs: crun fails on hybrid cgroups, RLIMIT_NOFILE cannot be raised.)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { ROOT, tmpdir, HOST_TMPDIR } from './helpers.mts'

export const HAVE_PODMAN = spawnSync('podman', ['--version']).status === 0
const ROOT_USER = process.getuid!() === 0
/** As root (CI), the containers run as nobody: pernosco.mts never runs them as uid 0, and is told whom in the
 * config. What a container must write is handed to that user. Not root: they run as you. */
export const RUN_AS = ROOT_USER ? { uid: 65534, gid: 65534 } : { uid: process.getuid!(), gid: process.getgid!() }
export const USER = ROOT_USER ? { user: `${RUN_AS.uid}:${RUN_AS.gid}` } : {}
/** A control's `podman run` options for that user, as the wrapper maps it: rootless, --user alone would be a
 * subordinate uid, which cannot write your trace; keep-id runs it as you. */
export const RUN_AS_ARGS = ROOT_USER ? ['--user', `${RUN_AS.uid}:${RUN_AS.gid}`] : ['--userns=keep-id']
export function handTo<T extends string>(d: T): T {
  if (!ROOT_USER) return d
  spawnSync('chown', ['-R', `${RUN_AS.uid}:${RUN_AS.gid}`, d])
  // the clean-up after a container runs as that user too (issue 27): it must reach the directory
  if (path.basename(path.dirname(d)).startsWith('pmts-')) fs.chmodSync(path.dirname(d), 0o711)
  return d
}
export const BUILDER_IMAGE = 'localhost/pernosco-test-builder:1'
export const SERVER_IMAGE = 'localhost/pernosco-test-server:1'
/** The stand-in app server: busybox httpd on 0.0.0.0:3000 serving test/fixtures/www (the hostile page). */
export function importServerImage(tag = SERVER_IMAGE) {
  const www = path.join(ROOT, 'test/fixtures/www')
  importImage(tag, { 'usr/local/bin/app_server': path.join(ROOT, 'test/fixtures/app_server'),
    ...Object.fromEntries(fs.readdirSync(www).map(f => [`www/${f}`, path.join(www, f)])) }, ['ENTRYPOINT ["/usr/local/bin/app_server"]'])
}

let confDir: string | undefined
/** The environment for podman and the wrapper: quirks file, stand-in rr first on PATH. */
export function podmanEnv(): NodeJS.ProcessEnv {
  confDir ??= tmpdir('pmts-conf-')
  const conf = path.join(confDir, 'containers.conf'), bin = path.join(confDir, 'bin')
  if (!fs.existsSync(conf)) {
    fs.writeFileSync(conf, '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n')
    fs.mkdirSync(bin); fs.copyFileSync(path.join(ROOT, 'test/fixtures/rr'), path.join(bin, 'rr')); fs.chmodSync(path.join(bin, 'rr'), 0o755)
    // As root, rr runs as the containers' user (issue 27): it must reach the stand-in and write its log.
    fs.chmodSync(confDir, 0o755); fs.writeFileSync(path.join(confDir, 'rr.log'), ''); fs.chmodSync(path.join(confDir, 'rr.log'), 0o666)
  }
  return { ...process.env, CONTAINERS_CONF: conf, PATH: `${bin}:${process.env.PATH}`, RR_STANDIN_LOG: path.join(confDir, 'rr.log'), NO_COLOR: '1' }
}
export const rrLog = () => { const f = podmanEnv().RR_STANDIN_LOG!; return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '' }

export function podman(...args: string[]) {
  const p = spawnSync('podman', args, { env: podmanEnv(), encoding: 'utf8' })
  if (p.status !== 0) throw new Error(`podman ${args.join(' ')}: ${p.stderr}`)
  return p.stdout
}

/** The images this process imported: removed when it exits, so that no test or demo leaves one behind. */
const imported = new Set<string>()
/** Removes the images this process imported (the demo calls it before its last line; exit calls it too). */
export function removeImported() {
  // Not podmanEnv: its containers.conf is in this process's TMPDIR, which may be gone by then (rmi needs none
  // of it, but podman needs a TMPDIR that exists).
  const env = { ...process.env, TMPDIR: HOST_TMPDIR }
  if (imported.size) spawnSync('podman', ['rmi', '--force', '--ignore', ...imported], { stdio: 'ignore', env })
  imported.clear()
}
process.on('exit', removeImported)
/** A busybox-static rootfs with extra files, imported as a local image (no registry). */
export function importImage(tag: string, files: Record<string, string>, change: string[] = []) {
  const root = tmpdir('pmts-root-')
  fs.chmodSync(root, 0o755) // the image's / : a mkdtemp 0700 would lock out every user but root
  for (const d of ['bin', 'tmp', 'trace', 'usr/local/bin', 'proc', 'dev', 'etc']) fs.mkdirSync(path.join(root, d), { recursive: true })
  fs.chmodSync(path.join(root, 'tmp'), 0o1777) // as in real images
  fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox')); fs.chmodSync(path.join(root, 'bin/busybox'), 0o755)
  for (const c of spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean))
    if (c !== 'busybox') fs.symlinkSync('busybox', path.join(root, 'bin', c))
  for (const [f, src] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true })
    fs.copyFileSync(src, path.join(root, f)); fs.chmodSync(path.join(root, f), 0o755)
  }
  // Readable by any container user whatever the umask (rootless keep-id runs you as "other" to the image's
  // files), and owned by the image's root whoever builds it.
  const tar = path.join(tmpdir('pmts-tar-'), 'root.tar')
  if (spawnSync('chmod', ['-R', 'a+rX', root]).status !== 0) throw new Error('chmod failed')
  if (spawnSync('tar', ['-C', root, '--owner=0', '--group=0', '--numeric-owner', '-cf', tar, '.']).status !== 0) throw new Error('tar failed')
  spawnSync('podman', ['rmi', '--force', '--ignore', tag], { env: podmanEnv() }) // no dangling copy of an earlier run
  imported.add(tag) // before: an import stopped by Ctrl-C may still have made the image
  podman('import', '--change', 'ENV PATH=/usr/local/bin:/bin', ...change.flatMap(c => ['--change', c]), tar, tag)
}

/** An argv prefix that shows what it runs perf_event_paranoid = 1, in a private mount namespace only (the
 * wrapper checks it before it runs rr; these rr are stand-ins, so the machine's setting stays). As root one
 * unshare; as a normal user a user namespace in which it may mount, and inside it a second one that maps the
 * user back to itself, so the wrapper and the stand-in rr run as who they are. */
export function paranoidOne(dir: string): string[] {
  const flag = path.join(dir, 'paranoid')
  fs.writeFileSync(flag, '1\n')
  fs.chmodSync(flag, 0o644)
  const bind = ['sh', '-c', 'mount --bind "$0" /proc/sys/kernel/perf_event_paranoid && exec "$@"', flag]
  if (process.getuid!() === 0) return ['unshare', '--mount', '--', ...bind]
  const me = [`--map-user=${process.getuid!()}`, `--map-group=${process.getgid!()}`]
  return ['unshare', '--user', '--map-root-user', '--mount', '--', ...bind, 'unshare', '--user', ...me, '--']
}
/** The wrapper's containers (`pernosco-*`) that mount something from this process's TMPDIR (every trace and
 * storage a test or the demo makes is there): its own, never another run's on the same machine. */
export function pernoscoContainers(): string[] {
  const names = podman('ps', '-a', '--format', '{{.Names}}').split('\n').filter(n => n.startsWith('pernosco-'))
  const format = '{{range .Mounts}}{{.Source}}\n{{end}}'
  const mounts = (n: string) => spawnSync('podman', ['inspect', '--format', format, n], { env: podmanEnv(), encoding: 'utf8' }).stdout
  const own = os.tmpdir() + '/'
  // (a name that is gone by the time it is inspected mounts nothing: it is not left)
  return names.filter(n => (mounts(n) ?? '').split('\n').some(m => m.startsWith(own)))
}
export const WRAPPER = [process.execPath, '--import', 'tsx', path.join(ROOT, 'pernosco.mts')]

/** `serve` on a trace under real podman, for the browser fixtures: the wrapper, its exit, and the URL it printed
 * (undefined if it was not ready within 30 s). */
export async function serveUntilReady(cfg: string, trace: string, extra: string[] = []) {
  const w = spawn(WRAPPER[0], [...WRAPPER.slice(1), '--config', cfg, 'serve', trace, ...extra], { env: podmanEnv(), stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise(ok => w.on('exit', ok))
  let out = ''
  w.stdout!.on('data', d => { out += d })
  for (let i = 0; i < 300 && !out.includes('ready'); i++) await new Promise(r => setTimeout(r, 100))
  return { w, exited, url: /open (\S+)/.exec(out)?.[1], out }
}
