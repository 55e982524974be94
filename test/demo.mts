// The main job end to end on locally built stand-in images: record → build, printing each
// wrapper command as it runs (-x). Real rr cannot record on these VMs, so rr is a stand-in.
import fs from 'node:fs'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { ROOT, tmpdir } from './helpers.mts'
import { BUILDER_IMAGE, podmanEnv, importImage } from './podman-env.mts'

const step = (title: string, args: string[], pre: string[] = []) => {
  console.log(`\n== ${title}: pernosco.mts ${args.join(' ')}`)
  const p = spawnSync(pre[0] ?? process.execPath, [...pre.slice(1), ...(pre.length ? [process.execPath] : []), '--import', 'tsx', path.join(ROOT, 'pernosco.mts'), '-x', ...args],
    { env: podmanEnv(), stdio: 'inherit' })
  if (p.status !== 0) { console.error(`demo: ${title} failed (exit ${p.status})`); process.exit(1) }
}
importImage(BUILDER_IMAGE, { 'usr/local/bin/db_builder': path.join(ROOT, 'test/fixtures/db_builder') })
const dir = tmpdir('pernosco-demo-'), cfg = path.join(dir, 'pernosco.json'), traces = path.join(dir, 'rr')
fs.mkdirSync(traces)
fs.writeFileSync(cfg, JSON.stringify({ runtime: 'podman', images: { builder: BUILDER_IMAGE, server: BUILDER_IMAGE } }, null, 2))
// rr needs perf_event_paranoid <= 1; as root, show it 1 in a private mount namespace only.
const flag = path.join(dir, 'paranoid'); fs.writeFileSync(flag, '1\n')
const paranoid = +fs.readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8') > 1 && process.getuid!() === 0
  ? ['unshare', '--mount', '--', 'sh', '-c', 'mount --bind "$0" /proc/sys/kernel/perf_event_paranoid && exec "$@"', flag] : []
step('record', ['--config', cfg, 'record', '--output', traces, '--', '/bin/echo', 'recorded a failing test'], paranoid)
const trace = fs.realpathSync(path.join(traces, 'latest-trace'))
step('build (dry run)', ['--config', cfg, 'build', trace, '--dry-run'])
step('build', ['--config', cfg, 'build', trace, '--shards', '2'])
console.log(`\n== the trace now holds:`)
for (const f of fs.readdirSync(trace).sort()) console.log(`   ${f}`)
console.log(`\n== the builder saw:\n${fs.readFileSync(path.join(trace, 'builder.txt'), 'utf8')}`)
