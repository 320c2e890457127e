/**
 * The API's configuration, validated once at start-up: a bad value stops the server with a
 * message that names the variable.
 */
import { resolve } from 'node:path';
import { ConfigError, loadConfig, PROJECT_ROOT, type Config } from '../workers/config.js';

export interface ApiConfig extends Config {
  host: string;
  port: number;
  /** The origin people open (printed by `up`, in pairing links); logins must be signed for an allowed origin. */
  publicUrl: string;
  /** Origins a device may sign a login for: the public URL's, and the loopback ones of this port. */
  allowedOrigins: string[];
  /** The Temporal Web UI, linked from history for the raw events; null when there is none. */
  temporalUiUrl: string | null;
  /** The built web app (`npm run build:ui`). */
  uiDir: string;
  sessionTtlMs: number;
  /** Signed decisions one device may submit per minute (COUNTERSIGN_API_APPROVALS_PER_MINUTE, default 30). */
  approvalsPerMinute: number;
  /**
   * Proxies in front of the API whose X-Forwarded-For to believe (COUNTERSIGN_API_TRUST_PROXY: a
   * hop count; default 0). Behind a TLS proxy, set 1, or every client shares the proxy's address
   * and with it one bucket of the login and pairing rate limits.
   */
  trustProxyHops: number;
}

export const DEFAULT_API_PORT = 7780;

function originOf(url: string, key: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
    return parsed.origin;
  } catch {
    throw new ConfigError(`${key} must be an http(s) URL, got "${url}"`);
  }
}

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const base = loadConfig(env);
  const host = env.COUNTERSIGN_API_HOST ?? '127.0.0.1';
  if (!/^[A-Za-z0-9.:[\]-]{1,100}$/.test(host))
    throw new ConfigError(`COUNTERSIGN_API_HOST is not a host name or address: "${host}"`);
  const port = Number(env.COUNTERSIGN_API_PORT ?? DEFAULT_API_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`COUNTERSIGN_API_PORT must be a port number, got "${env.COUNTERSIGN_API_PORT}"`);
  const publicUrl = originOf(
    env.COUNTERSIGN_PUBLIC_URL ??
      `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`,
    'COUNTERSIGN_PUBLIC_URL',
  );
  const temporalUiUrl = env.COUNTERSIGN_TEMPORAL_UI_URL
    ? originOf(env.COUNTERSIGN_TEMPORAL_UI_URL, 'COUNTERSIGN_TEMPORAL_UI_URL')
    : null;
  const approvalsPerMinute = Number(env.COUNTERSIGN_API_APPROVALS_PER_MINUTE ?? 30);
  if (!Number.isInteger(approvalsPerMinute) || approvalsPerMinute < 1)
    throw new ConfigError(
      `COUNTERSIGN_API_APPROVALS_PER_MINUTE must be a whole number above 0, got "${env.COUNTERSIGN_API_APPROVALS_PER_MINUTE}"`,
    );
  const trustProxyHops = Number(env.COUNTERSIGN_API_TRUST_PROXY ?? 0);
  if (!Number.isInteger(trustProxyHops) || trustProxyHops < 0 || trustProxyHops > 10)
    throw new ConfigError(
      `COUNTERSIGN_API_TRUST_PROXY must be a number of proxy hops from 0 to 10, got "${env.COUNTERSIGN_API_TRUST_PROXY}"`,
    );
  return {
    ...base,
    approvalsPerMinute,
    trustProxyHops,
    host,
    port,
    publicUrl,
    allowedOrigins: [...new Set([publicUrl, `http://127.0.0.1:${port}`, `http://localhost:${port}`])],
    temporalUiUrl,
    uiDir: resolve(env.COUNTERSIGN_UI_DIR ?? resolve(PROJECT_ROOT, 'ui', 'dist')),
    sessionTtlMs: 12 * 3_600_000,
  };
}
