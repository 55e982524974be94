// Issue 29, a developer's first hour: --help that explains, commands that say what comes next, a closed
// stdout that ends quietly, config errors that say what is allowed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { main, COMMANDS } from '../pernosco.mts'
import { fakeSys, traceDir, ROOT } from './helpers.mts'

test('--help: every command with what it does; COMMAND --help: each option, its meaning and default, an example', async () => {
  const f = fakeSys()
  assert.equal(await main(['--help'], f.sys), 0)
  const all = f.out[0]
  for (const [name, c] of Object.entries(COMMANDS)) assert.ok(all.includes(`\n  ${name} ${c.args}\n      ${c.what}\n`), name)
  assert.match(all, /\nGlobal options:\n  --runtime podman\|docker +default: the config's runtime, else podman if on PATH, else docker\n/)
  assert.match(all, /\n  --dry-run +print every command it would run, run nothing\n  -x +echo each command before it runs\n/)
  assert.match(all, /\nExample: pernosco\.mts record -- \.\/my-test, then build, then serve$/)
  for (const [name, c] of Object.entries(COMMANDS)) {
    const g = fakeSys()
    assert.equal(await main([name, '--help'], g.sys), 0)
    const text = g.out[0]
    assert.ok(c.options.length > 0, name)
    for (const o of c.options) {
      const line = text.split('\n').find(l => l.startsWith(`  --${o} `))
      assert.ok(line && line.trim().length > o.length + 20, `${name} --help explains --${o}: ${line}`)
    }
    assert.ok(!Object.keys(COMMANDS).filter(n => n !== name).some(n => text.includes(`\n  ${n} `)), `${name} --help is about ${name} only`)
    assert.match(text, new RegExp(`\\nExample: pernosco\\.mts ${name} `))
  }
  const b = fakeSys()
  await main(['serve', '--help'], b.sys)
  assert.match(b.out[0], /\n  --storage DIR +where the UI keeps your notes, made 0700 if missing \(default: none, nothing kept\)\n/)
  assert.match(b.out[0], /\n  --tunnel PORT +listen on PORT and PORT\+1, 1024 to 65534, for ssh -L \(default: two free ports\)\n/)
})

test('every option --help lists is one the command accepts, and every switch takes no value', async () => {
  for (const [name, c] of Object.entries(COMMANDS)) {
    for (const o of c.options) {
      const f = fakeSys()
      await main([name, `--${o}`, '--help'], f.sys)
      assert.ok(!f.err.join().includes('unknown option'), `${name} --${o}`)
    }
  }
  const f = fakeSys()
  assert.equal(await main(['package-build', traceDir(), '--skip-rr', '--dry-run'], f.sys), 0, 'a switch: --skip-rr does not eat the next word')
})

test('only-build says what it built and the serve line to run next; nothing of the kind when it failed', async () => {
  const f = fakeSys(), t = traceDir(false)
  assert.equal(await main(['only-build', t, '--runtime', 'podman'], f.sys), 0)
  assert.equal(f.out.at(-1), `Built: ${t} holds its Pernosco database; next: serve ${t}`)
  const g = fakeSys({ answer: a => a[1] === 'start' ? { code: 1, out: '' } : undefined })
  assert.equal(await main(['only-build', traceDir(false), '--runtime', 'podman'], g.sys), 1)
  assert.ok(!g.out.some(l => l.startsWith('Built')), g.out.join('\n'))
})

test('a closed stdout (`--dry-run | head`) ends the output, not the run: exit 0, nothing on stderr', async () => {
  const trace = traceDir(false)
  const env = { ...process.env, NO_COLOR: '1', SUDO_UID: '65534', SUDO_GID: '65534' }
  const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'pernosco.mts'), '--runtime', 'podman', 'build', trace, '--skip-rr', '--dry-run'],
    { env, stdio: ['ignore', 'pipe', 'pipe'] })
  p.stdout.destroy() // the reader is gone before the first line
  let err = ''
  p.stderr.on('data', d => { err += d })
  const code = await new Promise(ok => p.on('close', ok))
  assert.equal(err, '')
  assert.equal(code, 0)
})

test('schema.json: every field says what it allows (config errors quote it), with an example where a format applies', () => {
  const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'schema.json'), 'utf8'))
  const walk = (s: Record<string, unknown>, at: string): string[] => {
    const props = Object.entries((s.properties ?? {}) as Record<string, Record<string, unknown>>)
    const items = s.items ? [[`${at}[]`, s.items] as [string, Record<string, unknown>]] : []
    return [...props.map(([k, v]) => [`${at}/${k}`, v] as [string, Record<string, unknown>]), ...items].flatMap(([p, v]) => {
      const here = typeof v.description === 'string' && (!v.pattern || /e\.g\. /.test(v.description as string)) ? [] : [p]
      return [...here, ...walk(v, p)]
    })
  }
  assert.deepEqual(walk(schema, ''), [])
})
