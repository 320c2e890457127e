/**
 * What the server pushes: the inbox, the plan list and the plan being looked at, over one
 * `EventSource('/api/events')`. The latest of each is kept here so screens show it at once.
 */
import { api, ApiError, errorText } from './api.js';
import type { InboxItem, PlanBody, PlanListing } from './types.js';

export interface Loadable<T> {
  data: T | undefined;
  loading: boolean;
  error: string;
}

export class Live {
  inbox = $state<Loadable<InboxItem[]>>({ data: undefined, loading: false, error: '' });
  plans = $state<Loadable<PlanListing[]>>({ data: undefined, loading: false, error: '' });
  /** Plan bodies by the id they were asked for, as last loaded or pushed. */
  planBodies = $state<Record<string, PlanBody>>({});
  connected = $state(false);
  /** Set when the server stops live updates for the watched plan. */
  planError = $state('');
  online = $state(typeof navigator === 'undefined' ? true : navigator.onLine);

  private source: EventSource | undefined;
  private watched: string | undefined;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private running = false;

  constructor() {
    window.addEventListener('online', () => {
      this.online = true;
      if (this.running) this.open();
    });
    window.addEventListener('offline', () => (this.online = false));
  }

  start(): void {
    this.running = true;
    this.open();
    void this.loadInbox();
  }

  stop(): void {
    this.running = false;
    this.source?.close();
    this.source = undefined;
    this.connected = false;
  }

  /** Adds `plan` events for this plan (the plan detail screen); undefined stops them. */
  watch(planId: string | undefined): void {
    if (planId === this.watched) return;
    this.watched = planId;
    this.planError = '';
    if (this.running) this.open();
  }

  async loadInbox(): Promise<void> {
    await load(this.inbox, async () => (await api.get<{ items: InboxItem[] }>('/api/inbox')).items);
  }

  async loadPlans(): Promise<void> {
    await load(
      this.plans,
      async () => (await api.get<{ plans: PlanListing[] }>('/api/plans?filter=all')).plans,
    );
  }

  async loadPlan(planId: string): Promise<PlanBody> {
    const body = await api.get<PlanBody>(`/api/plans/${encodeURIComponent(planId)}`);
    this.planBodies[planId] = body;
    return body;
  }

  private open(): void {
    this.source?.close();
    clearTimeout(this.retry);
    const url = this.watched ? `/api/events?plan=${encodeURIComponent(this.watched)}` : '/api/events';
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => (this.connected = true);
    source.onerror = (event) => {
      // The server's own `error` event (live updates for a plan stopped) arrives here too, with data.
      const data = event instanceof MessageEvent ? parse<{ message?: string }>(event) : undefined;
      if (data) {
        this.planError = data.message ?? 'live updates for this plan stopped; reload to retry';
        return;
      }
      this.connected = false;
      // The browser retries by itself unless the answer was not an event stream (a 401, say).
      if (source.readyState === EventSource.CLOSED && this.running) {
        this.retry = setTimeout(() => void this.reopen(), 5_000);
      }
    };
    source.addEventListener('inbox', (e) => {
      const data = parse<{ items: InboxItem[] } | InboxItem[]>(e);
      if (data) this.inbox.data = Array.isArray(data) ? data : data.items;
    });
    source.addEventListener('plans', (e) => {
      const data = parse<{ plans: PlanListing[] } | PlanListing[]>(e);
      if (data) this.plans.data = Array.isArray(data) ? data : data.plans;
    });
    source.addEventListener('plan', (e) => {
      const data = parse<PlanBody>(e);
      if (data && this.watched) this.planBodies[this.watched] = data;
    });
  }

  /** A closed stream is often a lapsed session: one cheap request re-logs in, then reopen. */
  private async reopen(): Promise<void> {
    try {
      await api.get('/api/session');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'device_revoked') return;
    }
    if (this.running) this.open();
  }
}

function parse<T>(event: Event): T | undefined {
  try {
    return JSON.parse((event as MessageEvent<string>).data) as T;
  } catch {
    return undefined;
  }
}

async function load<T>(target: Loadable<T>, fetcher: () => Promise<T>): Promise<void> {
  target.loading = true;
  try {
    target.data = await fetcher();
    target.error = '';
  } catch (e) {
    target.error = errorText(e);
  } finally {
    target.loading = false;
  }
}

export const live = new Live();
