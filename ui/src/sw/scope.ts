/**
 * The service worker's global scope, typed (this folder compiles with the WebWorker library, not
 * the DOM's), and the hook tests await.
 */

/** Set on the global scope so a test can await what the last event started. */
export interface TestHooks {
  /**
   * The work of the last `push`, `notificationclick` or `pushsubscriptionchange` handled: a
   * click's promise resolves to its one-tap outcome (or undefined when it only opened the app).
   */
  countersignLastAction?: Promise<unknown>;
}

declare const self: ServiceWorkerGlobalScope & TestHooks;

export const sw = self;

/**
 * Keeps the worker alive until `work` settles, and records it for tests. Events dispatched by a
 * script (tests do `self.dispatchEvent(new PushEvent('push', …))`) are not trusted, and their
 * `waitUntil` throws: the work runs all the same.
 */
export function keepAlive<T>(event: ExtendableEvent, work: Promise<T>): Promise<T> {
  sw.countersignLastAction = work;
  // Marks the promise handled: a failure is already turned into a notification or left to the caller.
  void work.catch(() => undefined);
  try {
    event.waitUntil(work);
  } catch {
    // An untrusted (script-dispatched) event: nothing to extend.
  }
  return work;
}
