/** Verbs that act through a running local node: `peers`, `info`, `send`, `inbox`, `status`. */
import { type CheckResult, type MeshInfo, type MessageStatus, type PeerInfo, PRIORITIES, type SendResult } from '@claudemesh/node/client'
import type { Command } from 'commander'
import { ago, esc, out, outJson, table, UsageError } from '../output.js'
import { callNode, type PickFlags } from '../pick.js'

type VerbFlags = PickFlags & { json?: boolean }

/** The flags every verb takes to pick its node, plus --json. */
export function addPickFlags(cmd: Command): Command {
  return cmd
    .option('--mesh <mesh>', 'mesh name')
    .option('--session <uuid>', 'the session whose node to use (or $CLAUDEMESH_SESSION)')
    .option('--name <name>', 'the node to use, by display name')
    .option('--json', 'print JSON')
}

const groupText = (gs: PeerInfo['groups']): string => gs.map(g => (g.role != null ? `${g.name}:${g.role}` : g.name)).join(',')

export function verbCommands(program: Command, env: NodeJS.ProcessEnv): void {
  addPickFlags(program.command('peers').description('list the peers of the mesh'))
    .option('--group <group>', 'only members of this group')
    .action(async (o: VerbFlags & { group?: string }) => {
      const r = await callNode<{ self: PeerInfo; peers: PeerInfo[] }>(o, env, 'peers', { group: o.group })
      if (o.json === true) return outJson(r)
      const rows = [r.self, ...r.peers].map(p => [
        p.self ? `${p.name} (you)` : (p.handle ?? p.name),
        p.id.slice(-10),
        p.role || '-',
        groupText(p.groups) || '-',
        p.status,
        p.online ? 'online' : `offline ${ago(p.lastSeen)}`,
        p.summary
      ])
      out(table([['NAME', 'ID', 'ROLE', 'GROUPS', 'STATUS', 'SEEN', 'SUMMARY'], ...rows]))
      // who is touching what, where (SPEC.md §15.5)
      for (const p of [r.self, ...r.peers]) {
        for (const x of p.reservations ?? [])
          out(
            `${esc(p.self ? `${p.name} (you)` : (p.handle ?? p.name))} reserves ${esc(x.globs.join(' '))} in ${esc(x.repo)}${x.branch !== '' ? `@${esc(x.branch)}` : ''} (${x.mode})${x.reason !== '' ? `: ${esc(x.reason)}` : ''}`
          )
      }
    })

  addPickFlags(program.command('info').description('who this node is in the mesh')).action(async (o: VerbFlags) => {
    const info = await callNode<MeshInfo>(o, env, 'info')
    if (o.json === true) return outJson(info)
    out(
      [
        `name      ${esc(info.name)}`,
        `id        ${esc(info.id)}`,
        `mesh      ${esc(info.mesh)} (${esc(info.meshId)})`,
        `session   ${esc(info.session)}`,
        `role      ${esc(info.role) || '-'}`,
        `groups    ${esc(groupText(info.groups)) || '-'}`,
        `status    ${esc(info.status)}`,
        `peers     ${info.peersOnline} online, ${info.peersKnown} known`,
        ...(info.relays ?? []).map((r, i) => `${i === 0 ? 'relays' : '      '}    ${esc(r.addr)} (${relayText(r)})`),
        ...((info.held ?? 0) + (info.toRelay ?? 0) > 0 ? [`mailbox   ${info.held} held by a relay, ${info.toRelay} waiting for one`] : []),
        ...(info.limits != null
          ? [
              `limits    per peer: DMs ${info.limits.dm.rate}/s (burst ${info.limits.dm.burst}), group messages ${info.limits.group.rate}/s (burst ${info.limits.group.burst}); unread ≤ ${info.limits.senderUnread} per peer, ${info.limits.totalUnread} in all`
            ]
          : []),
        ...info.listenAddrs.map((a, i) => `${i === 0 ? 'listening' : '         '} ${esc(a)}`)
      ].join('\n')
    )
  })

  addPickFlags(
    program
      .command('send <to> <message...>')
      .description(
        'message a peer (its name as `peers` shows it, name#idsuffix, id, or id prefix/suffix), @group, @all or *; several targets separated by commas'
      )
  )
    .option('--priority <priority>', 'now, next or low', 'next')
    .option('--reply-to <id>', 'the message this answers')
    .action(async (to: string, words: string[], o: VerbFlags & { priority: string; replyTo?: string }) => {
      if (!(PRIORITIES as readonly string[]).includes(o.priority))
        throw new UsageError(`invalid priority "${o.priority}": use now, next or low`)
      const message = words.join(' ')
      const targets = to
        .split(',')
        .map(t => t.trim())
        .filter(Boolean)
      const r = await callNode<{ results: SendResult[] }>(o, env, 'send', {
        to: targets,
        message,
        priority: o.priority,
        replyTo: o.replyTo
      })
      if (o.json === true) return outJson(r.results)
      out(table(r.results.map(x => [x.id, x.name, x.status])))
    })

  addPickFlags(program.command('inbox').description('messages received by this session (marks them read)'))
    .option('--unread', 'only unread messages (the default)')
    .option('--all', 'read messages too')
    .option('--limit <n>', 'at most n messages', '20')
    .option('--keep-unread', 'do not mark them read')
    .action(async (o: VerbFlags & { unread?: boolean; all?: boolean; limit: string; keepUnread?: boolean }) => {
      const limit = Number(o.limit)
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError('--limit takes a whole number from 1 to 500')
      const r = await callNode<CheckResult>(o, env, 'inbox', { limit, unreadOnly: o.all !== true, markRead: o.keepUnread !== true })
      if (o.json === true) return outJson(r)
      if (r.messages.length === 0) return out(o.all === true ? 'no messages' : 'no unread messages')
      for (const m of r.messages) {
        // the header is one line whatever the peer put in its name; the body keeps its lines
        const head = [
          new Date(m.sentAt).toISOString(),
          esc(m.fromName || m.from.slice(-10)),
          m.group != null ? `→ ${esc(m.to)}` : '',
          `[${esc(m.priority)}]`,
          esc(m.id),
          m.replyTo != null ? `(re ${esc(m.replyTo)})` : ''
        ]
        out(`${head.filter(Boolean).join('  ')}\n  ${esc(m.body, true).replace(/\n/g, '\n  ')}`)
      }
      if (r.remaining > 0) out(`${r.remaining} more unread`)
    })

  addPickFlags(program.command('status <id>').description('delivery status of a message this session sent')).action(
    async (id: string, o: VerbFlags) => {
      const s = await callNode<MessageStatus>(o, env, 'status', { id })
      if (o.json === true) return outJson(s)
      const times = Object.entries(s.times)
        .map(([k, v]) => `${k} ${new Date(v).toISOString()}`)
        .join(', ')
      out(`${esc(s.id)} → ${esc(s.toName)} (${esc(s.to.slice(-10))}): ${esc(s.status)}${times !== '' ? ` (${esc(times)})` : ''}`)
      if (s.reads != null) out(`read by ${Object.keys(s.reads).length} member(s)`)
    }
  )
}

/** One relay as `info` shows it: reachable, its mailbox, what it holds of ours and handed us (SPEC.md §7.2). */
export function relayText(r: MeshInfo['relays'][number]): string {
  const link = r.connected ? (r.mailbox ? 'connected, mailbox open' : 'connected') : 'not connected'
  return `${link}; holds ${r.held ?? 0} of our DMs for peers who are away, handed us ${r.received ?? 0} since start`
}
