export * from './constants.js'
export { type Fired, type Schedule, SCHEDULE_STATES, scheduleView, type ScheduleView } from './record.js'
export { isSelf, type ScheduleInput, Scheduler } from './scheduler.js'
export { parseDuration, parseTime } from './when.js'
