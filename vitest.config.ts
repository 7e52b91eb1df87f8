import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: { conditions: ['claudemesh-src'] },
  ssr: { resolve: { conditions: ['claudemesh-src'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'relay/test/**/*.test.ts'],
    setupFiles: ['packages/node/src/polyfill.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2
  }
})
