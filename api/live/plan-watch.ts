/**
 * Follows one plan for a live view. Temporal pushes: a long poll on the workflow's history
 * (`waitNewEvent`) returns as soon as an event lands (a gate opens, an approval is accepted, a
 * step starts or ends), and the view is rebuilt then. Output tails travel in heartbeats, which
 * make no events, and sub-plans have histories of their own, so while either is in play a
 * one-second tick rebuilds too. Rebuilds are coalesced and only a changed view is sent.
 */
import { toWorkflowId } from '../../services/plans.js';
import type { PlanDetail, PlanReader } from './plans.js';

const TICK_MS = 1_000;

export class PlanWatch {
  private lastSent = '';
  private building = false;
  private dirty = false;
  private tick?: NodeJS.Timeout;

  constructor(
    private readonly plans: PlanReader,
    private readonly planRef: string,
    private readonly send: (detail: PlanDetail) => void,
    private readonly signal: AbortSignal,
    private readonly onError: (error: unknown) => void,
  ) {}

  async run(): Promise<void> {
    this.signal.addEventListener('abort', () => clearInterval(this.tick), { once: true });
    const workflowId = toWorkflowId(this.planRef);
    const { workflowService, options } = this.plans.client;
    while (!this.signal.aborted) {
      let token: Uint8Array | undefined;
      do {
        // One controller per poll: the SDK leaves a listener on the signal it is given.
        const poll = new AbortController();
        const stop = () => poll.abort();
        this.signal.addEventListener('abort', stop, { once: true });
        const page = await this.plans.client
          .withAbortSignal(poll.signal, () =>
            workflowService.getWorkflowExecutionHistory({
              namespace: options.namespace,
              execution: { workflowId },
              nextPageToken: token,
              waitNewEvent: true,
              skipArchival: true,
            }),
          )
          .catch((error: unknown) => {
            if (!this.signal.aborted) this.onError(error);
            return undefined;
          })
          .finally(() => this.signal.removeEventListener('abort', stop));
        if (!page) return;
        if (page.history?.events?.length) this.refresh();
        token = page.nextPageToken?.length ? page.nextPageToken : undefined;
      } while (token && !this.signal.aborted);
      // No token: this run closed. It may have continued as new; otherwise the plan is over.
      this.refresh();
      const description = await this.plans.client.workflow
        .getHandle(workflowId)
        .describe()
        .catch(() => undefined);
      if (!description || description.status.name !== 'RUNNING') {
        await this.settle();
        // Over: a view that still shows a running step (a terminated plan) has nothing left to tick for.
        clearInterval(this.tick);
        this.tick = undefined;
        return;
      }
    }
  }

  /** Rebuilds the view (once more if events arrived meanwhile) and sends it when it changed. */
  refresh(): void {
    if (this.building) {
      this.dirty = true;
      return;
    }
    this.building = true;
    void (async () => {
      do {
        this.dirty = false;
        try {
          const detail = await this.plans.detail(this.planRef);
          if (this.signal.aborted) return;
          const text = JSON.stringify(detail);
          if (text !== this.lastSent) {
            this.lastSent = text;
            this.send(detail);
          }
          this.keepTicking(detail);
        } catch (error) {
          if (!this.signal.aborted) this.onError(error);
        }
      } while (this.dirty && !this.signal.aborted);
      this.building = false;
    })();
  }

  private keepTicking(detail: PlanDetail): void {
    const live = (tree: PlanDetail['tree']): boolean =>
      tree.view.steps.some((s) => s.status === 'running') ||
      tree.view.subPlans.some((s) => s.status === 'running' || s.status === 'awaiting_approval') ||
      tree.children.some(live);
    if (live(detail.tree) && !this.tick && !this.signal.aborted)
      this.tick = setInterval(() => this.refresh(), TICK_MS);
    if (!live(detail.tree) && this.tick) {
      clearInterval(this.tick);
      this.tick = undefined;
    }
  }

  private async settle(): Promise<void> {
    while (this.building && !this.signal.aborted) await new Promise((r) => setTimeout(r, 50));
  }
}
