/**
 * libp2p's component loggers, without paying for the disabled ones. libp2p gives every
 * stream, and every protocol negotiation on it, a scoped logger (`log.newScope(...)`); the
 * default one builds two or three weald instances each time, and each asks the terminal
 * whether stderr is a TTY: ~20 µs per scope, thousands of scopes a second when a mesh of
 * many nodes starts or bursts DMs. With DEBUG naming none of a logger's names this one gives
 * an inert logger instead, and checks again for each scope, so `DEBUG=libp2p:yamux*` still
 * logs exactly what it did.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import { defaultLogger, enabled } from '@libp2p/logger'

const noop = (): void => {}

export function quietLogger(): ComponentLogger {
  const real = defaultLogger()
  const forComponent = (name: string): Logger => {
    if (enabled(name) || enabled(`${name}:error`) || enabled(`${name}:trace`)) return real.forComponent(name)
    return Object.assign(noop.bind(null), {
      enabled: false,
      error: noop,
      trace: noop,
      newScope: (scope: string) => forComponent(`${name}:${scope}`)
    })
  }
  return { forComponent }
}
