/** libp2p's loggers (transport/logger.ts): inert unless DEBUG names them, then the real ones. */
import { disable, enable } from '@libp2p/logger'
import { afterEach, describe, expect, it } from 'vitest'
import { quietLogger } from '../src/transport/logger.js'

describe('quietLogger', () => {
  afterEach(() => {
    disable()
  })

  it('gives inert loggers and scopes when DEBUG names none of them', () => {
    const log = quietLogger().forComponent('libp2p:yamux')
    expect(log.enabled).toBe(false)
    const scoped = log.newScope('stream:1')
    expect(scoped.enabled).toBe(false)
    expect(() => {
      scoped('a %s', 'b')
      scoped.error('e')
      scoped.trace('t')
    }).not.toThrow()
  })

  it('gives the real logger to a component or a scope DEBUG names', () => {
    enable('libp2p:yamux*,-libp2p:yamux:muted*')
    const logger = quietLogger()
    expect(logger.forComponent('libp2p:yamux').enabled).toBe(true)
    expect(logger.forComponent('libp2p:yamux').newScope('stream:1').enabled).toBe(true)
    expect(logger.forComponent('libp2p:yamux').newScope('muted').enabled).toBe(false)
    expect(logger.forComponent('libp2p:noise').enabled).toBe(false)
    // a scope DEBUG names under a component it does not
    enable('libp2p:mplex:stream*')
    expect(quietLogger().forComponent('libp2p:mplex').newScope('stream').enabled).toBe(true)
  })
})
