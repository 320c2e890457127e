/**
 * Offline reading: the app shell and the last API answers, so a device can read what it already
 * loaded while offline. Signing always needs the server; nothing here signs.
 */
import { sw } from './scope.js';

const SHELL = 'countersign-shell-v1';
/** Also dropped by the app when its key goes (ui/src/lib/session.svelte.ts). */
const DATA = 'countersign-data-v1';
const SHELL_URLS = ['/', '/manifest.webmanifest', '/icon.svg', '/icon-192.png', '/icon-512.png'];

export function installCaching(): void {
  sw.addEventListener('install', (event) => event.waitUntil(install()));
  sw.addEventListener('activate', (event) => event.waitUntil(activate()));
  sw.addEventListener('fetch', onFetch);
}

async function install(): Promise<void> {
  const cache = await caches.open(SHELL);
  await cache.addAll(SHELL_URLS);
  // The built page names its hashed scripts and styles: cache those too.
  const page = await (await cache.match('/'))?.text();
  const assets = [...(page ?? '').matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  await cache.addAll(assets);
  await sw.skipWaiting();
}

async function activate(): Promise<void> {
  for (const name of await caches.keys()) if (name !== SHELL && name !== DATA) await caches.delete(name);
  await sw.clients.claim();
}

function onFetch(event: FetchEvent): void {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== sw.location.origin) return;
  // The event stream is live or nothing; downloads (audit bundles) go straight to the network;
  // session and pairing answers (a CSRF token among them) and notification settings (topics,
  // push endpoints) are never kept.
  if (
    url.pathname === '/api/events' ||
    url.pathname.endsWith('/audit') ||
    url.pathname.startsWith('/api/session') ||
    url.pathname.startsWith('/api/pairing') ||
    url.pathname.startsWith('/api/notify/')
  )
    return;

  if (url.pathname.startsWith('/api/')) {
    event.respondWith(networkFirst(event, DATA));
  } else if (request.mode === 'navigate') {
    event.respondWith(networkFirst(event, SHELL, '/'));
  } else if (url.pathname.startsWith('/assets/')) {
    // Hashed names never change content.
    event.respondWith(cacheFirst(request));
  } else {
    event.respondWith(networkFirst(event, SHELL));
  }
}

/** The network's answer as soon as it comes (kept for later without making the page wait), else the kept one. */
async function networkFirst(event: FetchEvent, cacheName: string, fallbackUrl?: string): Promise<Response> {
  const request = event.request;
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    if (response.ok) event.waitUntil(cache.put(fallbackUrl ?? request, response.clone()));
    return response;
  } catch {
    const cached =
      (await cache.match(fallbackUrl ?? request)) ?? (await caches.match(fallbackUrl ?? request));
    if (cached) return cached;
    return new Response(
      JSON.stringify({ error: { code: 'offline', message: 'Offline, and this was not loaded before.' } }),
      { status: 503, headers: { 'content-type': 'application/json' } },
    );
  }
}

async function cacheFirst(request: Request): Promise<Response> {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) void (await caches.open(SHELL)).put(request, response.clone());
  return response;
}
