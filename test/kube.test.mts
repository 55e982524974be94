// Issue 20: README's Kubernetes Job for the db builder (section "On a cluster") against the argv POLICY and
// builderArgv build. Each POLICY flag must be either matched by a field here or named as having no pod
// field; so a change to either side alone fails this test.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseAllDocuments } from 'yaml'
import { readmeManifest } from './helpers.mts'
import { POLICY, builderArgv, parseConfig, type Ctx } from '../pernosco.mts'

type Obj = Record<string, any>

test('the Job and its NetworkPolicy say what POLICY says, field by field, and nothing else', () => {
  const [job, netpol] = parseAllDocuments(readmeManifest()).map(d => d.toJS() as Obj)
  const cfg = parseConfig('{"user": "1000:1000"}', 'test')
  const c: Ctx = { rt: 'podman', cfg, rootless: false, uid: 1000, gid: 1000, name: 'pernosco-builder-x', seccomp: '/p/seccomp.json' }
  const policy = POLICY(c), argv = builderArgv(c, '/t', [], {})
  const vals = (a: string[], flag: string) => a.flatMap((x, i) => (x === flag ? [a[i + 1]] : []))
  const pod = job.spec.template.spec, box = pod.containers[0]
  const gib = (s: string) => s.replace(/g$/, 'Gi')
  // Every flag of POLICY, with the pod field(s) that stand for it: a new flag fails here until it is placed.
  const FIELDS: Record<string, () => void> = {
    '--name': () => assert.equal(job.metadata.name, 'pernosco-db-builder'),
    '--rm': () => assert.ok(job.spec.ttlSecondsAfterFinished > 0 && job.spec.backoffLimit === 0),
    '--network': () => {
      assert.deepEqual(vals(policy, '--network'), ['none'])
      assert.equal(pod.hostNetwork, false)
      assert.equal(pod.dnsPolicy, 'None')
      assert.deepEqual(pod.dnsConfig, { nameservers: ['127.0.0.1'] })
      assert.deepEqual(netpol, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'pernosco-db-builder-no-network' },
        spec: { podSelector: { matchLabels: job.spec.template.metadata.labels }, policyTypes: ['Ingress', 'Egress'] } }, 'deny all, both ways, for these pods')
    },
    '--cap-drop': () => {
      assert.deepEqual(vals(policy, '--cap-drop'), ['ALL'])
      assert.deepEqual(vals(policy, '--cap-add'), [], 'the default config adds none back')
      assert.deepEqual(box.securityContext.capabilities, { drop: ['ALL'] })
    },
    '--security-opt': () => {
      assert.deepEqual(vals(policy, '--security-opt'), ['no-new-privileges', 'seccomp=/p/seccomp.json', 'apparmor=unconfined'])
      assert.equal(box.securityContext.allowPrivilegeEscalation, false)
      assert.equal(box.securityContext.privileged, false)
      assert.deepEqual(pod.securityContext.seccompProfile, { type: 'Localhost', localhostProfile: 'pernosco.json' })
      assert.deepEqual(pod.securityContext.appArmorProfile, { type: 'Unconfined' })
    },
    '--read-only': () => assert.equal(box.securityContext.readOnlyRootFilesystem, true),
    '--tmpfs': () => {
      const size = /size=(\w+)/.exec(vals(policy, '--tmpfs')[0])![1]
      assert.match(vals(policy, '--tmpfs')[0], /^\/tmp:rw,exec,nosuid,nodev,mode=1777,/)
      assert.deepEqual(pod.volumes.find((v: Obj) => v.name === 'tmp'), { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: gib(size) } })
    },
    '--init': () => assert.equal(pod.shareProcessNamespace, undefined, 'no pod field: README says so'),
    '--hostname': () => assert.deepEqual([pod.hostname], vals(policy, '--hostname')),
    '--ipc': () => assert.ok(vals(policy, '--ipc')[0] === 'private' && pod.hostIPC === false && pod.hostPID === false),
    '--memory': () => assert.deepEqual(box.resources, { limits: { memory: gib(vals(policy, '--memory')[0]) } }),
    '--memory-swap': () => assert.deepEqual(vals(policy, '--memory-swap'), vals(policy, '--memory'), 'no swap: a pod has none unless the node allows it'),
    '--pids-limit': () => assert.equal(box.resources.limits.pids, undefined, 'no pod field: README says so'),
    '--user': () => {
      assert.deepEqual(vals(policy, '--user'), ['1000:1000'])
      assert.deepEqual([pod.securityContext.runAsNonRoot, pod.securityContext.runAsUser, pod.securityContext.runAsGroup], [true, 1000, 1000])
    },
    '--http-proxy=false': () => assert.deepEqual(box.env.map((e: Obj) => e.name), ['HOME', 'RUST_BACKTRACE'], 'no proxy variables: only these'),
    '--no-hosts': () => assert.equal(pod.hostAliases, undefined, 'kubelet writes the pod\'s own /etc/hosts, never the node\'s entries'),
    '--pull': () => assert.equal(box.imagePullPolicy, undefined, 'the cluster pulls; pin the image by digest (README)'),
    '--env': () => assert.deepEqual(box.env.map((e: Obj) => `${e.name}=${e.value}`), vals(argv, '--env'), 'POLICY\'s and builderArgv\'s, no more'),
  }
  const flags = policy.filter(a => a.startsWith('--') && a !== '--cap-add').map(a => a.replace(/=.*/, a.startsWith('--http-proxy') ? '=false' : ''))
  for (const f of new Set(flags)) {
    assert.ok(f in FIELDS, `POLICY's ${f} has no counterpart in the manifest's check: place it`)
    FIELDS[f]()
  }
  assert.deepEqual(Object.keys(FIELDS).sort(), [...new Set(flags)].sort(), 'and no check for a flag POLICY no longer has')
  // The builder's own: its image, entry point, arguments, and the trace as the only data volume.
  assert.equal(box.image, cfg.images.builder)
  assert.deepEqual([...box.command, ...box.args], argv.slice(argv.indexOf('--entrypoint') + 1).filter(a => a !== cfg.images.builder))
  assert.deepEqual(box.volumeMounts, [{ name: 'trace', mountPath: '/trace' },
    { name: 'trace', mountPath: '/trace/pernosco-given-to-builder', subPath: 'pernosco-given-to-builder', readOnly: true }, { name: 'tmp', mountPath: '/tmp' }])
  assert.deepEqual(pod.volumes.map((v: Obj) => v.name), ['trace', 'tmp'])
  assert.deepEqual(vals(argv, '--mount').map(m => /dst=([^,]+)/.exec(m)![1]), ['/trace', '/trace/pernosco-given-to-builder'])
  assert.ok(vals(argv, '--mount')[1].endsWith(',readonly'), 'the marker read-only, as in the manifest')
  // What has no counterpart on one machine: no token, no service links, one container, no host namespaces.
  assert.equal(pod.automountServiceAccountToken, false)
  assert.equal(pod.enableServiceLinks, false)
  assert.equal(pod.containers.length, 1)
  assert.equal(pod.initContainers, undefined)
  assert.equal(pod.restartPolicy, 'Never')
})
