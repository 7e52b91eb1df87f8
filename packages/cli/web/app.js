/*
 * The mesh view (SPEC.md §19). Sections arrive as server-sent events and are redrawn whole.
 * Peer text only ever becomes a text node (el() and textContent, never innerHTML), with the
 * characters that hide or reorder text shown as visible escapes, the way the CLI shows them.
 */

// the token is the second path segment: /t/<token>/; relative URLs below carry it
const TOKEN = location.pathname.split('/')[2] ?? ''
const LINE = 200
const TEXT = 4000
/** globs shown per reservation (up to 32 of 256 characters each would flood a row) */
const GLOBS = 8
/** replaced by the node's definition (the `hello` event) before any section arrives */
let unsafe = /(?!)/gu
let peers = []

function visible(ch) {
  const named = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }[ch]
  if (named != null) return named
  const cp = ch.codePointAt(0) ?? 0
  if (cp < 0x100) return `\\x${cp.toString(16).padStart(2, '0')}`
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, '0')}`
  return `\\u{${cp.toString(16)}}`
}

/** Peer text for display: unsafe characters escaped (line breaks too unless multiline), cut at max characters. */
function shown(text, multiline = false, max = multiline ? TEXT : LINE) {
  let s = String(text ?? '').replace(unsafe, visible)
  if (!multiline) s = s.replace(/[\n\t]/g, visible)
  const chars = Array.from(s)
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`
}

/** An element whose children are elements or plain strings (text nodes, never markup). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue
    if (k === 'class') e.className = v
    else if (k === 'title') e.title = v
    else e.dataset[k] = v
  }
  for (const c of children) if (c != null) e.append(typeof c === 'string' ? document.createTextNode(c) : c)
  return e
}

const $ = id => document.getElementById(id)
const fill = (id, nodes) => {
  $(id).replaceChildren(...nodes)
}
const placeholder = (text, cols) =>
  cols == null ? el('li', { class: 'muted' }, text) : el('tr', {}, Object.assign(el('td', { class: 'muted' }, text), { colSpan: cols }))

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.round(s / 60)}m ago`
  if (s < 86400) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86400)}d ago`
}

/** A time to come, as the page shows it: "in 5m" (the exact time in the tooltip). */
function until(ms) {
  const s = Math.max(0, Math.round((ms - Date.now()) / 1000))
  if (s < 60) return `in ${s}s`
  // minutes up to 100: a default reservation (1 h) reads "in 60m", not "in 1h"
  if (s < 6000) return `in ${Math.round(s / 60)}m`
  if (s < 86400) return `in ${Math.round(s / 3600)}h`
  return `in ${Math.round(s / 86400)}d`
}

const clock = ms => new Date(ms).toLocaleString()

function nameOf(id) {
  const p = peers.find(x => x.id === id)
  return p != null ? shown(p.handle ?? p.name) : shown(String(id).slice(-10))
}

const groupText = gs => gs.map(g => (g.role != null ? `${g.name}:${g.role}` : g.name)).join(', ')

function badge(status) {
  return el('span', { class: `badge s-${status}` }, status)
}

function error(d, id, cols) {
  if (d.error == null) return false
  fill(id, [placeholder(`unavailable: ${shown(d.error)}`, cols)])
  return true
}

const render = {
  hello(d) {
    unsafe = new RegExp(d.unsafe, 'gu')
  },

  self(d) {
    if (d.error != null) return
    $('self').textContent = `${shown(d.name)} · mesh ${shown(d.mesh)} · ${shown(d.status)}${d.summary ? ` · ${shown(d.summary)}` : ''}`
    $('memory-count').textContent = `${d.memories} notes`
    $('inbox-count').textContent = `${d.unread} unread`
    fill('relays', d.relays.length === 0 ? [placeholder('no relay')] : d.relays.map(relay))
    $('mailbox').textContent = `${d.held} DMs held by a relay for offline peers, ${d.toRelay} waiting for a relay, ${d.queued} queued`
  },

  peers(d) {
    if (error(d, 'peers', 7)) return
    peers = [d.self, ...d.peers]
    $('peers-count').textContent = `${d.peers.filter(p => p.online).length} online, ${d.peers.length} known`
    fill(
      'peers',
      peers.map(p =>
        el(
          'tr',
          { id: p.id, class: p.online ? 'online' : 'offline' },
          el('td', { title: p.id }, p.self ? `${shown(p.name)} (you)` : shown(p.handle ?? p.name)),
          el('td', {}, badge(p.online ? p.status : 'offline')),
          el('td', {}, shown(p.role)),
          el('td', {}, shown(groupText(p.groups))),
          el(
            'td',
            {},
            [p.repo, p.branch]
              .filter(x => x != null && x !== '')
              .map(x => shown(x))
              .join(' @ ')
          ),
          el('td', {}, shown(p.summary, false, 300)),
          el('td', {}, p.self ? 'now' : ago(p.lastSeen))
        )
      )
    )
    const groups = new Map()
    for (const p of peers)
      for (const g of p.groups)
        groups.set(g.name, [
          ...(groups.get(g.name) ?? []),
          `${p.self ? 'you' : shown(p.handle ?? p.name)}${g.role != null ? ` (${shown(g.role)})` : ''}`
        ])
    fill(
      'groups',
      groups.size === 0
        ? [placeholder('no groups')]
        : [...groups].sort().map(([g, members]) => el('li', {}, el('strong', {}, `@${shown(g)}`), ` ${members.join(', ')}`))
    )
    fill(
      'targets',
      [...peers.filter(p => !p.self).map(p => shown(p.handle ?? p.name)), ...[...groups.keys()].map(g => `@${shown(g)}`), '@all'].map(v =>
        Object.assign(el('option'), { value: v })
      )
    )
  },

  inbox(d) {
    if (error(d, 'inbox')) return
    const ms = [...d.messages].reverse()
    fill(
      'inbox',
      ms.length === 0
        ? [placeholder('no messages')]
        : ms.map(m =>
            el(
              'li',
              { id: m.id, class: m.readAt == null ? 'unread' : '' },
              el(
                'div',
                { class: 'meta' },
                `${shown(m.fromName || m.from.slice(-10))}${m.group != null ? ` → ${shown(m.to)}` : ''} · ${m.priority} · ${ago(m.sentAt)}${m.readAt == null ? ' · unread' : ''}`
              ),
              el('pre', {}, shown(m.body, true))
            )
          )
    )
  },

  sent(d) {
    if (error(d, 'sent')) return
    fill(
      'sent',
      d.messages.length === 0
        ? [placeholder('nothing sent')]
        : d.messages.map(m =>
            el(
              'li',
              { id: m.id },
              el(
                'div',
                { class: 'meta' },
                `→ ${m.group != null ? shown(m.toName) : nameOf(m.to)} `,
                badge(m.status),
                m.reads != null ? ` read by ${Object.keys(m.reads).length}` : '',
                ` · ${ago(Math.min(m.at, ...Object.values(m.times)))}`
              ),
              m.body != null
                ? el('pre', {}, shown(m.body, true))
                : el('div', { class: 'muted' }, '(sent from elsewhere: the body is not kept)'),
              m.error != null ? el('div', { class: 'muted' }, shown(m.error)) : null
            )
          )
    )
  },

  state(d) {
    if (error(d, 'state', 4)) return
    $('state-count').textContent = `${d.total} keys`
    fill(
      'state',
      d.entries.length === 0
        ? [placeholder('no keys', 4)]
        : d.entries.map(e =>
            el(
              'tr',
              {},
              el('td', {}, shown(e.key, false, 256)),
              el('td', {}, el('pre', {}, shown(e.value.json, true)), e.value.cut ? el('span', { class: 'cut' }, '(cut)') : null),
              el('td', { title: e.updatedBy }, nameOf(e.updatedBy)),
              el('td', {}, ago(e.updatedAt))
            )
          )
    )
  },

  tasks(d) {
    if (error(d, 'tasks', 7)) return
    $('tasks-count').textContent = `${d.tasks.length} tasks`
    fill(
      'tasks',
      d.tasks.length === 0
        ? [placeholder('no tasks', 7)]
        : d.tasks.map(t =>
            el(
              'tr',
              { id: t.id, class: `task s-${t.status}` },
              el('td', {}, shown(t.id)),
              el('td', {}, shown(t.priority)),
              el(
                'td',
                { title: shown(t.body, true, 1000) },
                shown(t.title),
                t.result != null && t.result !== '' ? el('pre', { class: 'result' }, shown(t.result, true, 1000)) : null
              ),
              el('td', {}, badge(t.status), ' ', taskState(t)),
              el('td', {}, t.assignee === '' ? 'anyone' : t.assignee.startsWith('@') ? shown(t.assignee) : nameOf(t.assignee)),
              el(
                'td',
                {},
                t.deps.length === 0 ? '' : t.deps.map(x => `${shown(x)}${t.blockedBy.includes(x) ? ' (not done)' : ''}`).join(', ')
              ),
              el(
                'td',
                { title: `${clock(t.createdAt)} / ${clock(t.updatedAt)}` },
                `${nameOf(t.createdBy)} ${ago(t.createdAt)} / ${nameOf(t.updatedBy)} ${ago(t.updatedAt)}`
              )
            )
          )
    )
  },

  reservations(d) {
    if (error(d, 'reservations', 7)) return
    $('reservations-count').textContent = `${d.total} live`
    fill(
      'reservations',
      d.reservations.length === 0
        ? [placeholder('no file reserved', 7)]
        : d.reservations.map(r =>
            el(
              'tr',
              { class: r.self ? 'self' : '' },
              el('td', { title: r.holder }, r.self ? 'you' : holderName(r)),
              el('td', {}, shown(r.repo, false, 300)),
              el('td', {}, r.branch === '' ? '(not git)' : shown(r.branch)),
              el(
                'td',
                {},
                ...r.globs.slice(0, GLOBS).map(g => el('code', {}, shown(g, false, 256))),
                r.globs.length > GLOBS ? `… ${r.globs.length - GLOBS} more` : null
              ),
              el('td', {}, badge(r.mode === 'shared' ? 'shared' : 'exclusive')),
              el('td', {}, shown(r.reason, false, 512)),
              el('td', { title: clock(r.expiresAt) }, until(r.expiresAt))
            )
          )
    )
  },

  gone() {
    $('conn').textContent = 'the node stopped'
    $('conn').className = 'conn down'
    source.close()
  }
}

/** What a task's state is now: its lease (holder and end) while open, else done or cancelled. */
function taskState(t) {
  if (t.status !== 'open') return ''
  if (t.holder != null) return `held by ${nameOf(t.holder)}${t.lease != null ? ` until ${until(t.lease.expiresAt)}` : ''}`
  if (t.lease != null && t.lease.state !== 'held') return `lease ${t.lease.state} (${nameOf(t.lease.claimant)})`
  return t.blockedBy.length > 0 ? 'blocked' : 'unclaimed'
}

/** A reservation's holder: its presence name when the node knows the peer, else the name it wrote. */
function holderName(r) {
  return peers.some(p => p.id === r.holder) ? nameOf(r.holder) : `${shown(r.name, false, 64)} (${shown(r.holder.slice(-10))})`
}

/** One relay: reachable or not, its mailbox stream, what it holds of ours, what it handed us. */
function relay(r) {
  return el(
    'li',
    { class: 'relay', title: r.id },
    badge(r.connected ? 'online' : 'offline'),
    ' ',
    el('code', {}, shown(r.addr, false, 300)),
    el(
      'div',
      { class: 'meta' },
      `${r.connected ? (r.mailbox ? 'mailbox open' : 'mailbox not open yet') : 'not connected'} · holds ${r.held ?? 0} of our DMs for peers who are away · handed us ${r.received ?? 0} since start`
    )
  )
}

const source = new EventSource('events')
source.onopen = () => {
  $('conn').textContent = 'live'
  $('conn').className = 'conn live'
}
source.onerror = () => {
  if (source.readyState !== EventSource.CLOSED) {
    $('conn').textContent = 'reconnecting…'
    $('conn').className = 'conn down'
  }
}
for (const [name, fn] of Object.entries(render)) {
  source.addEventListener(name, evt => {
    fn(JSON.parse(evt.data))
  })
}

/** POST an action; resolves with its result or throws its one-line error. */
async function act(action, body) {
  const res = await fetch(`api/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-claudemesh-token': TOKEN },
    body: JSON.stringify(body)
  })
  const text = await res.text()
  let r
  try {
    r = JSON.parse(text)
  } catch {
    throw new Error(text.trim() || `HTTP ${res.status}`)
  }
  if (r.ok !== true) throw new Error(r.error?.message ?? `HTTP ${res.status}`)
  return r.result
}

function form(id, output, build, done) {
  $(id).addEventListener('submit', async evt => {
    evt.preventDefault()
    const out = $(output)
    out.className = ''
    out.textContent = '…'
    try {
      out.textContent = done(await build())
    } catch (err) {
      out.className = 'error'
      out.textContent = shown(err.message)
    }
  })
}

form(
  'send-form',
  'send-result',
  () => act('send', { to: $('send-to').value, message: $('send-message').value, priority: $('send-priority').value }),
  r => {
    $('send-message').value = ''
    return r.results.map(x => `${shown(x.name)}: ${x.status}`).join(', ')
  }
)

form(
  'state-form',
  'state-result',
  () => {
    const raw = $('state-value').value
    let value
    try {
      value = JSON.parse(raw)
    } catch {
      value = raw
    }
    return act('state', { key: $('state-key').value, value })
  },
  r => {
    $('state-form').reset()
    return `set ${shown(r.entry.key)}`
  }
)

form(
  'remember-form',
  'remember-result',
  () =>
    act('remember', {
      content: $('remember-content').value,
      tags: $('remember-tags')
        .value.split(',')
        .map(t => t.trim())
        .filter(Boolean)
    }),
  r => {
    $('remember-form').reset()
    return `remembered ${shown(r.note.id)}`
  }
)

form(
  'recall-form',
  'recall-result',
  async () => act('recall', { query: $('recall-query').value }),
  r => {
    fill(
      'recall',
      r.results.length === 0
        ? [placeholder('nothing found')]
        : r.results.map(n =>
            el(
              'li',
              { id: n.id },
              el(
                'div',
                { class: 'meta' },
                `${nameOf(n.author)} · ${ago(n.createdAt)}${n.tags.length > 0 ? ` · #${n.tags.map(t => shown(t, false, 64)).join(' #')}` : ''}`
              ),
              el('pre', {}, shown(n.content, true))
            )
          )
    )
    return `${r.results.length} found`
  }
)
