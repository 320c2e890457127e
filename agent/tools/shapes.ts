/** Output schemas shared by the tools that answer with a plan report (agent/report.ts). */
import { z } from 'zod';

const stepReport = z.object({
  path: z.string(),
  status: z.string(),
  approval: z.enum(['required', 'auto']),
  summary: z.string(),
  exitCode: z.number().nullable().optional(),
  output: z.string().optional(),
  approvedBy: z.array(z.string()).optional(),
  noStandingApproval: z.string().optional(),
  denied: z.string().optional(),
  error: z.string().optional(),
});

export const PLAN_REPORT_SHAPE = {
  planId: z.string(),
  workflowId: z.string(),
  name: z.string(),
  status: z.string(),
  done: z.boolean(),
  steps: z.array(stepReport),
  awaitingApproval: z.array(z.string()),
};
