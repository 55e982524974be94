// The hostile page, in headless Chromium: through pernosco.mts serve it reaches nothing; loaded
// directly (the control) it does reach the canary, so this test can fail. See fixtures/browser-run.mts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { ROOT, tmpdir, traceDir } from './helpers.mts'
import { HAVE_PODMAN, SERVER_IMAGE, importServerImage, podmanEnv, pernoscoContainers, USER } from './podman-env.mts'

const ready = HAVE_PODMAN && fs.existsSync('/usr/bin/chromium') && process.getuid!() === 0
const skip = !ready && !process.env.CI && 'needs root, podman and chromium (CI installs them)'

const CHANNELS = ['tcp-connect', '/fetch', '/xhr', '/img', '/script', '/style', '/font', '/iframe', '/form', '/websocket', '/eventsource', '/beacon',
  '/prefetch', '/window-open', '/location', '/meta-refresh', 'udp (stun)',
  // issue 16: the realm of node's own 431 page, framed by the UI (a URL over 16 KiB)
  '/realm-fetch', '/realm-beacon', '/realm-websocket']
/** Runs a browser fixture (the hostile page directly, then through serve) in a network namespace of its own;
 * prints the per-channel table and checks that the page works both ways. */
function hostileRun(fixture: string, browser: string) {
  importServerImage()
  const cfg = path.join(tmpdir(), 'pernosco.json')
  fs.writeFileSync(cfg, JSON.stringify({ runtime: 'podman', images: { builder: SERVER_IMAGE, server: SERVER_IMAGE }, ...USER }))
  const p = spawnSync('unshare', ['--net', '--', process.execPath, '--import', 'tsx', path.join(ROOT, 'test/fixtures', fixture), traceDir(), cfg],
    { env: podmanEnv(), encoding: 'utf8', timeout: 170_000 })
  assert.equal(p.status, 0, p.stderr)
  const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!)
  console.log(`# ${browser}: channel   direct   via serve`)
  for (const c of CHANNELS) console.log(`# ${c.padEnd(16)} ${(r.direct.hits.includes(c) ? 'LEAK' : '-').padEnd(8)} ${r.proxied.hits.includes(c) ? 'LEAK' : 'blocked'}`)
  for (const h of r.proxied.hits) if (!CHANNELS.includes(h)) console.log(`# other hit via serve: ${h}`)
  assert.equal(r.direct.seen, 'data: ok', 'the page works directly')
  assert.equal(r.proxied.seen, 'data: ok', 'the page works through the proxy (same-origin fetch)')
  return r
}

test('hostile page: every channel to another origin is closed through the proxy, open without it', { skip, timeout: 180_000 }, () => {
  const r = hostileRun('browser-run.mts', 'Chromium')
  console.log(`# through serve: renderer terminated by the browser on ${JSON.stringify(r.proxied.crashes)} (Connection-Allowlist webrtc=block); UI frame after the refresh attempt: ${r.proxied.frames.at(-1)}`)
  for (const c of CHANNELS) assert.ok(r.direct.hits.includes(c), `control: ${c} reaches the canary without the proxy`)
  assert.deepEqual(r.proxied.hits, [], 'nothing reaches the canary through the proxy')
  assert.deepEqual(r.direct.crashes, [])
  assert.ok(r.proxied.crashes.every((c: string) => c === 'webrtc'), 'only the WebRTC attempt ends the page')
  assert.equal(r.serveExit, 130)
  assert.deepEqual(pernoscoContainers(), [])
})

test('a hostile 101 cannot set a cookie: through the proxy the jar holds only our session cookie; directly it is planted', { skip: !fs.existsSync('/usr/bin/chromium') && !process.env.CI && 'needs chromium', timeout: 60_000 }, () => {
  const p = spawnSync('unshare', ['--net', '--', process.execPath, '--import', 'tsx', path.join(ROOT, 'test/fixtures/browser-101.mts')], { encoding: 'utf8', timeout: 50_000 })
  assert.equal(p.status, 0, p.stderr)
  const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!)
  console.log(`# cookies after a WebSocket whose 101 sets one: direct ${JSON.stringify(r.direct)}, through the proxy ${JSON.stringify(r.proxied)}`)
  assert.deepEqual(r.opened, { direct: 'open', proxied: 'open' }, 'the WebSocket opens both ways')
  assert.deepEqual(r.direct, ['planted'], 'control: the server\'s 101 plants its cookie')
  assert.equal(r.proxied.length, 1, 'one cookie through the proxy')
  assert.match(r.proxied[0], /^pernosco-\d+$/, 'and it is our session cookie')
})

test('the hostile page in Firefox ESR (WebDriver BiDi): every channel but WebRTC closed through the proxy; the control leaks on each', { skip: !(ready && fs.existsSync('/usr/bin/firefox-esr')) && !process.env.CI && 'needs root, podman and firefox-esr (CI installs them)', timeout: 180_000 }, () => {
  const r = hostileRun('firefox-run.mts', 'Firefox ESR')
  for (const c of CHANNELS) assert.ok(r.direct.hits.includes(c), `control: ${c} reaches the canary without the proxy`)
  // Firefox implements neither CSP `webrtc` nor Connection-Allowlist: STUN leaves through serve (SECURITY.md, open channels).
  assert.deepEqual(r.proxied.hits, ['udp (stun)'], 'through the proxy only WebRTC reaches the canary in Firefox')
  assert.equal(r.serveExit, 130)
  assert.deepEqual(pernoscoContainers(), [])
})
