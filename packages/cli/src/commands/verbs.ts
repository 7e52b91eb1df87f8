/** Verbs that act through a running local node: `peers`, `info`. */
import type { MeshInfo, PeerInfo } from '@claudemesh/node'
import type { Command } from 'commander'
import { ago, out, outJson, table } from '../output.js'
import { callNode, type PickFlags } from '../pick.js'

type VerbFlags = PickFlags & { json?: boolean }

function addPickFlags (cmd: Command): Command {
  return cmd
    .option('--mesh <mesh>', 'mesh name')
    .option('--session <uuid>', 'the session whose node to use (or $CLAUDEMESH_SESSION)')
    .option('--name <name>', 'the node to use, by display name')
    .option('--json', 'print JSON')
}

const groupText = (gs: PeerInfo['groups']): string => gs.map(g => (g.role != null ? `${g.name}:${g.role}` : g.name)).join(',')

export function verbCommands (program: Command, env: NodeJS.ProcessEnv): void {
  addPickFlags(program.command('peers').description('list the peers of the mesh'))
    .option('--group <group>', 'only members of this group')
    .action(async (o: VerbFlags & { group?: string }) => {
      const r = await callNode<{ self: PeerInfo, peers: PeerInfo[] }>(o, env, 'peers', { group: o.group })
      if (o.json === true) return outJson(r)
      const rows = [r.self, ...r.peers].map(p => [
        p.self ? `${p.name} (you)` : p.name, p.id.slice(-10), p.role || '-', groupText(p.groups) || '-', p.status,
        p.online ? 'online' : `offline ${ago(p.lastSeen)}`, p.summary
      ])
      out(table([['NAME', 'ID', 'ROLE', 'GROUPS', 'STATUS', 'SEEN', 'SUMMARY'], ...rows]))
    })

  addPickFlags(program.command('info').description('who this node is in the mesh'))
    .action(async (o: VerbFlags) => {
      const info = await callNode<MeshInfo>(o, env, 'info')
      if (o.json === true) return outJson(info)
      out([
        `name      ${info.name}`,
        `id        ${info.id}`,
        `mesh      ${info.mesh} (${info.meshId})`,
        `session   ${info.session}`,
        `role      ${info.role || '-'}`,
        `groups    ${groupText(info.groups) || '-'}`,
        `status    ${info.status}`,
        `peers     ${info.peersOnline} online, ${info.peersKnown} known`,
        ...info.listenAddrs.map((a, i) => `${i === 0 ? 'listening' : '         '} ${a}`)
      ].join('\n'))
    })
}
