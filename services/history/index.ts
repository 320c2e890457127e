export { fetchChain, planTimeline, timelineFromRuns, type RunHistory } from './timeline.js';
export { renderTimeline } from './render.js';
export type * from './types.js';
