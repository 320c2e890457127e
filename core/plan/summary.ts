import type { StepNode } from './types.js';

/** A step in one line, as approvers and histories show it: its command, gate message or tool call. */
export function stepSummary(node: StepNode, maxArgumentChars = 300): string {
  switch (node.kind) {
    case 'shell':
      return node.run;
    case 'gate':
      return node.gate;
    case 'mcp': {
      const args = JSON.stringify(node.arguments);
      return `${node.server}/${node.tool} ${args.length > maxArgumentChars ? `${args.slice(0, maxArgumentChars)}…` : args}`;
    }
  }
}
