/** Every workflow the workers register. This file is the webpack entry for the workflow bundle. */
export { planWorkflow } from './plan.js';
export { deviceRegistryWorkflow } from './registry.js';
export { workspaceJanitorWorkflow } from './janitor.js';
export { notifySettingsWorkflow } from './notify-settings.js';
export { notifyTestWorkflow } from './notify-test.js';
