// The main job end to end on locally built stand-in images: record → build → serve, printing each
// wrapper command as it runs (-x). Real rr cannot record on these VMs, so rr is a stand-in; the stand-in
// app server serves test/fixtures/www, a hostile page that tries to reach another origin.
import fs from 'node:fs'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { ROOT, tmpdir, getServed } from './helpers.mts'
import { BUILDER_IMAGE, SERVER_IMAGE, podmanEnv, importImage, importServerImage, pernoscoContainers, USER, handTo, paranoidOne } from './podman-env.mts'

const wrapper = (args: string[]) => [process.execPath, '--import', 'tsx', path.join(ROOT, 'pernosco.mts'), '-x', ...args]
const step = (title: string, args: string[], proves: string, pre: string[] = []) => {
  console.log(`\n== ${title}: pernosco.mts ${args.join(' ')}`)
  const argv = [...pre, ...wrapper(args)]
  const p = spawnSync(argv[0], argv.slice(1), { env: podmanEnv(), stdio: 'inherit' })
  if (p.status !== 0) { console.error(`demo: ${title} failed (exit ${p.status})`); process.exit(1) }
  console.log(`-- proved: ${proves}`)
}
importImage(BUILDER_IMAGE, { 'usr/local/bin/db_builder': path.join(ROOT, 'test/fixtures/db_builder') })
importServerImage()
const dir = tmpdir('pernosco-demo-'), cfg = path.join(dir, 'pernosco.json'), traces = path.join(dir, 'rr')
fs.chmodSync(dir, 0o711) // as root, the clean-up after the builder runs as the config's user: it must reach the trace
fs.mkdirSync(traces)
fs.writeFileSync(cfg, JSON.stringify({ runtime: 'podman', images: { builder: BUILDER_IMAGE, server: SERVER_IMAGE }, ...USER }, null, 2))
// A real rr needs perf_event_paranoid <= 1; this rr is a stand-in, so the machine's setting stays as it is.
const paranoid = +fs.readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8')
const shown = paranoid > 1 ? paranoidOne(dir) : []
if (paranoid > 1) {
  console.log(`\n(this machine has kernel.perf_event_paranoid = ${paranoid}; the demo's rr is a stand-in, so it changes nothing:`
    + ' it shows the wrapper a 1 in a private mount namespace. A real rr needs `sudo sysctl kernel.perf_event_paranoid=1`.)')
}
step('record', ['--config', cfg, 'record', '--output', traces, '--', '/bin/echo', 'recorded a failing test'],
  'the recording command is an argv array, run with no shell', shown)
// As root, the containers run as the config's user (never root), so the trace is handed to it.
const trace = handTo(fs.realpathSync(path.join(traces, 'latest-trace')))
step('build (dry run)', ['--config', cfg, 'build', trace, '--dry-run'], 'every command is printed, pasteable, and nothing runs')
step('build', ['--config', cfg, 'build', trace, '--', '--shards', '2', 'on-prem', '/trace'],
  'the builder ran with no network, no capabilities, seccomp on, as you (as root: as the config\'s user, never root), seeing only the trace (below)')
console.log(`\n== the trace now holds: ${fs.readdirSync(trace).sort().join(' ')}`)
console.log(`== the builder saw:\n${fs.readFileSync(path.join(trace, 'builder.txt'), 'utf8')}`)

console.log(`\n== serve: pernosco.mts serve ${trace}`)
const argv = wrapper(['--config', cfg, 'serve', trace])
const w = spawn(argv[0], argv.slice(1), { env: podmanEnv(), stdio: ['ignore', 'pipe', 'inherit'] })
const exited = new Promise<number | null>(ok => w.on('exit', ok))
let out = ''
w.stdout!.on('data', d => { out += d; process.stdout.write(d) })
for (let i = 0; i < 300 && !out.includes('ready'); i++) await new Promise(r => setTimeout(r, 100))
const url = /open (\S+)/.exec(out)?.[1]
if (!url) { w.kill('SIGINT'); await exited; console.error('demo: serve did not become ready'); process.exit(1) }
const shell = await getServed(url)
const cookie = String(shell.headers['set-cookie']?.[0]).split(';')[0]
const ui = /<iframe src="([^"]+)"/.exec((await getServed(url.replace(/\?token=.*/, ''), { cookie })).body)![1]
const page = await getServed(ui, { cookie })
console.log(`\n== fetched the UI through the proxy: HTTP ${page.statusCode}, ${page.body.length} bytes; the headers it forced:`)
for (const k of ['content-security-policy', 'connection-allowlist', 'cache-control', 'referrer-policy', 'x-content-type-options',
  'cross-origin-opener-policy', 'cross-origin-resource-policy', 'x-dns-prefetch-control', 'permissions-policy']) console.log(`   ${k}: ${page.headers[k]}`)
console.log('-- proved: the server has no network; the browser reaches it only through the proxy, which forces a same-origin policy')
if (fs.existsSync('/usr/bin/chromium')) {
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] })
  const tab = await browser.newPage()
  await tab.goto(url).catch(() => {})
  await new Promise(r => setTimeout(r, 400)) // before the hostile page tries to navigate its frame away (at 2 s)
  const png = path.join(process.env.TMPDIR ?? '/tmp', `pernosco-demo-${process.getuid!()}.png`) // one per user: /tmp is shared
  await tab.screenshot({ path: png })
  await browser.close()
  console.log(`== screenshot of the served page (Chromium; the stand-in page is the hostile one): ${png}`)
}
if (process.stdin.isTTY && process.stdout.isTTY) {
  console.log(`\nStill serving: open ${url} in a browser on this machine. Ctrl-C stops it.`)
  process.on('SIGINT', () => w.kill('SIGINT'))
} else {
  console.log('\n(no terminal attached: stopping serve)')
  w.kill('SIGINT')
}
console.log(`serve exited with ${await exited} (130 after Ctrl-C); containers left: ${pernoscoContainers().length}`)
