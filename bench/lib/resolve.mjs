// Resolve a dependency of one workspace package from a bench file that lives outside it
// (bench/ has no node_modules of its own): follow <pkgDir>/node_modules/<name> and its
// package.json "exports" with the "import" condition, and return a file: URL for import().
import { readFileSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const CONDITIONS = ['import', 'module-sync', 'node', 'default']

function pick(target) {
  if (typeof target === 'string') return target
  if (target == null || typeof target !== 'object') return undefined
  for (const c of CONDITIONS) {
    const t = pick(target[c])
    if (t != null) return t
  }
  return undefined
}

/** `specifier` is a bare name ('@libp2p/utils') or name + subpath ('@modelcontextprotocol/sdk/client/stdio.js'). */
export function resolveFrom(pkgDir, specifier) {
  const parts = specifier.split('/')
  const nameLen = specifier.startsWith('@') ? 2 : 1
  const name = parts.slice(0, nameLen).join('/')
  const sub = parts.length > nameLen ? `./${parts.slice(nameLen).join('/')}` : '.'
  const dir = realpathSync(join(pkgDir, 'node_modules', name))
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  let file
  const ex = pkg.exports
  if (ex == null) {
    file = sub === '.' ? (pkg.module ?? pkg.main ?? 'index.js') : sub
  } else if (typeof ex === 'string' || Object.keys(ex).every(k => !k.startsWith('.'))) {
    if (sub !== '.') throw new Error(`${name} exports no subpath ${sub}`)
    file = pick(ex)
  } else if (ex[sub] != null) {
    file = pick(ex[sub])
  } else {
    for (const [key, target] of Object.entries(ex)) {
      const star = key.indexOf('*')
      if (star < 0) continue
      const pre = key.slice(0, star)
      const post = key.slice(star + 1)
      if (sub.startsWith(pre) && sub.endsWith(post) && sub.length >= pre.length + post.length) {
        const t = pick(target)
        if (t != null) file = t.replace('*', sub.slice(pre.length, sub.length - post.length))
        break
      }
    }
  }
  if (file == null) throw new Error(`cannot resolve ${specifier} from ${pkgDir}`)
  return pathToFileURL(join(dir, file)).href
}

export async function importFrom(pkgDir, specifier) {
  return import(resolveFrom(pkgDir, specifier))
}
