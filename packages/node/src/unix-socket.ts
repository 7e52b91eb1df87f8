/**
 * A unix socket only its owner can use (the control socket, §7.1; the DM socket, §8.9): a
 * stale file is replaced at start, the socket is 0600, and at stop the path goes only if it is
 * still this socket (same inode): a newer incarnation of the session may have taken it over.
 */
import { chmod, lstat, rm } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import { ensureDir } from './home.js'

export interface PrivateSocket {
  server: Server
  close: () => Promise<void>
}

export async function listenPrivate(path: string, onSocket: (socket: Socket) => void): Promise<PrivateSocket> {
  await ensureDir(dirname(path))
  await rm(path, { force: true })
  const server = createServer(onSocket)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
  await chmod(path, 0o600)
  const { ino } = await lstat(path)
  return {
    server,
    close: async () => {
      await new Promise<void>(resolve => {
        server.close(() => {
          resolve()
        })
      })
      const now = await lstat(path).then(
        st => st.ino,
        () => undefined
      )
      if (now === ino) await rm(path, { force: true })
    }
  }
}
