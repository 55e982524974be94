// The hand-written clean-up walk that issue 17 replaced with one find command (pernosco.mts at 897daa5^, verbatim but
// for these imports and stubs), kept for the bench's comparison only: bench/run.mts times it beside cleanArgv's find.
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { spawnSync } from 'node:child_process'
function attempt<T>(f: () => T): T | undefined { try { return f() } catch { return undefined } }
const chalk = { yellow: (s: string) => s }
type Run = { sys: { uid: number; err(l: string): void } }
const runAs = (_r: Run): [number, number] => [65534, 65534]
/** Why an entry must go, or '' when it may stay. Owners: the container's user, and us (our own writes). */
function unsafeEntry(p: string, st: fs.Stats, uids: number[]): string {
  if (!uids.includes(st.uid)) return `owned by uid ${st.uid}`
  if (!st.isSymbolicLink()) return st.isFile() || st.isDirectory() ? '' : 'a device, FIFO or socket'
  // Decided from the link's text, never by resolving it: resolving a name the builder chose can trigger an
  // automount (/net/NAME), a lookup around --network none, or hang. Relative with no `..`: each step stays
  // below the link's own directory, and every other link left here passes the same rule.
  const text = fs.readlinkSync(p)
  const plain = !path.isAbsolute(text) && !text.split('/').includes('..')
  return plain ? '' : 'a symlink that could point out of the trace'
}
/** Mode bits the builder may not leave: setuid, setgid, and group or world write (another local user could
 * swap an entry between our checks and our writes). */
function modeFixes(mode: number): string[] {
  const fixes: string[] = []
  if (mode & 0o6000) fixes.push('setuid/setgid bit')
  if (mode & 0o022) fixes.push('group/world write')
  return fixes
}
/** GNU rm removes a tree without following any link met on the way (fts, openat with O_NOFOLLOW), even one
 * swapped in meanwhile by a local user who owns a directory there; node's rmSync works by path names. */
const removeTree = (p: string) => spawnSync('rm', ['-rf', '--', p], { stdio: 'ignore' }).status === 0
/** A name that is not UTF-8 has no string (node would put U+FFFD in it): renamed by its bytes first. */
function named(dir: string, raw: Buffer): string {
  const name = raw.toString()
  if (Buffer.from(name).equals(raw)) return name
  const safe = `pernosco-renamed-${crypto.randomBytes(4).toString('hex')}`
  fs.renameSync(Buffer.concat([Buffer.from(dir + '/'), raw]), path.join(dir, safe))
  return safe
}
/** Remove or neutralise what could make a later host-side read hang or a write land elsewhere. Each
 * directory is closed to others (go-w) before it is read, so only entries another local user owns can
 * change under us, and those go whole, by rm. */
function cleanTree(trace: string, dir: string, uids: number[]): string[] {
  const names = attempt(() => fs.readdirSync(dir, { encoding: 'buffer' }))
  if (!names) return [`${path.relative(trace, dir)}: could NOT read it`]
  return names.flatMap(raw => {
    const p = path.join(dir, named(dir, raw))
    const st = fs.lstatSync(p)
    const rel = path.relative(trace, p)
    const why = unsafeEntry(p, st, uids)
    // Files a nested user namespace left under another uid may resist removal: say so, go on.
    if (why) return [`${rel}: ${why}, ${removeTree(p) ? 'removed' : 'could NOT remove it'}`]
    if (st.isSymbolicLink()) return []
    // Ours, not a symlink, as lstat showed. A directory made unreadable (mode 000) is opened up for us.
    const mode = (st.mode & 0o7777 & ~0o6022) | (st.isDirectory() ? 0o700 : 0)
    if (mode !== (st.mode & 0o7777)) fs.chmodSync(p, mode)
    const fixes = modeFixes(st.mode)
    const below = st.isDirectory() ? cleanTree(trace, p, uids) : []
    return fixes.length ? [`${rel}: ${fixes.join(' and ')}, cleared`, ...below] : below
  })
}
/** After a container wrote `dir`: the trace after the builder, the storage dir after the app server. */
export function sanitize(r: Run, dir: string, who: string, what: string) {
  const st = fs.statSync(dir)
  const root = st.mode & 0o7777
  if (root & 0o6022) fs.chmodSync(dir, root & ~0o6022) // it can chmod its mount point
  if (root & 0o022) r.sys.err(chalk.yellow(`pernosco: ${who} left ${what} others-writable, cleared`))
  // Whose entries stay: the containers' user's, ours, and the directory owner's (your recording, your notes).
  for (const f of cleanTree(dir, dir, [runAs(r)[0], r.sys.uid, st.uid])) {
    r.sys.err(chalk.yellow(`pernosco: ${who} left ${f}`))
  }
}
