/**
 * Open the page in a browser where there is one, and never fail where there is none. The
 * browser gets the path of a 0600 file under the home that redirects to the URL, not the URL
 * itself: a command line is readable by every local user (`ps`), the token must not be.
 */
import { spawn } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '@claudemesh/node/client'

/** The launcher for this platform, or null where no browser can be opened (no display). */
export function launcher(env: NodeJS.ProcessEnv, platform = process.platform): string | null {
  if (platform === 'darwin') return 'open'
  if (platform === 'win32') return null
  return (env.DISPLAY ?? '') !== '' || (env.WAYLAND_DISPLAY ?? '') !== '' ? 'xdg-open' : null
}

/** Try to open `url`; resolves with a clean-up for the redirect file (a no-op when nothing was opened). */
export async function openBrowser(url: string, runDir: string, port: number, env: NodeJS.ProcessEnv): Promise<() => Promise<void>> {
  const cmd = launcher(env)
  if (cmd == null) return async () => {}
  const file = join(runDir, `ui-${port}.html`)
  await writeFileAtomic(
    file,
    `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${url}"><title>claudemesh</title><a href="${url}">open the mesh view</a>\n`
  )
  try {
    const child = spawn(cmd, [file], { detached: true, stdio: 'ignore', env })
    child.on('error', () => {})
    child.unref()
  } catch {}
  return async () => {
    await rm(file, { force: true })
  }
}
