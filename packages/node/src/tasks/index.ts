export * from './constants.js'
export {
  type ClaimResult,
  type TaskAssigned,
  type TaskBoardOptions,
  TaskBoard,
  type TaskChange,
  type TaskConflict,
  type TaskEvents,
  type TaskFilter,
  type TaskLost
} from './board.js'
export { checkFields, type TaskFieldsInput, type TaskInput } from './input.js'
export { beats, claimBeats, fold, type Folded, holderOf, type LeaseState, leaseState, type TaskEntries } from './rule.js'
export type { Task } from './view.js'
export type { TaskNotice, TaskNoticeKind } from './watch.js'
export { TASK_WHY, type TaskWhy } from './constants.js'
