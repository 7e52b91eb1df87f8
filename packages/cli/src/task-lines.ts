/**
 * Task board news for a person at a terminal (`claudemesh daemon`): the events the MCP server
 * pushes to the model (SPEC.md §14.4, §14.8) as one line each,
 * `! task <id8> [priority] "title" (why): what`. Titles, names and results are peer text: each
 * goes through `esc`, so no terminal control a peer wrote reaches the terminal.
 */
import type { MeshNode, TaskAssigned, TaskConflict, TaskLost, TaskNotice } from '@claudemesh/node'
import { TASK_WHY } from '@claudemesh/node/client'
import { esc } from './output.js'

type Priority = TaskNotice['priority']

const RESULT_MAX = 120

function head(id: string, priority: Priority | undefined, title: string, why: string): string {
  return `! task ${id.slice(0, 8)}${priority != null ? ` [${priority}]` : ''} "${esc(title.slice(0, 80))}" (${why})`
}

/** What happened, in a few words; `who` names a member (escaped). */
export function noticeWhat(n: TaskNotice, who: string): string {
  switch (n.kind) {
    case 'claimed':
      return `${who} claimed it`
    case 'lease-back':
      return `${who} holds it again (their lease had lapsed and came back)`
    case 'lease-lost':
      return n.lease === 'released'
        ? `${who} let go of it; nobody holds it`
        : `${who}'s lease ended (${n.lease ?? 'expired'}); nobody holds it`
    case 'reopened':
      return `${who} reopened it`
    case 'cancelled':
      return `${who} cancelled it`
    case 'completed': {
      const r = (n.result ?? '').split('\n')[0] ?? ''
      if (r === '') return `${who} completed it`
      return `${who} completed it: ${esc(r.length > RESULT_MAX ? `${r.slice(0, RESULT_MAX)}…` : r)}`
    }
  }
}

export function noticeText(n: TaskNotice, who: (id: string) => string): string {
  return `${head(n.id, n.priority, n.title, TASK_WHY[n.why])}: ${noticeWhat(n, who(n.by))}`
}

export function assignedText(a: TaskAssigned, who: (id: string) => string): string {
  const through = a.assignee.startsWith('@') ? ` through ${esc(a.assignee)}` : ''
  return `${head(a.id, a.priority, a.title, 'assigned to you')}: ${who(a.by)} assigned it to you${through}`
}

export function lostText(l: TaskLost, who: (id: string) => string, priority?: Priority): string {
  return `${head(l.id, priority, l.title, 'you held it')}: you lost it; ${who(l.winner)}'s claim won (stop working on it)`
}

export function conflictText(c: TaskConflict, who: (id: string) => string, priority?: Priority): string {
  return `${head(c.id, priority, c.title, 'you hold it')}: ${who(c.other)} also claimed it; yours stands (they were told they lost)`
}

/** Print this session's task news on `print` (one line each), as the MCP server would push it. */
export function printTaskNews(node: MeshNode, print: (line: string) => void): void {
  const who = (id: string): string => esc(node.presence.get(id)?.name || id.slice(-8))
  const priority = (id: string): Priority | undefined => {
    try {
      return node.data.tasks.get(id).priority
    } catch {
      return undefined
    }
  }
  node.addEventListener('task:notice', e => {
    print(noticeText(e.detail, who))
  })
  node.addEventListener('task:assigned', e => {
    print(assignedText(e.detail, who))
  })
  node.addEventListener('task:lost', e => {
    print(lostText(e.detail, who, priority(e.detail.id)))
  })
  node.addEventListener('task:conflict', e => {
    print(conflictText(e.detail, who, priority(e.detail.id)))
  })
}
