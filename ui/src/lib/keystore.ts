/**
 * The device key in IndexedDB. The private key is a non-extractable WebCrypto key: the browser
 * can sign with it but never hands its bytes to any script, this one included.
 */

export interface StoredDevice {
  keyId: string;
  name: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  keyPair: CryptoKeyPair;
  createdAt: string;
  /** A joining device waits for an existing device to introduce it; the root is active at once. */
  status: 'waiting' | 'active';
  /** The invitation this device answered, while it waits. */
  inviteCode?: string | undefined;
  /**
   * The root of the device chain this device joined (pinned at its first session): a server whose
   * registry starts elsewhere was replaced, and is not signed for.
   */
  rootKeyId?: string | undefined;
}

const DB_NAME = 'countersign';
const STORE = 'device';
const SELF = 'self';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB did not open'));
  });
}

async function run<T>(mode: IDBTransactionMode, act: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = act(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result as T);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

export async function loadDevice(): Promise<StoredDevice | undefined> {
  return (await run<StoredDevice | undefined>('readonly', (s) => s.get(SELF))) ?? undefined;
}

export async function saveDevice(device: StoredDevice): Promise<void> {
  await run('readwrite', (s) => s.put(device, SELF));
}

export async function forgetDevice(): Promise<void> {
  await run('readwrite', (s) => s.delete(SELF));
}
