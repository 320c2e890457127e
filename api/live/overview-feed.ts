/**
 * The overview every open app shows: the plan list and each device's inbox. One poller serves
 * all open event streams: it reads the visibility store once a second while anyone listens, and
 * rebuilds the inboxes when the list changed (or every few seconds, for decisions that change
 * no search attribute, such as the first of two approvals).
 */
import type { Client } from '@temporalio/client';
import { listPlans } from '../../services/plans.js';
import { awaitingViews, inboxFrom, listItem, type InboxItem, type PlanListItem } from './plans.js';

export interface OverviewListener {
  keyId: string;
  plans(plans: PlanListItem[]): void;
  inbox(items: InboxItem[]): void;
}

const POLL_MS = 1_000;
const INBOX_REFRESH_MS = 5_000;

export class OverviewFeed {
  private readonly listeners = new Set<OverviewListener>();
  /** Streams that have not had their first plans and inbox yet. */
  private readonly fresh = new Set<OverviewListener>();
  private readonly lastInbox = new WeakMap<OverviewListener, string>();
  private lastPlans = '';
  private lastInboxAt = 0;
  private timer?: NodeJS.Timeout;
  private polling = false;
  /** A stream opened while a poll ran: poll again right after. */
  private again = false;

  constructor(
    private readonly client: Client,
    private readonly onError: (error: unknown) => void,
  ) {}

  add(listener: OverviewListener): () => void {
    this.listeners.add(listener);
    this.fresh.add(listener);
    this.timer ??= setInterval(() => void this.poll(), POLL_MS);
    void this.poll();
    return () => {
      this.listeners.delete(listener);
      this.fresh.delete(listener);
      if (this.listeners.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.lastPlans = '';
      }
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.listeners.clear();
  }

  private async poll(): Promise<void> {
    if (this.listeners.size === 0) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    this.polling = true;
    try {
      const plans = (await listPlans(this.client, { limit: 100 })).map(listItem);
      const text = JSON.stringify(plans);
      const listChanged = text !== this.lastPlans;
      this.lastPlans = text;
      const fresh = [...this.fresh];
      this.fresh.clear();
      for (const listener of this.listeners)
        if (listChanged || fresh.includes(listener)) listener.plans(plans);
      if (!listChanged && !fresh.length && Date.now() - this.lastInboxAt < INBOX_REFRESH_MS) return;
      this.lastInboxAt = Date.now();
      const views = await awaitingViews(this.client);
      // Streams that closed meanwhile are gone from the set: nothing is kept for them.
      for (const listener of this.listeners) {
        const items = inboxFrom(views, listener.keyId);
        const itemsText = JSON.stringify(items);
        if (fresh.includes(listener) || this.lastInbox.get(listener) !== itemsText) {
          this.lastInbox.set(listener, itemsText);
          listener.inbox(items);
        }
      }
    } catch (error) {
      this.onError(error);
    } finally {
      this.polling = false;
      if (this.again) {
        this.again = false;
        void this.poll();
      }
    }
  }
}
