// The hostile suite's sandbox and driver. Started by test/hostile.test.mts as root under
// `unshare --net --mount --fork`: everything below lives in network and mount namespaces the test
// made, with its own resolv.conf (naming the canary DNS server), an "outside" host in a second
// namespace over a veth pair, and canaries on loopback. Nothing can leave the machine even if
// confinement fails. For each runtime it runs `build` and `serve` with the hostile images, then a
// control with deliberately weak flags, and prints one JSON line: rows {runtime, command, probe, channel, result}.
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { parseAllDocuments } from 'yaml'
import { ROOT, getServed, readmeManifest } from '../helpers.mts'
import { BUILT, GIVEN, SECCOMP } from '../../pernosco.mts'

const sh = (cmd: string, ...args: string[]) => {
  const p = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 })
  if (p.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${p.stderr}`)
  return p.stdout
}
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
/** Every wait is bounded: a hung step becomes a row, never a hung suite. */
const within = <T,>(p: Promise<T>, ms: number, dflt: T) => Promise.race([p, sleep(ms).then(() => dflt)])
const t0 = Date.now(), step = (what: string) => process.stderr.write(`# hostile +${((Date.now() - t0) / 1000).toFixed(1)}s ${what}\n`)
const runtimes = process.argv.slice(2)
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'pmts-hostile-'))
fs.chmodSync(base, 0o755)
const children: ChildProcess[] = []
const rows: { runtime: string; command: string; probe: string; channel: string; result: string }[] = []

// ---- the sandbox ----
sh('mount', '--make-rprivate', '/')
fs.writeFileSync(path.join(base, 'resolv.conf'), 'nameserver 10.200.0.2\n')
sh('mount', '--bind', path.join(base, 'resolv.conf'), '/etc/resolv.conf')
// What the runtime's own configuration adds (issue 27): an /etc/hosts entry podman would copy in, and a
// mounts.conf (rootful: /etc/containers, here in our mount namespace only; rootless: the user's, in setup)
// naming a host directory with a secret in it. The probes' secret-file grep looks through /run.
fs.writeFileSync(path.join(base, 'hosts'), fs.readFileSync('/etc/hosts', 'utf8') + '10.200.0.9 pmts-host-entry\n')
sh('mount', '--bind', path.join(base, 'hosts'), '/etc/hosts')
const mountsSecret = path.join(base, 'mounts-secret'), mountsConf = `${mountsSecret}:/run/pmts-mounts\n`
fs.mkdirSync(mountsSecret); fs.writeFileSync(path.join(mountsSecret, 'secret.txt'), 'T-secret-file\n'); fs.chmodSync(mountsSecret, 0o755)
fs.cpSync('/etc/containers', path.join(base, 'etc-containers'), { recursive: true })
sh('mount', '-t', 'tmpfs', 'pmts-etc-containers', '/etc/containers')
fs.cpSync(path.join(base, 'etc-containers'), '/etc/containers', { recursive: true })
fs.writeFileSync('/etc/containers/mounts.conf', mountsConf)
sh('ip', 'link', 'set', 'lo', 'up')
fs.mkdirSync('/run/netns', { recursive: true }); sh('mount', '-t', 'tmpfs', 'pmts-netns', '/run/netns') // named namespaces stay in our mount namespace
sh('ip', 'netns', 'add', 'pmts-outside')
sh('ip', 'link', 'add', 'pmts-in', 'type', 'veth', 'peer', 'name', 'pmts-out')
sh('ip', 'link', 'set', 'pmts-out', 'netns', 'pmts-outside')
sh('ip', 'addr', 'add', '10.200.0.1/24', 'dev', 'pmts-in'); sh('ip', 'link', 'set', 'pmts-in', 'up')
for (const a of [['addr', 'add', '10.200.0.2/24', 'dev', 'pmts-out'], ['link', 'set', 'pmts-out', 'up'], ['link', 'set', 'lo', 'up'], ['route', 'add', 'default', 'via', '10.200.0.1']])
  sh('ip', 'netns', 'exec', 'pmts-outside', 'ip', ...a)
step('sandbox ready')
let hits: string[] = []
async function canary(args: string[]) {
  const p = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(p)
  let ready = false
  let partial = '' // a line may arrive in two chunks
  p.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const lines = (partial + d).split('\n')
    partial = lines.pop()!
    for (const l of lines) { if (l === 'READY') ready = true; else if (l.startsWith('HIT ')) hits.push(l.slice(4)) }
  })
  for (let i = 0; i < 100 && !ready; i++) await sleep(50)
  if (!ready) throw new Error(`canary ${args.join(' ')} did not start`)
}
const node = [process.execPath, '--import', 'tsx', path.join(ROOT, 'test/hostile/canary.mts')]
await canary(['ip', 'netns', 'exec', 'pmts-outside', ...node, 'outside'])
await canary([...node, 'host'])
const icmpIn = () => +/Icmp: (?:\d+ ){7}(\d+)/.exec(sh('ip', 'netns', 'exec', 'pmts-outside', 'cat', '/proc/net/snmp').split('\n').filter(l => l.startsWith('Icmp:'))[1])![1]
step('canaries ready')
const hostSleeper = spawn('sleep', ['31337'], { stdio: 'ignore' }); children.push(hostSleeper)

// ---- the images: busybox-static, the static probe, the hostile script as both entry points ----
const root = path.join(base, 'rootfs')
for (const d of ['bin', 'tmp', 'trace', 'usr/local/bin', 'proc', 'dev', 'etc', 'www', 'pernosco', 'sources']) fs.mkdirSync(path.join(root, d), { recursive: true })
fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'))
for (const c of sh('/bin/busybox', '--list').split('\n').filter(c => c && c !== 'busybox')) fs.symlinkSync('busybox', path.join(root, 'bin', c))
sh('cc', '-static', '-O2', '-o', path.join(root, 'probe'), path.join(ROOT, 'test/hostile/probe.c'))
sh('cc', '-static', '-O2', '-o', path.join(root, 'setid'), path.join(ROOT, 'test/hostile/setid.c'))
for (const e of ['db_builder', 'app_server']) fs.copyFileSync(path.join(ROOT, 'test/hostile/hostile'), path.join(root, 'usr/local/bin', e))
fs.writeFileSync(path.join(root, 'www/index.html'), '<h1>hostile</h1>\n')
sh('chmod', '-R', 'a+rX', root); sh('chmod', '755', path.join(root, 'usr/local/bin/db_builder'), path.join(root, 'usr/local/bin/app_server'))
// /tmp as in real images: docker copies the image's /tmp mode onto the tmpfs (mode= is ignored; measured with
// docker 20.10), so a 0755 /tmp would lock out the containers' non-root user.
fs.chmodSync(path.join(root, 'tmp'), 0o1777)
const tar = path.join(base, 'rootfs.tar')
sh('tar', '-C', root, '-cf', tar, '.'); fs.chmodSync(tar, 0o644)
const IMAGE = 'localhost/pernosco-hostile:1'
step('image rootfs ready')
// The kernel's own answer for each socket family, outside any container: what the control must match (issue 27).
for (const l of sh(path.join(root, 'probe'), 'T', 'af-alg:family:38', 'af-vsock:family:40').trim().split('\n')) {
  const [probe, ...result] = l.split(' ')
  rows.push({ runtime: 'host', command: 'control', probe, channel: 'kernel', result: result.join(' ') })
}

// ---- the runtimes ----
const conf = path.join(base, 'containers.conf')
fs.writeFileSync(conf, '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n'); fs.chmodSync(conf, 0o644)
const U = 'pmtsu'
let rootless: string[] | undefined // the test user's podman, for clean-up
let userMountsConf: string | undefined // the test user's mounts.conf, for clean-up
interface RT { name: string; rt: 'podman' | 'docker'; env: NodeJS.ProcessEnv; wrap: string[]; owner: number; cli: string[]; user?: string }
// Rootful runs (the wrapper as root): the containers run as nobody, never root; podman is told so by the
// config's "user", docker by sudo's variables. The directories they write are nobody's.
const NOBODY = 65534
async function setup(name: string): Promise<RT> {
  const env = { PATH: process.env.PATH, HOME: '/root', NO_COLOR: '1', PMTS_SECRET: 'T-secret-env', CONTAINERS_CONF: conf }
  const wrapper = [process.execPath, '--import', 'tsx', path.join(ROOT, 'pernosco.mts')]
  if (name === 'podman') { sh('podman', 'import', '--change', 'ENV PATH=/usr/local/bin:/bin', '--change', 'ENTRYPOINT ["/usr/local/bin/app_server"]', tar, IMAGE); return { name, rt: 'podman', env, wrap: wrapper, owner: NOBODY, cli: ['podman'], user: `${NOBODY}:${NOBODY}` } }
  if (name === 'docker') {
    const d = path.join(base, 'docker'), sock = `unix://${d}/docker.sock`
    fs.mkdirSync(d)
    const p = spawn('dockerd', ['--data-root', `${d}/data`, '--exec-root', `${d}/exec`, '-H', sock, '--pidfile', `${d}/docker.pid`, '--exec-opt', 'native.cgroupdriver=cgroupfs',
      '--iptables=false', '--bridge=none'], { stdio: ['ignore', fs.openSync(`${d}/dockerd.log`, 'w'), fs.openSync(`${d}/dockerd.log`, 'a')] })
    children.push(p)
    for (let i = 0; i < 100 && spawnSync('docker', ['-H', sock, 'version']).status !== 0; i++) await sleep(200)
    const e = { ...env, DOCKER_HOST: sock, SUDO_UID: String(NOBODY), SUDO_GID: String(NOBODY) }
    spawnSync('docker', ['import', '--change', 'ENV PATH=/usr/local/bin:/bin', '--change', 'ENTRYPOINT ["/usr/local/bin/app_server"]', tar, IMAGE], { env: e })
    return { name, rt: 'docker', env: e, wrap: wrapper, owner: NOBODY, cli: ['docker'] }
  }
  // Rootless podman: a test user with subuids, its own XDG_RUNTIME_DIR, a world-readable copy of the wrapper.
  if (spawnSync('id', [U]).status !== 0) sh('useradd', '-m', U)
  const uid = +sh('id', '-u', U).trim(), run = `/run/user/${uid}`, copy = path.join(base, 'app')
  fs.mkdirSync(run, { recursive: true, mode: 0o700 }); fs.chownSync(run, uid, uid); fs.chmodSync(run, 0o700)
  fs.mkdirSync(copy)
  for (const f of ['pernosco.mts', 'schema.json', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(copy, f))
  sh('cp', '-a', path.join(ROOT, 'node_modules'), copy); sh('chmod', '-R', 'a+rX', copy)
  const tmp = path.join(base, 'tmp') // its TMPDIR, so tsx's cache and its temp files go with base
  fs.mkdirSync(tmp, { mode: 0o700 }); fs.chownSync(tmp, uid, uid)
  const e = { ...env, HOME: `/home/${U}`, XDG_RUNTIME_DIR: run, TMPDIR: tmp }
  const userMounts = `/home/${U}/.config/containers/mounts.conf` // removed in the finally below
  sh('setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--init-groups', '--', 'sh', '-c', 'mkdir -p "$(dirname "$0")" && printf %s "$1" > "$0"', userMounts, mountsConf)
  userMountsConf = userMounts
  // setpriv execs (runuser would stay in between and turn our SIGTERM into its own)
  const as = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--init-groups', '--', 'env', '-C', copy, ...Object.entries(e).map(([k, v]) => `${k}=${v}`)]
  sh(as[0], ...as.slice(1), 'podman', 'import', '--change', 'ENV PATH=/usr/local/bin:/bin', '--change', 'ENTRYPOINT ["/usr/local/bin/app_server"]', tar, IMAGE)
  rootless = [...as, 'podman']
  return { name, rt: 'podman', env: e, wrap: [...as, process.execPath, '--import', path.join(copy, 'node_modules/tsx/dist/esm/index.mjs'), path.join(copy, 'pernosco.mts')], owner: uid, cli: [...as, 'podman'] }
}

function dir(owner: number, mode = 0o755) {
  const d = fs.mkdtempSync(path.join(base, 'd-')); fs.chmodSync(d, mode); fs.chownSync(d, owner, owner); return d
}
/** The wrapper's containers that mount something of this run's (every trace, storage and sources directory is
 * under base): never another run's on the same machine. */
function ps(r: RT) {
  const cli = (...a: string[]) => spawnSync(r.cli[0], [...r.cli.slice(1), ...a], { env: r.env, encoding: 'utf8' }).stdout ?? ''
  const names = cli('ps', '-a', '--format', '{{.Names}}').split('\n').filter(n => n.startsWith('pernosco-'))
  const mounts = (n: string) => cli('inspect', '--format', '{{range .Mounts}}{{.Source}}\n{{end}}', n).split('\n')
  return names.filter(n => mounts(n).some(m => m.startsWith(`${base}/`)))
}
const pgrep = (pat: string) => spawnSync('pgrep', ['-f', pat], { encoding: 'utf8' }).stdout.trim()
/** This run's bridges: the socket each names is in its private directory, in this process's TMPDIR (rootful
 * podman, docker) or in base (rootless podman's TMPDIR), and base is in this process's TMPDIR too. */
const bridgeLeft = () => pgrep(`net.connect.3000, .127.* ${os.tmpdir()}/`)

/** One hostile run: the wrapper command, then what the canaries saw and what the container reported. */
async function hostile(r: RT, command: 'build' | 'serve' | 'control' | 'kube') {
  const token = `T${crypto.randomBytes(4).toString('hex')}`, row = (probe: string, channel: string, result: string) => rows.push({ runtime: r.name, command, probe, channel, result })
  const secretDir = dir(r.owner), trace = path.join(secretDir, 'trace'), outside = dir(r.owner), storage = dir(r.owner), sources = dir(r.owner)
  fs.writeFileSync(path.join(secretDir, 'secret.txt'), 'T-secret-file\n')
  fs.mkdirSync(trace); fs.writeFileSync(path.join(trace, 'token'), token); fs.writeFileSync(path.join(trace, 'outside-path'), outside)
  fs.writeFileSync(path.join(trace, BUILT), 'built\n') // serve refuses a trace that build did not finish
  for (const f of ['', 'token', 'outside-path', BUILT]) fs.chownSync(path.join(trace, f), r.owner, r.owner)
  const cfg = path.join(dir(r.owner), 'pernosco.json')
  fs.writeFileSync(cfg, JSON.stringify({ runtime: r.rt, images: { builder: IMAGE, server: IMAGE }, ...r.user ? { user: r.user } : {}, limits: { memory: '256m', pids: 64, tmp: '16m' } }))
  const passwd = crypto.createHash('sha256').update(fs.readFileSync('/etc/passwd')).digest('hex'), icmp0 = icmpIn()
  hits = []
  step(`${r.name} ${command}`)
  const wrap = (args: string[]) => spawn(r.wrap[0], [...r.wrap.slice(1), '--config', cfg, ...args], { env: r.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let report = ''
  if (command === 'build') {
    const p = wrap(['build', trace, '--skip-rr'])
    let err = ''
    p.stderr!.on('data', d => { err += d })
    const code = await within(new Promise(ok => p.on('exit', ok)), 120_000, 'TIMEOUT')
    report = fs.readFileSync(path.join(trace, 'probes.txt'), 'utf8')
    row('builder exit', 'process', `exit ${code}`)
    // The traps it left: neutralised before anything else touches the trace, and the next host-side write stays inside.
    const l = (f: string) => fs.lstatSync(path.join(trace, f), { throwIfNoEntry: false })
    row('trap: symlink sources.fallback → /etc/passwd', 'trace', l('sources.fallback') ? 'LEFT' : 'removed')
    row('trap: symlink files.system-debuginfo → outside', 'trace', l('files.system-debuginfo')?.isSymbolicLink() ? 'LEFT' : 'removed')
    row('trap: FIFO', 'trace', l('fifo') ? 'LEFT' : 'removed')
    row('trap: setuid binary', 'trace', (l('suid')?.mode ?? 0) & 0o6000 ? 'LEFT' : 'cleared')
    row('trap: symlink to /', 'trace', l('root-link') ? 'LEFT' : 'removed')
    // (the setuid trap is never set: our seccomp refuses the chmod, see the setid-* rows)
    row('wrapper reported the traps', 'trace', /removed sources\.fallback \(type l, uid \d+\)/.test(err) ? 'yes' : `NO: ${err.slice(0, 200)}`)
    const again = spawnSync(r.wrap[0], [...r.wrap.slice(1), '--config', cfg, 'package-build', trace, '--skip-rr'], { env: r.env, encoding: 'utf8' })
    const pack = spawnSync(r.wrap[0], [...r.wrap.slice(1), '--config', cfg, 'package-build', trace], { env: r.env, encoding: 'utf8' })
    row('package-build after the builder (issue 27)', 'trace', pack.status === 2 && /was given to the db builder/.test(pack.stderr) ? 'refused' : `LEAK: ${pack.status} ${pack.stderr}`)
    // (issue 27: a trace the builder was given is never packaged again, --skip-rr included)
    row('next package-build', 'trace', again.status === 2 && !l('sources.fallback') && fs.readdirSync(outside).length === 0 ? 'refused, nothing written' : `LEAK: ${again.stderr}`)
  } else if (command === 'serve') {
    const p = wrap(['serve', trace, '--storage', storage, '--sources', `/src=${sources}`])
    let out = ''
    p.stdout!.on('data', d => { out += d }); p.stderr!.on('data', d => { out += d })
    for (let i = 0; i < 300 && !out.includes('ready'); i++) await sleep(100)
    step(`serve said: ${out.slice(0, 300)}`)
    const url = /open (http\S+)/.exec(out)?.[1]
    if (url) {
      const cookie = await within(getServed(url).then(res => String(res.headers['set-cookie']?.[0]).split(';')[0]), 10_000, '')
      const status = await within(getServed(url.replace(/\/\?token=.*/, '/'), { cookie }).then(res => res.statusCode!), 10_000, 0)
      row('UI through the proxy', 'serve', `HTTP ${status}`)
    } else row('UI through the proxy', 'serve', `NOT READY: ${out}`)
    for (let i = 0; i < 300 && !fs.readFileSync(path.join(storage, 'probes.txt'), { encoding: 'utf8', flag: 'a+' }).includes('probes done'); i++) await sleep(100)
    p.kill('SIGTERM')
    row('SIGTERM', 'process', `exit ${await within(new Promise(ok => p.on('exit', ok)), 30_000, 'TIMEOUT')}`)
    report = fs.readFileSync(path.join(storage, 'probes.txt'), 'utf8')
  } else if (command === 'kube') {
    // README's Job (section "On a cluster"), its pod template played as a Pod (podman 4.3 plays no Job), with
    // --network none for the NetworkPolicy, the hostile image, the trace as a host path, this suite's limits.
    const job = parseAllDocuments(readmeManifest())[0].toJS(), spec = job.spec.template.spec, box = spec.containers[0]
    const name = `pernosco-kube-${token.toLowerCase()}`
    fs.writeFileSync(path.join(trace, GIVEN), ''); fs.chownSync(path.join(trace, GIVEN), r.owner, r.owner) // README: made before the first Job
    Object.assign(spec.securityContext, { runAsUser: r.owner, runAsGroup: r.owner })
    Object.assign(box, { image: IMAGE, resources: { limits: { memory: '256Mi' } } })
    spec.volumes = [{ name: 'trace', hostPath: { path: trace, type: 'Directory' } }, { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } }]
    // podman 4.3 ignores subPath on a hostPath volume (it mounts the whole trace over the marker: measured); a
    // kubelet honours it. Here the marker is a hostPath File volume of its own, still read-only.
    const given = box.volumeMounts.find((m: { subPath?: string }) => m.subPath === GIVEN)
    Object.assign(given, { name: 'given', subPath: undefined })
    spec.volumes.push({ name: 'given', hostPath: { path: path.join(trace, GIVEN), type: 'File' } })
    const profiles = dir(0), yaml = path.join(dir(0), 'pod.yaml')
    fs.writeFileSync(path.join(profiles, 'pernosco.json'), SECCOMP)
    // podman 4.3 ignores securityContext.seccompProfile (measured: a chmod 4755 then succeeds) and reads the
    // profile only from the annotation that Kubernetes >= 1.27 no longer reads: the same profile, said both ways.
    const annotations = { 'seccomp.security.alpha.kubernetes.io/pod': 'localhost/pernosco.json' }
    fs.writeFileSync(yaml, JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: job.spec.template.metadata.labels, annotations }, spec }))
    // (a kubelet has no mounts.conf to add: podman is told the same)
    const play = spawnSync(r.cli[0], [...r.cli.slice(1), '--default-mounts-file', '/dev/null', 'kube', 'play', '--network', 'none', '--seccomp-profile-root', profiles, yaml], { env: r.env, encoding: 'utf8', timeout: 120_000 })
    row('kube play', 'process', play.status === 0 ? 'played' : `NO: ${play.stderr.slice(0, 300)}`)
    const wait = spawnSync(r.cli[0], [...r.cli.slice(1), 'wait', `${name}-db-builder`], { env: r.env, encoding: 'utf8', timeout: 120_000 })
    row('builder exit', 'process', `exit ${wait.stdout.trim() || wait.stderr.trim()}`)
    const inspect = spawnSync(r.cli[0], [...r.cli.slice(1), 'inspect', `${name}-db-builder`], { env: r.env, encoding: 'utf8' })
    step(`kube play: ${play.stdout.trim()} ${play.stderr.trim()}; the container: ${JSON.stringify(JSON.parse(inspect.stdout || '[{}]')[0].HostConfig ?? {}).slice(0, 600)}`)
    spawnSync(r.cli[0], [...r.cli.slice(1), 'kube', 'down', yaml], { env: r.env })
    report = fs.readFileSync(path.join(trace, 'probes.txt'), { encoding: 'utf8', flag: 'a+' })
  } else {
    // The control: the same image under deliberately weak flags (host network, the secret passed in).
    const p = spawnSync(r.cli[0], [...r.cli.slice(1), 'run', '--rm', '--network', 'host', '--env', 'PMTS_SECRET', '--mount', `type=bind,src=${trace},dst=/trace`, '--entrypoint', 'db_builder', IMAGE],
      { env: r.env, encoding: 'utf8', timeout: 120_000 })
    row('control exit', 'process', `exit ${p.status}`)
    report = fs.readFileSync(path.join(trace, 'probes.txt'), 'utf8')
  }
  await sleep(1500) // late UDP/DNS packets
  for (const line of report.split('\n').filter(Boolean)) {
    const [probe, ...rest] = line.split(' '), result = rest.join(' ')
    // network attempts: judged by the canaries below (the control's failures are logged, to diagnose a miss)
    if (command === 'control' && / failed:/.test(line)) console.error(`# control: ${line}; abstract listeners here: ${JSON.stringify(fs.readFileSync('/proc/net/unix', 'utf8').split('\n').filter(l => l.includes('pmts-canary')).map(l => l.split(' ').slice(3, 6).join(' ')))}`)
    if (/ (sent|failed:)/.test(line)) continue
    // podman 4.3's kube play copies the host's /etc/hosts entries even with --no-hosts (measured); a kubelet writes
    // the pod's own, never the node's: not the manifest's to close
    if (command === 'kube' && probe === 'host-hosts-entry') { row(probe, 'filesystem', `${result} (podman kube play, not a kubelet)`.replace('LEAK', 'copied')); continue }
    row(probe, /secret/.test(probe) ? 'secrets' : /process/.test(probe) ? 'processes' : /fork|fill/.test(probe) ? 'limits' : 'filesystem', result)
  }
  const mine = hits.filter(h => h.includes(token))
  for (const p of ['tcp-outside', 'udp-outside', 'tcp-host-loopback', 'tcp-host-any', 'udp-host-loopback', 'abstract-socket', 'tcp-gateway', 'dns-resolv', 'dns-gateway', 'dns-embedded'])
    row(p, p.startsWith('dns') ? 'dns' : 'network', mine.some(h => h.includes(`${token}-${p}`)) ? 'LEAK' : 'blocked')
  row('icmp-outside', 'network', icmpIn() > icmp0 ? 'LEAK' : 'blocked')
  row('host file unchanged (/etc/passwd)', 'filesystem', crypto.createHash('sha256').update(fs.readFileSync('/etc/passwd')).digest('hex') === passwd ? 'unchanged' : 'LEAK')
  for (let i = 0; i < 30 && pgrep('sleep 31338'); i++) await sleep(100)
  row('process left running', 'processes', pgrep('sleep 31338') ? 'LEAK' : 'none')
  if (command !== 'control') {
    const left = ps(r)
    row('containers left', 'process', left.length ? `LEAK ${left.join(' ')}` : 'none')
    row('bridge left', 'process', bridgeLeft() ? 'LEAK' : 'none')
  }
  spawnSync('pkill', ['-f', 'sleep 31338'])
}

try {
  for (const name of runtimes) {
    const r = await setup(name)
    for (const c of ['build', 'serve'] as const) await hostile(r, c)
    if (name === 'podman') await hostile({ ...r, name: 'podman-kube' }, 'kube')
    if (name === 'podman') await hostile(r, 'control')
  }
} finally {
  for (const c of children) c.kill()
  await sleep(500) // dockerd stops; its data-root is under base
  spawnSync('podman', ['rmi', '--force', '--ignore', IMAGE], { env: { ...process.env, CONTAINERS_CONF: conf } })
  if (rootless) spawnSync(rootless[0], [...rootless.slice(1), 'rmi', '--force', '--ignore', IMAGE])
  if (userMountsConf) fs.rmSync(userMountsConf, { force: true })
  spawnSync('rm', ['-rf', base])
  console.log(JSON.stringify(rows))
}
