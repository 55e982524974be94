// Shared test helpers: a fake host (Sys) that records every command instead of running it.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import net from 'node:net'
import { spawnSync } from 'node:child_process'
import http from 'node:http'
import { BUILT, type Bridge, type Result, type Sys, type Io } from '../pernosco.mts'

/** What the bridge is: a forwarder from a unix socket (by path) to a TCP port on loopback, here in-process;
 * returns the socket's path. `delay` holds each upstream connect that long (ms); `drop` closes each
 * connection at once; `seen` counts connections. Closed when the test process exits. */
export function forwarder(port: number, o: { delay?: number; drop?: boolean; at?: string; seen?: { n: number } } = {}): string {
  const at = o.at ?? path.join(tmpdir(), 'bridge.sock')
  const srv = net.createServer(c => {
    if (o.seen) o.seen.n++
    if (o.drop) return c.destroy()
    setTimeout(() => {
      const s = net.connect(port, '127.0.0.1')
      for (const [a, b] of [[c, s], [s, c]]) a.on('error', () => b.destroy()).on('close', () => b.destroy())
      c.pipe(s).pipe(c)
    }, o.delay ?? 0).unref()
  }).listen(at)
  srv.unref()
  return at
}
/** A hostile raw-TCP app server: for each request head it calls `answer` with the request's path and the
 * socket, which it answers by hand (or not at all). Its sockets are kept in `live`. */
export function rawServer(live: Set<net.Socket>, answer: (p: string, s: net.Socket) => void): net.Server {
  return net.createServer(s => {
    live.add(s.on('close', () => live.delete(s)).on('error', () => {}))
    let got = ''
    s.on('data', d => {
      got += d
      if (!got.includes('\r\n\r\n')) return
      const p = got.split(' ')[1]
      got = ''
      answer(p, s)
    })
  })
}
/** A fake Sys.bridge: the forwarder above at the socket path its argv names, to a TCP port. */
export const fakeBridge = (port: number) => (argv: readonly string[]): Bridge => {
  forwarder(port, { at: argv.at(-1) })
  return { ready: Promise.resolve(), died: new Promise(() => {}), close: () => {} }
}

export const ROOT = path.resolve(import.meta.dirname, '..')

/** The mode of the read-only copies package-build makes: 0444 less your umask, which they keep (a user with
 * umask 077 gets 0400). Read from /proc: process.umask() with no argument is deprecated. */
export const READ_ONLY = 0o444 & ~parseInt(/^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1], 8)

/** An argv prefix that runs a browser fixture in a network namespace of its own, so that nothing it sends
 * can leave it. A normal user may make one only inside a user namespace of its own (uid 0 in there, still
 * you outside): enough for a fixture that runs no podman. */
export const OWN_NETNS = process.getuid!() === 0 ? ['unshare', '--net', '--']
  : ['unshare', '--user', '--map-root-user', '--net', '--']

/** This process's own TMPDIR, inherited by everything it starts (the wrapper makes its private directory
 * there): what a test finds left behind in it is its own, never another user's or another run's
 * /tmp/pernosco-*. Mode 0711, as /tmp is searchable: as root the containers' user must reach the traces
 * below it. Removed when the process exits, after the cleanups below. */
export const HOST_TMPDIR = os.tmpdir()
const RUN_DIR = fs.mkdtempSync(path.join(HOST_TMPDIR, 'pmts-run-'))
fs.chmodSync(RUN_DIR, 0o711)
process.env.TMPDIR = RUN_DIR
/** The private directories (`pernosco-*`) the wrapper made in this process's TMPDIR and left there. */
export const ownTmpDirs = () => fs.readdirSync(RUN_DIR).filter(d => d.startsWith('pernosco-')).sort()

/** A fresh temp dir, removed by the caller's cleanup list. */
export function tmpdir(prefix = 'pmts-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }))
  return d
}
const cleanups: (() => void)[] = []
/** Runs every cleanup now (the demo, before its last line), then removes this process's TMPDIR. */
export function cleanUp() {
  for (const c of cleanups.splice(0)) try { c() } catch { /* best effort */ }
  fs.rmSync(RUN_DIR, { recursive: true, force: true })
}
process.on('exit', cleanUp)

export interface Fake { sys: Sys; calls: string[][]; out: string[]; err: string[]; fire(): void; dir: string; ios: (Io | undefined)[] }

/** As root, a trace the containers' user (uid 1000 through sudo) may reach and write: package-build writes
 * into it with that user's rights (issue 31's attack). */
export function forUser(t: string): string {
  spawnSync('chown', ['-R', '1000:1000', t])
  fs.chmodSync(path.dirname(t), 0o711)
  return t
}
/** A host with podman, docker and rr on PATH, perf_event_paranoid = paranoid, and answers per argv[1]. */
export function fakeSys(opts: { uid?: number; sudo?: boolean; paranoid?: string; answer?: (argv: readonly string[]) => Result | Promise<Result> | undefined; warn?: (argv: readonly string[]) => string | undefined; path?: string[]; bridge?: (argv: readonly string[]) => Bridge } = {}): Fake {
  const dir = tmpdir(), bin = path.join(dir, 'bin'), proc = path.join(dir, 'proc')
  fs.mkdirSync(bin); fs.mkdirSync(path.join(proc, 'sys/kernel'), { recursive: true })
  for (const b of opts.path ?? ['podman', 'docker', 'rr', 'nsenter']) fs.writeFileSync(path.join(bin, b), '')
  if (opts.paranoid !== 'absent') fs.writeFileSync(path.join(proc, 'sys/kernel/perf_event_paranoid'), (opts.paranoid ?? '1') + '\n')
  const calls: string[][] = [], out: string[] = [], err: string[] = [], ios: (Io | undefined)[] = []
  let created: readonly string[] = []
  /** An honest runtime: inspect shows exactly what create asked for. */
  const honest = (argv: readonly string[]): Result => {
    if (argv[1] === 'create') created = argv
    const vals = (f: string) => created.flatMap((a, i) => a === f ? [created[i + 1]] : [])
    if (argv[1] === 'image') return { code: 0, out: `[{"Id":"sha256:${'c'.repeat(64)}","Config":{"Env":["PATH=/usr/local/bin:/bin"]}}]` }
    if (argv[1] !== 'inspect' || argv.includes('--format')) return { code: 0, out: '' }
    return { code: 0, out: JSON.stringify([{
      Mounts: vals('--mount').map(m => { const o = Object.fromEntries(m.split(',').map(kv => kv.split('='))); return { Type: 'bind', Source: o.src, Destination: o.dst, RW: !('readonly' in o) } }),
      HostConfig: { NetworkMode: vals('--network')[0], CapAdd: vals('--cap-add'), SecurityOpt: vals('--security-opt'), ReadonlyRootfs: created.includes('--read-only'), Privileged: false,
        PidMode: '', IpcMode: vals('--ipc')[0], UTSMode: '', UsernsMode: created.includes('--userns=keep-id') ? 'keep-id' : '', Devices: [] },
      Image: 'c'.repeat(64), Config: { User: vals('--user')[0] ?? `${opts.uid ?? 1000}:${opts.uid ?? 1000}`, Env: ['PATH=/usr/local/bin:/bin', ...vals('--env')] } }]) }
  }
  let sig: (() => void) | undefined
  const sys: Sys = {
    // root came through sudo from uid 1000 unless told otherwise (the containers never run as uid 0)
    env: { PATH: bin, HOME: path.join(dir, 'home'), ...opts.uid === 0 && opts.sudo !== false ? { SUDO_UID: '1000', SUDO_GID: '1000' } : {} }, uid: opts.uid ?? 1000, gid: opts.uid ?? 1000, cwd: dir, proc,
    run: async (argv, _capture, _tag, io) => {
      calls.push([...argv])
      ios.push(io)
      const res = await (opts.answer?.(argv) ?? honest(argv))
      // A running server's PID has a network namespace of its own (serve checks it, and the bridge re-checks it).
      const pid = argv.includes('{{.State.Pid}}') && /^[1-9]\d*$/.test(res.out.trim()) ? res.out.trim() : undefined
      if (pid && !fs.existsSync(path.join(proc, pid))) { fs.mkdirSync(path.join(proc, pid, 'ns'), { recursive: true }); fs.symlinkSync(`net:[${pid}]`, path.join(proc, pid, 'ns/net')) }
      const warning = opts.warn?.(argv) // what the runtime prints on stderr with this answer
      return warning === undefined ? res : { ...res, err: warning }
    },
    out: l => { out.push(l); const m = /^# seccomp profile written to (.*)\/seccomp\.json$/.exec(l); if (m) cleanups.push(() => fs.rmSync(m[1], { recursive: true, force: true })) },
    err: l => { err.push(l) },
    bridge: argv => { calls.push(['BRIDGE', ...argv]); return (opts.bridge ?? fakeBridge(1))(argv) },
    watch: () => () => {}, // the watchdog: the real one is tested in e2e-podman (a SIGKILLed wrapper)
    onSignal: f => { sig = f; return () => { sig = undefined } },
  }
  return { sys, calls, out, err, fire: () => sig?.(), dir, ios }
}

/** README's Kubernetes manifest (section "On a cluster"): the yaml block that starts with its file name. */
export function readmeManifest(): string {
  const block = /```yaml\n(# pernosco-db-builder\.yaml:[\s\S]*?)```/.exec(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'))
  if (!block) throw new Error('README has no pernosco-db-builder.yaml block')
  return block[1]
}

/** A trace directory with a couple of files in it, built (the marker `build` writes: serve refuses a trace
 * without it) unless told otherwise. */
export function traceDir(built = true): string {
  const t = path.join(tmpdir(), 'trace')
  fs.mkdirSync(t); fs.writeFileSync(path.join(t, 'version'), '85\n')
  if (built) fs.writeFileSync(path.join(t, BUILT), 'localhost/test-builder\n')
  return t
}

/** GET a URL that `serve` printed: *.localhost is loopback in browsers (RFC 6761) but not to node's resolver,
 * so connect to 127.0.0.1 and send the printed name as Host. */
export function getServed(url: string, headers: Record<string, string> = {}): Promise<http.IncomingMessage & { body: string }> {
  const u = new URL(url)
  return new Promise((ok, no) => http.get({ host: '127.0.0.1', port: u.port, path: u.pathname + u.search, agent: false, headers: { host: u.host, ...headers } },
    r => { let b = ''; r.on('data', d => { b += d }).on('end', () => ok(Object.assign(r, { body: b }))) }).on('error', no))
}

/** The hostile stand-in page (test/fixtures/www) from a plain server on 127.0.0.1:port, as the reference
 * wrapper would serve it: the control run of the browser tests. */
export async function serveWwwPlainly(port: number): Promise<http.Server> {
  const www = path.join(ROOT, 'test/fixtures/www')
  const plain = http.createServer((req, res) => {
    const f = path.join(www, path.basename(new URL(req.url!, 'http://x').pathname) || 'index.html')
    if (!fs.existsSync(f)) return res.writeHead(404).end()
    res.writeHead(200, { 'content-type': f.endsWith('.html') ? 'text/html' : 'text/plain' }).end(fs.readFileSync(f))
  })
  await new Promise<void>(ok => plain.listen(port, '127.0.0.1', ok))
  return plain
}
