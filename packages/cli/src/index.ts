/**
 * @packageDocumentation
 *
 * The `claudemesh` command. `main(argv)` returns the exit code; `bin.ts` loads the Node 20
 * polyfill first and calls it.
 */
import { Command, CommanderError } from 'commander'
import { contextCommands } from './commands/context.js'
import { courierCommand } from './commands/courier.js'
import { daemonCommand } from './commands/daemon.js'
import { dataCommands } from './commands/data.js'
import { doctorCommand } from './commands/doctor.js'
import { fileCommands } from './commands/file.js'
import { hookCommand } from './commands/hook.js'
import { installCommands } from './commands/install.js'
import { launchCommand } from './commands/launch.js'
import { mcpCommand } from './commands/mcp.js'
import { meshCommand } from './commands/mesh.js'
import { relayCommand } from './commands/relay.js'
import { reserveCommands } from './commands/reserve.js'
import { guardCommands } from './commands/guard.js'
import { taskCommands } from './commands/task.js'
import { scheduleCommands } from './commands/schedule.js'
import { verbCommands } from './commands/verbs.js'
import { uiCommand } from './commands/ui.js'
import { fail } from './output.js'

export function buildProgram(env: NodeJS.ProcessEnv = process.env): Command {
  const program = new Command('claudemesh')
    .description('a peer-to-peer mesh for Claude Code sessions')
    .version('0.1.0')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeErr: s => {
        process.stderr.write(s)
      }
    })
  meshCommand(program, env)
  daemonCommand(program, env)
  courierCommand(program, env)
  mcpCommand(program, env)
  hookCommand(program, env)
  launchCommand(program, env)
  relayCommand(program, env)
  installCommands(program, env)
  doctorCommand(program, env)
  verbCommands(program, env)
  dataCommands(program, env)
  taskCommands(program, env)
  scheduleCommands(program, env)
  contextCommands(program, env)
  reserveCommands(program, env)
  guardCommands(program, env)
  fileCommands(program, env)
  uiCommand(program, env)
  for (const c of program.commands) c.exitOverride()
  return program
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    await buildProgram(env).parseAsync(argv, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2
    return fail(err)
  }
}
