/**
 * The HTTP client: same origin, JSON, the session's CSRF token on every write, and one
 * transparent re-login when the session has lapsed.
 */
import type { ApiErrorBody } from './types.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The request never reached the server (offline, server down). */
  get offline(): boolean {
    // status 0: fetch failed; 503 `offline`: the service worker had nothing cached for it.
    return this.status === 0 || this.code === 'offline';
  }
}

const RELOGIN_CODES = new Set(['session_expired', 'not_logged_in']);

export interface ApiHooks {
  /** Opens a new session; resolves true when it did. */
  relogin: () => Promise<boolean>;
  /** The server says this device is revoked. */
  revoked: (message: string) => void;
}

export class Api {
  csrfToken = '';
  private hooks: ApiHooks | undefined;

  setHooks(hooks: ApiHooks): void {
    this.hooks = hooks;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  async request<T>(method: string, path: string, body?: unknown, retried = false): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && this.csrfToken) headers['x-countersign-csrf'] = this.csrfToken;
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'offline', 'The server cannot be reached. You may be offline.');
    }
    if (response.ok) {
      if (response.status === 204) return undefined as T;
      return (await response.json()) as T;
    }
    const error = await readError(response);
    if (response.status === 401 && !retried && RELOGIN_CODES.has(error.code) && this.hooks) {
      if (await this.hooks.relogin()) return this.request<T>(method, path, body, true);
    }
    if (response.status === 401 && error.code === 'device_revoked') this.hooks?.revoked(error.message);
    throw error;
  }
}

async function readError(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as Partial<ApiErrorBody>;
    if (body.error && typeof body.error.code === 'string')
      return new ApiError(response.status, body.error.code, body.error.message ?? body.error.code);
  } catch {
    // Not JSON (a proxy's page, say): fall through to the status line.
  }
  return new ApiError(
    response.status,
    `http_${response.status}`,
    response.status === 503 || response.status === 504
      ? 'The server is not answering (it may be offline). What this device loaded before is still shown.'
      : `The server answered ${response.status} ${response.statusText}.`,
  );
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function errorCode(error: unknown): string | undefined {
  return error instanceof ApiError ? error.code : undefined;
}

export const api = new Api();
