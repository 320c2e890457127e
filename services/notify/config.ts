/**
 * The control worker's notification settings, from the environment. Every channel is optional:
 * with none configured, gates are still recorded and approvals work from the app and the CLI.
 */
import { resolve } from 'node:path';
import type { OneTapCeiling } from '../../core/notify/risk.js';
import { ConfigError } from '../../workers/config.js';

export interface NotifyConfig {
  /** The web app's public address: notices link to it. */
  publicUrl: string;
  ntfy?: {
    /** Where the control worker publishes. */
    server: string;
    /** What devices subscribe to (the same server, as seen from a phone). */
    publicServer: string;
    /** An ntfy access token (`tk_…`), sent as a bearer token. */
    token?: string | undefined;
  };
  /** A Firebase service account JSON file. */
  fcmServiceAccountPath?: string | undefined;
  /** VAPID `sub`: a mailto: or https: address push services can reach the operator at. */
  vapidSubject: string;
  /** Push endpoints may be on this machine or a private network, or http (a test installation only). */
  allowLocalPushEndpoints: boolean;
  /** Per request, for every channel. */
  requestTimeoutMs: number;
  /** The highest risk a notification may offer one-tap Approve/Deny for, whatever a plan asks. */
  oneTapCeiling?: OneTapCeiling | undefined;
}

function url(name: string, value: string): string {
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http(s)');
    return parsed.toString().replace(/\/+$/, '');
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got "${value}"`);
  }
}

export function loadNotifyConfig(env: NodeJS.ProcessEnv = process.env): NotifyConfig {
  const publicUrl = url(
    'COUNTERSIGN_PUBLIC_URL',
    env.COUNTERSIGN_PUBLIC_URL ?? `http://127.0.0.1:${env.COUNTERSIGN_API_PORT ?? 7780}`,
  );
  const ntfyServer = env.COUNTERSIGN_NTFY_URL
    ? url('COUNTERSIGN_NTFY_URL', env.COUNTERSIGN_NTFY_URL)
    : undefined;
  const token = env.COUNTERSIGN_NTFY_TOKEN || undefined;
  if (token && !/^[\x21-\x7e]{1,256}$/.test(token))
    throw new ConfigError('COUNTERSIGN_NTFY_TOKEN must be printable ASCII without spaces');
  const vapidSubject =
    env.COUNTERSIGN_VAPID_SUBJECT ??
    (publicUrl.startsWith('https:') ? publicUrl : 'mailto:countersign@localhost');
  if (!/^(mailto:|https:)/.test(vapidSubject))
    throw new ConfigError(
      `COUNTERSIGN_VAPID_SUBJECT must start with mailto: or https:, got "${vapidSubject}"`,
    );
  const timeout = Number(env.COUNTERSIGN_NOTIFY_TIMEOUT_MS ?? 10_000);
  if (!Number.isInteger(timeout) || timeout < 100 || timeout > 120_000)
    throw new ConfigError('COUNTERSIGN_NOTIFY_TIMEOUT_MS must be an integer between 100 and 120000');
  const ceiling = env.COUNTERSIGN_ONE_TAP_MAX_RISK ?? 'medium';
  if (!['none', 'low', 'medium', 'high'].includes(ceiling))
    throw new ConfigError(`COUNTERSIGN_ONE_TAP_MAX_RISK must be none, low, medium or high, got "${ceiling}"`);
  return {
    publicUrl,
    oneTapCeiling: ceiling as OneTapCeiling,
    ...(ntfyServer
      ? {
          ntfy: {
            server: ntfyServer,
            publicServer: env.COUNTERSIGN_NTFY_PUBLIC_URL
              ? url('COUNTERSIGN_NTFY_PUBLIC_URL', env.COUNTERSIGN_NTFY_PUBLIC_URL)
              : ntfyServer,
            token,
          },
        }
      : {}),
    fcmServiceAccountPath: env.COUNTERSIGN_FCM_SERVICE_ACCOUNT
      ? resolve(env.COUNTERSIGN_FCM_SERVICE_ACCOUNT)
      : undefined,
    vapidSubject,
    allowLocalPushEndpoints: env.COUNTERSIGN_PUSH_ALLOW_LOCAL === '1',
    requestTimeoutMs: timeout,
  };
}
