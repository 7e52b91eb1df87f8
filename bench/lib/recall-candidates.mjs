// Candidate recall engines for bench/recall.mjs, each over the same seeded notes and with the
// node's query rules where the engine can express them: words tokenized like MiniSearch's
// default tokenizer, stemmed with `stemmer`, the last word a prefix from 3 letters, words of
// 5–16 letters fuzzy at edit distance 1, tags boosted ×2, OR of the words, top 10; author and
// tag filters applied to the ranked hits. A candidate's package is imported from the node
// package's dependencies, else from $BENCH_RECALL_MODULES (a folder with node_modules/):
// a candidate that is in neither is reported as skipped.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { root } from './harness.mjs'
import { importFrom } from './resolve.mjs'

const nodePkg = join(root, 'packages/node')

async function load(name) {
  for (const dir of [nodePkg, process.env.BENCH_RECALL_MODULES].filter(Boolean)) {
    if (existsSync(join(dir, 'node_modules', name))) {
      const m = await importFrom(dir, name)
      return m.default ?? m
    }
  }
  throw new Error(`skipped: ${name} is not installed (set BENCH_RECALL_MODULES to a folder with it)`)
}

const SPLIT = /[\n\r\p{Z}\p{P}]+/u

async function parser() {
  const { stemmer } = await importFrom(nodePkg, 'stemmer')
  const cache = new Map()
  const stem = w => {
    let s = cache.get(w)
    if (s == null) {
      s = stemmer(w.toLowerCase())
      cache.set(w, s)
    }
    return s
  }
  const stems = text =>
    text
      .split(SPLIT)
      .filter(w => w.length > 0)
      .map(stem)
  const parse = q => {
    const ws = stems(q)
    const last = ws.at(-1)
    return [...new Set(ws)].map(s => ({ stem: s, prefix: s === last && s.length >= 3, fuzzy: s.length >= 5 && s.length <= 16 }))
  }
  return { stems, parse }
}

/** Ranked ids → the first `limit` that pass the filters. */
function take(ids, f, byId, limit = 10) {
  const out = []
  for (const id of ids) {
    const n = byId.get(id)
    if (f.author != null && n.author !== f.author) continue
    if (f.tags != null && !f.tags.every(t => n.tags.includes(t))) continue
    out.push(n)
    if (out.length >= limit) break
  }
  return out
}

export const candidates = {
  /** MiniSearch 7.2's own synchronous search, with the node's options (the engine before). */
  minisearch: async () => {
    const MiniSearch = await load('minisearch')
    const { parse } = await parser()
    const { stemmer } = await importFrom(nodePkg, 'stemmer')
    const processTerm = t => stemmer(t.toLowerCase())
    return async notes => {
      const ix = new MiniSearch({
        fields: ['content', 'tags'],
        processTerm,
        searchOptions: { boost: { content: 1, tags: 2 }, processTerm }
      })
      ix.addAll(notes.map(n => ({ id: n.id, content: n.content, tags: n.tags.join(' ') })))
      return {
        search: (q, f, byId) => {
          const words = parse(q)
          const prefix = new Set(words.filter(w => w.prefix).map(w => w.stem))
          const hits = ix.search(q, { prefix: t => prefix.has(t), fuzzy: t => (t.length >= 5 && t.length <= 16 ? 1 : 0) })
          return take(
            hits.map(h => h.id),
            f,
            byId
          )
        }
      }
    }
  },

  /** FlexSearch 0.8 Index over stemmed text (forward tokenizer = prefixes; no fuzzy, no BM25). */
  flexsearch: async () => {
    const FlexSearch = await load('flexsearch')
    const { stems, parse } = await parser()
    return async notes => {
      const ix = new FlexSearch.Index({ tokenize: 'forward', resolution: 9 })
      const ids = []
      for (const [i, n] of notes.entries()) {
        ids.push(n.id)
        ix.add(i, `${stems(n.content).join(' ')} ${stems(n.tags.join(' ')).join(' ')}`)
      }
      return {
        search: (q, f, byId) => {
          const words = parse(q)
            .map(w => w.stem)
            .join(' ')
          const filtered = f.author != null || f.tags != null
          const hits = ix.search(words, { limit: filtered ? 1000 : 10, suggest: true })
          return take(
            hits.map(i => ids[i]),
            f,
            byId
          )
        },
        info: () => ({ note: 'no fuzzy matching, no BM25 (ranks by word position)' })
      }
    }
  },

  /** Orama 3 (BM25, its own English tokenizer, typo tolerance 1). */
  orama: async () => {
    const orama = await load('@orama/orama')
    return async notes => {
      const db = orama.create({ schema: { id: 'string', content: 'string', tags: 'string' } })
      await orama.insertMultiple(
        db,
        notes.map(n => ({ id: n.id, content: n.content, tags: n.tags.join(' ') })),
        1000
      )
      return {
        search: async (q, f, byId) => {
          const filtered = f.author != null || f.tags != null
          const r = await orama.search(db, { term: q, tolerance: 1, boost: { tags: 2 }, limit: filtered ? 1000 : 10 })
          return take(
            r.hits.map(h => h.document.id),
            f,
            byId
          )
        }
      }
    }
  },

  /** SQLite FTS5 (better-sqlite3), one OR expression ranked by bm25(): every expansion weighs as much as the word. */
  'fts5-flat': async () => fts5(false),
  /** SQLite FTS5, one statement: per word bm25 of exact (1), prefix (0.375) and fuzzy (0.45) parts, summed × words matched. */
  fts5: async () => fts5(true)
}

async function fts5(weighted) {
  const Database = await load('better-sqlite3')
  const { stems, parse } = await parser()
  return async notes => {
    const db = new Database(':memory:')
    db.exec("CREATE VIRTUAL TABLE ix USING fts5(content, tags, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 0')")
    db.exec("INSERT INTO ix(ix, rank) VALUES ('rank', 'bm25(1.0, 2.0)')")
    const vocab = new Set()
    const ins = db.prepare('INSERT INTO ix(rowid, content, tags) VALUES (?, ?, ?)')
    const ids = []
    db.transaction(() => {
      for (const [i, n] of notes.entries()) {
        const c = stems(n.content)
        const t = stems(n.tags.join(' '))
        for (const s of c) vocab.add(s)
        for (const s of t) vocab.add(s)
        ids.push(n.id)
        ins.run(i, c.join(' '), t.join(' '))
      }
    })()
    const alphabet = [...new Set([...vocab].join(''))].join('')
    const quote = s => `"${s.replaceAll('"', '""')}"`
    const fuzzy = s => {
      const out = new Set()
      for (let i = 0; i <= s.length; i++) {
        if (i < s.length) out.add(s.slice(0, i) + s.slice(i + 1))
        for (const c of alphabet) {
          out.add(s.slice(0, i) + c + s.slice(i))
          if (i < s.length) out.add(s.slice(0, i) + c + s.slice(i + 1))
        }
      }
      out.delete(s)
      return [...out].filter(v => vocab.has(v))
    }
    const stmts = new Map()
    const stmt = shape => {
      let st = stmts.get(shape)
      if (st == null) {
        const parts = shape.split(',').map(p => {
          const [w, k] = p.split(':')
          return `SELECT rowid, ${k === 'e' ? 1 : k === 'p' ? 0.375 : 0.45} * rank AS s, ${w} AS w FROM ix WHERE ix MATCH ?`
        })
        st = db
          .prepare(
            `SELECT rowid AS r, SUM(s) * COUNT(DISTINCT w) AS score FROM (${parts.join(' UNION ALL ')}) GROUP BY rowid ORDER BY score LIMIT ?`
          )
          .raw(true)
        stmts.set(shape, st)
      }
      return st
    }
    const flat = db.prepare('SELECT rowid FROM ix WHERE ix MATCH ? ORDER BY rank LIMIT ?').pluck(true)
    return {
      search: (q, f, byId) => {
        const words = parse(q)
        const limit = f.author != null || f.tags != null ? 100_000 : 10
        let rows
        if (!weighted) {
          const terms = []
          for (const w of words) {
            terms.push(w.prefix ? `${quote(w.stem)}*` : quote(w.stem))
            if (w.fuzzy) terms.push(...fuzzy(w.stem).map(quote))
          }
          rows = flat.all(terms.join(' OR '), limit)
        } else {
          const shape = []
          const args = []
          for (const [i, w] of words.entries()) {
            shape.push(`${i}:e`)
            args.push(quote(w.stem))
            if (w.prefix) {
              shape.push(`${i}:p`)
              args.push(`${quote(w.stem)}*`)
            }
            const fz = w.fuzzy ? fuzzy(w.stem) : []
            if (fz.length > 0) {
              shape.push(`${i}:f`)
              args.push(fz.map(quote).join(' OR '))
            }
          }
          rows = stmt(shape.join(','))
            .all(...args, limit)
            .map(r => r[0])
        }
        return take(
          rows.map(r => ids[r]),
          f,
          byId
        )
      },
      info: () => ({ vocabulary: vocab.size })
    }
  }
}
