import { defineConfig } from 'vitest/config'

const ALL = ['packages/*/test/**/*.test.ts', 'relay/test/**/*.test.ts']
/**
 * Files whose assertions are timings under a load they make themselves (the flood test: a
 * victim must block a flooder within 5 s and keep answering): they run after the rest, on
 * their own, so the suite's other heavy files do not share the two cores with them.
 */
const ALONE = ['packages/node/test/flood.test.ts', 'packages/node/test/flood-gossip.test.ts']

export default defineConfig({
  resolve: { conditions: ['claudemesh-src'] },
  ssr: { resolve: { conditions: ['claudemesh-src'] } },
  test: {
    setupFiles: ['packages/node/src/polyfill.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'suite', include: ALL, exclude: ALONE, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'alone', include: ALONE, sequence: { groupOrder: 1 } } }
    ]
  }
})
