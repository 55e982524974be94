// Issue 28: the serve's host name is a secret (cookies ignore ports), so nothing that reaches a client without
// the right Host and a valid cookie or token carries it; and nothing a client sends behind an upgrade request,
// before our 101, reaches the server. Each test fails on the file before the fix (watched).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { startProxy } from '../pernosco.mts'
import { ROOT, forwarder, OWN_NETNS } from './helpers.mts'

const NAME = `pernosco-${crypto.randomBytes(5).toString('hex')}.localhost`
const TOKEN = 'f'.repeat(64)
/** Sends `bytes` on a fresh connection and reads until the proxy closes it (3 s at most). */
const raw = (port: number, bytes: string, host = '127.0.0.1') => new Promise<string>(ok => {
  let got = ''
  const s = net.connect(port, host, () => s.write(bytes)).on('data', d => { got += d }).on('error', () => ok(got)).on('close', () => ok(got))
  setTimeout(() => s.destroy(), 3000).unref()
})

test('no unauthenticated answer names the serve, on either port or loopback family: wrong Host, no Host, garbage, an oversized head, an unknown Expect, a refused upgrade, the 401 and the token\'s 302', async () => {
  const seen: string[] = []
  const backend = net.createServer(s => s.on('error', () => {}).on('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')))
  await new Promise<void>(ok => backend.listen(0, '127.0.0.1', ok))
  const proxy = await startProxy({ socketPath: forwarder((backend.address() as net.AddressInfo).port), port: 0, token: TOKEN, name: NAME })
  const [sp, up] = [+new URL(proxy.shell).port, +new URL(proxy.ui).port]
  const cookie = `cookie: pernosco-${sp}=${TOKEN}\r\n`
  try {
    for (const host of ['127.0.0.1', '::1']) for (const port of [sp, up]) {
      const cases: [string, string][] = [
        ['wrong Host, with the cookie', `GET / HTTP/1.1\r\nhost: localhost:${port}\r\n${cookie}\r\n`],
        ['no Host', 'GET / HTTP/1.1\r\n\r\n'],
        ['garbage', 'NOT HTTP AT ALL\r\n\r\n'],
        ['a head over 16 KiB', `GET /${'a'.repeat(17_000)} HTTP/1.1\r\nhost: ${NAME}:${port}\r\n\r\n`],
        ['an unknown Expect', `GET / HTTP/1.1\r\nhost: ${NAME}:${port}\r\nexpect: x\r\n\r\n`],
        ['the right Host, no cookie', `GET / HTTP/1.1\r\nhost: ${NAME}:${port}\r\n\r\n`],
        ['a refused upgrade', `GET /ws HTTP/1.1\r\nhost: ${NAME}:${port}\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n`],
        ['a path the shell does not have', `GET /x HTTP/1.1\r\nhost: ${NAME}:${port}\r\n\r\n`],
        ['the token (302 to / with the cookie)', `GET /?token=${TOKEN} HTTP/1.1\r\nhost: ${NAME}:${port}\r\n\r\n`],
      ]
      for (const [what, bytes] of cases) {
        const got = await raw(port, bytes, host)
        assert.match(got, /^HTTP\/1\.1 \d{3} /, `${host} ${port} ${what}: answered`)
        assert.match(got, /content-security-policy: /i, `${host} ${port} ${what}: a policy all the same`)
        assert.ok(!got.includes(NAME.slice(0, 19)), `${host} ${port} ${what}: ${got.slice(0, 400)}`)
        seen.push(`${host} ${port} ${what}`)
      }
    }
    // control: an authenticated request with the right Host gets the name-bearing policy (so this test can see it)
    const authed = await raw(up, `GET / HTTP/1.1\r\nhost: ${NAME}:${up}\r\n${cookie}connection: close\r\n\r\n`)
    assert.match(authed, new RegExp(`frame-ancestors http://${NAME}:${sp}`))
    assert.equal(seen.length, 36)
  } finally {
    proxy.close()
    backend.close()
  }
})

test('bytes sent right behind an upgrade request never reach the server: a pipelined GET carrying the cookie is refused with the upgrade', async () => {
  const received: string[] = []
  const backend = net.createServer(s => s.on('error', () => {}).on('data', d => {
    received.push(String(d))
    const key = /sec-websocket-key: *(\S+)/i.exec(String(d))?.[1] ?? ''
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    s.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`)
  }))
  await new Promise<void>(ok => backend.listen(0, '127.0.0.1', ok))
  const proxy = await startProxy({ socketPath: forwarder((backend.address() as net.AddressInfo).port), port: 0, token: TOKEN, name: NAME })
  const up = +new URL(proxy.ui).port
  const origin = proxy.ui
  const upgrade = `GET /ws HTTP/1.1\r\nhost: ${NAME}:${up}\r\norigin: ${origin}\r\ncookie: pernosco-${new URL(proxy.shell).port}=${TOKEN}\r\n`
    + 'upgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
  try {
    const got = await raw(up, `${upgrade}GET /steal HTTP/1.1\r\nhost: ${NAME}:${up}\r\ncookie: pernosco-x=${TOKEN}\r\n\r\n`)
    assert.match(got, /^HTTP\/1\.1 400 /)
    assert.deepEqual(received, [], 'the server saw nothing at all')
    // control: the same upgrade alone is tunnelled (the server sees it, the browser gets our 101)
    const alone = await raw(up, upgrade)
    assert.match(alone, /^HTTP\/1\.1 101 /)
    assert.equal(received.length, 1)
    assert.ok(!received.join('').includes('/steal') && !received.join('').includes(TOKEN), 'and never our cookie')
  } finally {
    proxy.close()
    backend.close()
  }
})

test('the cookie theft in Chromium and Firefox: an attacker who asks the ports learns no name, so its listener gets no cookie; told the name (the control), it would', { skip: !fs.existsSync('/usr/bin/chromium') && !process.env.CI && 'needs chromium (CI installs it)', timeout: 120_000 }, () => {
  const p = spawnSync(OWN_NETNS[0], [...OWN_NETNS.slice(1), process.execPath, '--import', 'tsx', path.join(ROOT, 'test/fixtures/cookie-theft.mts')], { encoding: 'utf8', timeout: 110_000 })
  assert.equal(p.status, 0, p.stderr)
  const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!)
  console.log(`# ${JSON.stringify(r)}`)
  for (const b of ['chromium', 'firefox']) {
    assert.ok(r[b], `${b} ran`)
    assert.equal(r[b].learnt, null, `${b}: the attacker learns no name`)
    assert.deepEqual(r[b].stolen, [], `${b}: nothing stolen`)
    assert.equal(r[b].control.length, 1, `${b}: the control: a listener on the name gets the fetch`)
    assert.match(r[b].control[0], /^pernosco-\d+=[0-9a-f]{64}$/, `${b}: the control: with the session cookie`)
  }
})
