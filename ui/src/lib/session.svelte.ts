/**
 * Who this device is and whether it has a session: key in IndexedDB, login by signing the
 * server's challenge, CSRF token kept in memory only.
 */
import { api, ApiError } from './api.js';
import { signLogin } from './crypto.js';
import { forgetDevice, loadDevice, saveDevice, type StoredDevice } from './keystore.js';
import type { DeviceInfo, SessionBody } from './types.js';

export type SessionState =
  /** Reading the key store and asking the server. */
  | 'starting'
  /** No key on this device: pairing or joining is the only way on. */
  | 'unpaired'
  /** Key made, waiting for an existing device to introduce it. */
  | 'waiting'
  | 'ready'
  /** The server is out of reach; what was loaded before can still be read. */
  | 'offline'
  | 'revoked'
  | 'error';

export class Session {
  state = $state<SessionState>('starting');
  // Raw, not a deep proxy: it holds CryptoKeys and is stored in IndexedDB by structured clone.
  device = $state.raw<StoredDevice | undefined>(undefined);
  /** The server's view of this device (role, who introduced it). */
  info = $state<DeviceInfo | undefined>(undefined);
  message = $state('');
  private loggingIn: Promise<boolean> | undefined;

  constructor() {
    api.setHooks({
      relogin: () => this.login(),
      revoked: (message) => this.markRevoked(message),
    });
    // Back online: ask the server again, so signing comes back without a reload.
    window.addEventListener('online', () => {
      if (this.state === 'offline') void this.start();
    });
  }

  async start(): Promise<void> {
    try {
      this.device = await loadDevice();
    } catch (e) {
      this.fail(`This browser's key store (IndexedDB) is not available: ${String(e)}`);
      return;
    }
    if (!this.device) {
      this.state = 'unpaired';
      return;
    }
    if (this.device.status === 'waiting') {
      this.state = 'waiting';
      return;
    }
    try {
      this.adopt(await api.request<SessionBody>('GET', '/api/session', undefined, true));
    } catch (e) {
      if (e instanceof ApiError && e.offline) {
        this.state = 'offline';
      } else if (e instanceof ApiError && e.code === 'device_revoked') {
        this.markRevoked(e.message);
      } else if (e instanceof ApiError && e.status === 401) {
        await this.login();
      } else {
        this.state = 'offline';
        this.message = e instanceof Error ? e.message : String(e);
      }
    }
  }

  /** Signs a fresh challenge; one login at a time, however many requests hit a 401 together. */
  login(): Promise<boolean> {
    this.loggingIn ??= this.doLogin().finally(() => (this.loggingIn = undefined));
    return this.loggingIn;
  }

  private async doLogin(): Promise<boolean> {
    const device = this.device;
    if (!device) return false;
    try {
      const { challenge } = await api.request<{ challenge: string }>(
        'POST',
        '/api/session/challenge',
        { keyId: device.keyId },
        true,
      );
      const envelope = await signLogin(device, challenge, location.origin);
      this.adopt(await api.request<SessionBody>('POST', '/api/session', { envelope }, true));
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.offline) this.state = 'offline';
      else if (e instanceof ApiError && (e.code === 'device_revoked' || e.code === 'revoked_device'))
        this.markRevoked(e.message);
      else
        this.fail(`Signing in with this device's key failed: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
  }

  /** A device that was just paired or introduced: keep its key and sign in. */
  async activate(device: StoredDevice): Promise<boolean> {
    const active: StoredDevice = { ...device, status: 'active', inviteCode: undefined };
    await saveDevice(active);
    this.device = active;
    return this.login();
  }

  async remember(device: StoredDevice): Promise<void> {
    await saveDevice(device);
    this.device = device;
    this.state = device.status === 'waiting' ? 'waiting' : this.state;
  }

  /** Drops the key from this browser (after revocation, or to pair again). */
  async forget(): Promise<void> {
    await forgetDevice();
    await dropKeptAnswers();
    api.csrfToken = '';
    this.device = undefined;
    this.info = undefined;
    this.message = '';
    this.state = 'unpaired';
  }

  private adopt(body: SessionBody): void {
    const pinned = this.device?.rootKeyId;
    if (pinned && body.rootKeyId !== pinned) {
      // Another root: the server's registry was replaced. Signing for it would lend this key to it.
      api.csrfToken = '';
      this.fail(
        `The server's device registry starts at another root (${body.rootKeyId.slice(0, 16) || 'none'}) than the one this device joined (${pinned.slice(0, 16)}): it may have been replaced. Nothing was signed. Whoever runs the server can restore it with: countersign registry restore`,
      );
      return;
    }
    if (this.device && !pinned && body.rootKeyId) {
      this.device = { ...this.device, rootKeyId: body.rootKeyId };
      void saveDevice(this.device);
    }
    api.csrfToken = body.csrfToken;
    this.info = body.device;
    this.state = 'ready';
    this.message = '';
  }

  private markRevoked(message: string): void {
    void dropKeptAnswers();
    api.csrfToken = '';
    this.state = 'revoked';
    this.message = message;
  }

  private fail(message: string): void {
    this.state = 'error';
    this.message = message;
  }
}

/** The service worker's copies of API answers (commands, arguments, outputs) go with the key. */
async function dropKeptAnswers(): Promise<void> {
  if (typeof caches !== 'undefined') await caches.delete('countersign-data-v1').catch(() => false);
}

export const session = new Session();
