/** A local writer's task fields, checked with one clear error before anything is written (SPEC.md §14.5). */
import { InvalidMessageError } from '../errors.js'
import { MAX_PEER_ID_LENGTH } from '../state/constants.js'
import { MAX_DEPS, MAX_TASK_TEXT_BYTES, MAX_TITLE_LENGTH, TASK_ID, TASK_PRIORITIES, TaskFields } from '../state/task-schema.js'

export interface TaskFieldsInput {
  title?: string
  body?: string
  assignee?: string
  priority?: (typeof TASK_PRIORITIES)[number]
  deps?: string[]
}
export interface TaskInput extends TaskFieldsInput {
  title: string
}

const GROUP = /^@[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** The fields given (all of them, with defaults, when `full`), or an InvalidMessageError. */
export function checkFields(input: TaskFieldsInput, full: boolean): TaskFieldsInput {
  const out: TaskFieldsInput = {}
  if (input.title != null || full) {
    const title = String(input.title ?? '').trim()
    if (title === '' || title.length > MAX_TITLE_LENGTH)
      throw new InvalidMessageError(`a task title is 1 to ${MAX_TITLE_LENGTH} characters`)
    out.title = title
  }
  if (input.body != null || full) {
    const body = String(input.body ?? '')
    if (!TaskFields.body.safeParse(body).success)
      throw new InvalidMessageError(`a task body or result is at most ${MAX_TASK_TEXT_BYTES} bytes (as JSON)`)
    out.body = body
  }
  if (input.assignee != null || full) {
    const a = String(input.assignee ?? '')
    if (a !== '' && !GROUP.test(a) && (a.startsWith('@') || a.length > MAX_PEER_ID_LENGTH))
      throw new InvalidMessageError('an assignee is a peer id, "@group", or empty (open to anyone)')
    out.assignee = a
  }
  if (input.priority != null || full) {
    const p = input.priority ?? 'normal'
    if (!(TASK_PRIORITIES as readonly string[]).includes(p))
      throw new InvalidMessageError(`a task priority is ${TASK_PRIORITIES.join(', ')}`)
    out.priority = p
  }
  if (input.deps != null || full) {
    const deps = [...new Set(input.deps ?? [])]
    if (deps.length > MAX_DEPS || deps.some(d => !TASK_ID.test(d)))
      throw new InvalidMessageError(`dependencies are at most ${MAX_DEPS} task ids (16 hex characters each)`)
    out.deps = deps
  }
  return out
}
