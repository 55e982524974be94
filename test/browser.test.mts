// The hostile page, in headless Chromium: through pernosco.mts serve it reaches nothing; loaded
// directly (the control) it does reach the canary, so this test can fail. See fixtures/browser-run.mts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { ROOT, tmpdir, traceDir, OWN_NETNS } from './helpers.mts'
import { HAVE_PODMAN, SERVER_IMAGE, importServerImage, podmanEnv, pernoscoContainers, USER } from './podman-env.mts'

// A page served by podman runs in a network namespace the test makes, with podman inside it: rootful podman
// only (rootless podman cannot start in a user namespace the test made). A missing package fails in CI.
const ROOT_ONLY = process.getuid!() !== 0 && 'needs root (rootful podman inside a network namespace the test makes)'
const have = (...files: string[]) => HAVE_PODMAN && files.every(f => fs.existsSync(f))
const skip = ROOT_ONLY || (!have('/usr/bin/chromium') && !process.env.CI && 'needs podman and chromium (CI installs them)')

const CHANNELS = ['tcp-connect', '/fetch', '/xhr', '/img', '/script', '/style', '/font', '/iframe', '/form', '/websocket', '/eventsource', '/beacon',
  '/prefetch', '/window-open', '/location', '/meta-refresh', 'udp (stun)',
  // issue 16: the realm of node's own 431 page, framed by the UI (a URL over 16 KiB)
  '/realm-fetch', '/realm-beacon', '/realm-websocket']
/** Runs a browser fixture (the hostile page directly, then through serve) in a network namespace of its own;
 * prints the per-channel table and checks that the page works both ways. */
function fixtureRun(fixture: string) {
  importServerImage()
  const cfg = path.join(tmpdir(), 'pernosco.json')
  fs.writeFileSync(cfg, JSON.stringify({ runtime: 'podman', images: { builder: SERVER_IMAGE, server: SERVER_IMAGE }, ...USER }))
  const p = spawnSync('unshare', ['--net', '--', process.execPath, '--import', 'tsx', path.join(ROOT, 'test/fixtures', fixture), traceDir(), cfg],
    { env: podmanEnv(), encoding: 'utf8', timeout: 230_000 })
  assert.equal(p.status, 0, p.stderr)
  return JSON.parse(p.stdout.trim().split('\n').at(-1)!)
}
function hostileRun(fixture: string, browser: string) {
  const r = fixtureRun(fixture)
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
  const p = spawnSync(OWN_NETNS[0], [...OWN_NETNS.slice(1), process.execPath, '--import', 'tsx', path.join(ROOT, 'test/fixtures/browser-101.mts')], { encoding: 'utf8', timeout: 50_000 })
  assert.equal(p.status, 0, p.stderr)
  const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!)
  console.log(`# cookies after a WebSocket whose 101 sets one: direct ${JSON.stringify(r.direct)}, through the proxy ${JSON.stringify(r.proxied)}`)
  assert.deepEqual(r.opened, { direct: 'open', proxied: 'open' }, 'the WebSocket opens both ways')
  assert.deepEqual(r.direct, ['planted'], 'control: the server\'s 101 plants its cookie')
  assert.equal(r.proxied.length, 1, 'one cookie through the proxy')
  assert.match(r.proxied[0], /^pernosco-\d+$/, 'and it is our session cookie')
})

test('Firefox ESR (WebDriver BiDi), issue 21: with its default WebRTC the shell explains and frames nothing; with WebRTC off the UI runs with every channel closed; --allow-webrtc-leak is the control', { skip: ROOT_ONLY || (!have('/usr/bin/firefox-esr') && !process.env.CI && 'needs podman and firefox-esr (CI installs them)'), timeout: 240_000 }, () => {
  const r = fixtureRun('firefox-run.mts')
  console.log('# Firefox ESR: channel   direct   defaults via serve   WebRTC off via serve   --allow-webrtc-leak')
  for (const c of CHANNELS) console.log(`# ${c.padEnd(16)} ${(r.direct.hits.includes(c) ? 'LEAK' : '-').padEnd(8)} ${(r.explained.hits.includes(c) ? 'LEAK' : 'blocked').padEnd(20)} ${(r.webrtcOff.hits.includes(c) ? 'LEAK' : 'blocked').padEnd(22)} ${r.allowed.hits.includes(c) ? 'LEAK' : 'blocked'}`)
  console.log(`# what the shell showed: defaults ${JSON.stringify(r.explained.seen)}, WebRTC off ${JSON.stringify(r.webrtcOff.seen)}`)
  for (const c of CHANNELS) assert.ok(r.direct.hits.includes(c), `control: ${c} reaches the canary without the proxy`)
  assert.equal(r.direct.seen, 'data: ok', 'the page works directly')
  // Firefox with its defaults: the explanation, no UI frame, nothing reaches the canary.
  assert.match(r.explained.seen.shell, /WebRTC/)
  assert.equal(r.explained.seen.ui, undefined, 'no UI frame at all')
  assert.deepEqual(r.explained.hits, [])
  // WebRTC switched off (media.peerconnection.enabled = false): the UI runs, every channel closed, WebRTC included.
  assert.equal(r.webrtcOff.seen.ui, 'data: ok')
  assert.deepEqual(r.webrtcOff.hits, [])
  // The control of the guard: --allow-webrtc-leak frames the UI in default Firefox, and its WebRTC leaks.
  assert.equal(r.allowed.seen.ui, 'data: ok')
  assert.deepEqual(r.allowed.hits, ['udp (stun)'])
  assert.equal(r.serveExit, 130)
  assert.deepEqual(pernoscoContainers(), [])
})
