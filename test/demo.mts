// The main job end to end on locally built stand-in images: record → build → serve, printing each
// wrapper command as it runs (-x). Real rr cannot record on these VMs, so rr is a stand-in; the stand-in
// app server serves test/fixtures/www, a hostile page that tries to reach another origin.
// Ctrl-C at any step (a terminal sends SIGINT to the whole process group: the wrapper gets it too, and removes
// its container itself) ends the demo once that step's wrapper has exited, with its images and folders
// removed and a last line of its own (exit 130); Ctrl-C on the serve it kept running for you ends it with 0.
import fs from 'node:fs'
import path from 'node:path'
import { spawn, type ChildProcess } from 'node:child_process'
import { ROOT, tmpdir, getServed, cleanUp } from './helpers.mts'
import { podmanEnv, importImage, importServerImage, removeImported, pernoscoContainers, USER, handTo, paranoidOne } from './podman-env.mts'

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms))
const never = () => new Promise<never>(() => {})
// State the signal handler shares with the steps:
// `child`: the wrapper now running (set by wrapperRun; the demo ends only after it has exited);
// `browser`: Chromium while it takes the screenshot (closed by stop);
// `kept`: set once serve is kept running for you (then Ctrl-C is how you stop it: exit 0);
// `stage`: what the demo is doing, for its last line;
// `stopping`: set once, by stop (no step starts after it; a later stop never returns: the first one exits).
let child: ChildProcess | undefined
let browser: { close(): Promise<void> } | undefined
let kept = false
let stage = 'the import of the stand-in images'
let stopping = false

/** Ends the demo: waits (at most 60 s) for the wrapper still running, removes the demo's images and folders,
 * then prints its last line. A container left behind is said, and exits 1. */
async function stop(code: number, why: string): Promise<never> {
  if (stopping) return never()
  stopping = true
  const running = child && child.exitCode === null && child.signalCode === null
  if (running) await Promise.race([new Promise(ok => child!.once('exit', ok)), sleep(60_000)])
  await browser?.close().catch(() => {})
  const left = pernoscoContainers()
  removeImported()
  cleanUp()
  if (left.length) {
    console.error(`demo: ${why}; containers left: ${left.join(' ')}`)
    process.exit(1)
  }
  const line = `demo: ${why}; it left no container, image or folder`
  if (code === 0) console.log(line)
  else console.error(line)
  process.exit(code)
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    // The serve kept running for you: you stop it; wait for it below (exit 0).
    if (kept) return child?.kill('SIGINT')
    // Forward once: a terminal has sent it already, but `kill -INT` may have reached only the demo (and npm
    // forwards its own copy to the demo).
    if (!stopping) child?.kill(sig)
    void stop(130, `stopped by ${sig} during ${stage}`)
  })
}

const wrapper = (args: string[]) => [process.execPath, '--import', 'tsx', path.join(ROOT, 'pernosco.mts'), '-x', ...args]
/** Starts the wrapper as `child`; resolves with its exit code. Nothing starts once the demo is stopping. */
function wrapperRun(argv: string[], stdout: 'inherit' | 'pipe' = 'inherit'): Promise<number | null> {
  if (stopping) return never()
  child = spawn(argv[0], argv.slice(1), { env: podmanEnv(), stdio: ['ignore', stdout, 'inherit'] })
  const c = child
  return new Promise(ok => c.on('exit', code => ok(code)))
}
async function step(title: string, args: string[], proves: string, pre: string[] = []) {
  stage = title
  console.log(`\n== ${title}: pernosco.mts ${args.join(' ')}`)
  const code = await wrapperRun([...pre, ...wrapper(args)])
  if (code !== 0) await stop(1, `${title} failed (exit ${code})`)
  console.log(`-- proved: ${proves}`)
}

async function demo() {
  // The demo's own tags: the tests' images (another run's, on a shared machine) stay as they are.
  const images = { builder: `localhost/pernosco-demo-builder:${process.pid}`, server: `localhost/pernosco-demo-server:${process.pid}` }
  console.log(`== stand-in images (built here from busybox-static, removed at the end): ${images.builder} ${images.server}`)
  importImage(images.builder, { 'usr/local/bin/db_builder': path.join(ROOT, 'test/fixtures/db_builder') })
  await sleep(50) // a Ctrl-C during the (synchronous) import is handled here: the demo ends in it
  importServerImage(images.server)
  await sleep(50)
  stage = 'set-up'
  const dir = tmpdir('pernosco-demo-'), cfg = path.join(dir, 'pernosco.json'), traces = path.join(dir, 'rr')
  fs.chmodSync(dir, 0o711) // as root, the clean-up after the builder runs as the config's user: it must reach the trace
  fs.mkdirSync(traces)
  fs.writeFileSync(cfg, JSON.stringify({ runtime: 'podman', images, ...USER }, null, 2))
  // A real rr needs perf_event_paranoid <= 1; this rr is a stand-in, so the machine's setting stays as it is.
  const paranoid = +fs.readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8')
  const shown = paranoid > 1 ? paranoidOne(dir) : []
  if (paranoid > 1) {
    console.log(`\n(this machine has kernel.perf_event_paranoid = ${paranoid}; the demo's rr is a stand-in, so it changes nothing:`
      + ' it shows the wrapper a 1 in a private mount namespace. A real rr needs `sudo sysctl kernel.perf_event_paranoid=1`.)')
  }
  await step('record', ['--config', cfg, 'record', '--output', traces, '--', '/bin/echo', 'recorded a failing test'],
    'the recording command is an argv array, run with no shell', shown)
  // As root, the containers run as the config's user (never root), so the trace is handed to it.
  const trace = handTo(fs.realpathSync(path.join(traces, 'latest-trace')))
  await step('build (dry run)', ['--config', cfg, 'build', trace, '--dry-run'], 'every command is printed, pasteable, and nothing runs')
  await step('build', ['--config', cfg, 'build', trace, '--', '--shards', '2', 'on-prem', '/trace'],
    'the builder ran with no network, no capabilities, seccomp on, as you (as root: as the config\'s user, never root), seeing only the trace (below)')
  console.log(`\n== the trace now holds: ${fs.readdirSync(trace).sort().join(' ')}`)
  console.log(`== the builder saw:\n${fs.readFileSync(path.join(trace, 'builder.txt'), 'utf8')}`)

  stage = 'serve'
  console.log(`\n== serve: pernosco.mts serve ${trace}`)
  const exited = wrapperRun(wrapper(['--config', cfg, 'serve', trace]), 'pipe')
  let out = ''
  child!.stdout!.on('data', d => { out += d; process.stdout.write(d) })
  for (let i = 0; i < 300 && !out.includes('ready') && !stopping; i++) await sleep(100)
  const url = /open (\S+)/.exec(out)?.[1]
  if (!url) {
    child!.kill('SIGINT')
    return stop(1, 'serve did not become ready')
  }
  const shell = await getServed(url)
  const cookie = String(shell.headers['set-cookie']?.[0]).split(';')[0]
  const ui = /<iframe src="([^"]+)"/.exec((await getServed(url.replace(/\?token=.*/, ''), { cookie })).body)![1]
  const page = await getServed(ui, { cookie })
  console.log(`\n== fetched the UI through the proxy: HTTP ${page.statusCode}, ${page.body.length} bytes; the headers it forced:`)
  for (const k of ['content-security-policy', 'connection-allowlist', 'cache-control', 'referrer-policy', 'x-content-type-options',
    'cross-origin-opener-policy', 'cross-origin-resource-policy', 'x-dns-prefetch-control', 'permissions-policy']) console.log(`   ${k}: ${page.headers[k]}`)
  console.log('-- proved: the server has no network; the browser reaches it only through the proxy, which forces a same-origin policy')
  if (fs.existsSync('/usr/bin/chromium') && !stopping) await screenshot(url)
  if (process.stdin.isTTY && process.stdout.isTTY) {
    kept = true
    console.log(`\nStill serving: open ${url} in a browser on this machine. Ctrl-C stops it.`)
  } else {
    console.log('\n(no terminal attached: stopping serve)')
    child!.kill('SIGINT')
  }
  const code = await exited
  return stop(0, `done, serve stopped (its exit: ${code})`)
}

/** A screenshot of the served page, in your clone (0600: only you read it). Chromium handles no signal of
 * ours: a Ctrl-C ends it (it is in the process group) and the demo's own handler does the rest. */
async function screenshot(url: string) {
  stage = 'the screenshot in Chromium'
  const { chromium } = await import('playwright-core')
  const b = await chromium.launch({ executablePath: '/usr/bin/chromium', handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'] })
  browser = b
  const tab = await b.newPage()
  await tab.goto(url).catch(() => {})
  await sleep(400) // before the hostile page tries to navigate its frame away (at 2 s)
  const shot = await tab.screenshot()
  browser = undefined
  await b.close()
  const png = path.join(ROOT, 'pernosco-demo.png')
  fs.rmSync(png, { force: true }) // 'wx' below: a new file with our mode, never through a link
  fs.writeFileSync(png, shot, { mode: 0o600, flag: 'wx' })
  console.log(`== screenshot of the served page (Chromium; the stand-in page is the hostile one): ${png}`)
}

try {
  await demo()
} catch (e) {
  // A step that a Ctrl-C ended (a podman import, Chromium) may throw before the signal's handler has run.
  await sleep(200)
  await stop(1, `failed during ${stage}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`)
}
