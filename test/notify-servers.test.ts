/**
 * The local stand-ins for ntfy, a Web Push service and FCM, checked against independent clients
 * (fetch and a real ntfy subscriber, the web-push package, firebase-admin): they accept what the
 * real services accept and refuse malformed requests with clear 4xx answers.
 */
import { request, type Agent } from 'node:https';
import { cert, deleteApp, initializeApp } from 'firebase-admin/app';
import { getMessaging } from 'firebase-admin/messaging';
import webpush from 'web-push';
import { describe, expect, it } from 'vitest';
import { startFcmServer, type FcmServer } from './support/fcm-server.js';
import { startNtfyServer, subscribe } from './support/ntfy-server.js';
import { startWebPushEndpoint } from './support/web-push-endpoint.js';

/** A request through `agent` (which trusts the local certificates), answered as text. */
function httpsRequest(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string | number>;
    body?: Buffer | string;
    agent: Agent;
  },
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? 'POST', headers: options.headers, agent: options.agent },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('local ntfy-protocol server (real ntfy cannot be installed here)', () => {
  const token = 'tk_local_test_token_0123456789';
  const auth = { Authorization: `Bearer ${token}` };

  it('answers a JSON publish with the message and delivers it to a subscriber', async () => {
    const ntfy = await startNtfyServer({ token });
    const subscriber = await subscribe(ntfy.url, 'approvals', token);
    try {
      const res = await fetch(ntfy.url, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          topic: 'approvals',
          title: 'Step 3 needs you',
          message: 'rm -rf build/',
          priority: 4,
          tags: ['warning'],
          click: 'https://countersign.example/plans/p1',
          actions: [
            { action: 'view', label: 'Open', url: 'https://countersign.example/plans/p1' },
            {
              action: 'http',
              label: 'Approve',
              url: 'https://countersign.example/approve',
              method: 'POST',
              clear: true,
            },
          ],
          sequence_id: 'plan-p1-step-3',
          markdown: true,
        }),
      });
      expect(res.status).toBe(200);
      const answer = (await res.json()) as Record<string, unknown>;
      expect(answer).toMatchObject({
        event: 'message',
        topic: 'approvals',
        title: 'Step 3 needs you',
        message: 'rm -rf build/',
        priority: 4,
        tags: ['warning'],
        sequence_id: 'plan-p1-step-3',
        content_type: 'text/markdown',
      });
      expect(answer.id).toMatch(/^[A-Za-z0-9]{12}$/);
      expect(answer.expires).toBeGreaterThan(answer.time as number);
      expect(answer.actions).toEqual([
        expect.objectContaining({ action: 'view', label: 'Open', id: expect.any(String) }),
        expect.objectContaining({ action: 'http', label: 'Approve', method: 'POST', clear: true }),
      ]);

      const delivered = await subscriber.next((e) => e.event === 'message');
      expect(delivered).toMatchObject({ id: answer.id, title: 'Step 3 needs you' });
      const published = await ntfy.waitFor((e) => e.id === answer.id);
      expect(published.headers.authorization).toBe(`Bearer ${token}`);
      expect(delivered.receivedAt).toBeGreaterThanOrEqual(published.receivedAt);
      expect(subscriber.events[0]?.event).toBe('open');
    } finally {
      subscriber.close();
      await ntfy.close();
    }
  });

  it('publishes a plain body with X-* headers to /<topic>', async () => {
    const ntfy = await startNtfyServer();
    try {
      const res = await fetch(`${ntfy.url}/builds`, {
        method: 'PUT',
        headers: {
          'X-Title': 'Build done',
          'X-Priority': 'high',
          'X-Tags': 'tada, ci',
          'X-Click': 'https://ci.example/1',
          'X-Sequence-ID': 'build-1',
        },
        body: 'all green',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        topic: 'builds',
        message: 'all green',
        title: 'Build done',
        priority: 4,
        tags: ['tada', 'ci'],
        click: 'https://ci.example/1',
        sequence_id: 'build-1',
      });
      const bare = (await (await fetch(`${ntfy.url}/builds`, { method: 'POST' })).json()) as Record<
        string,
        unknown
      >;
      expect(bare.message).toBe('triggered');
      expect(bare.sequence_id).toBe(bare.id);
    } finally {
      await ntfy.close();
    }
  });

  it('refuses malformed publishes with ntfy error JSON naming the problem', async () => {
    const ntfy = await startNtfyServer();
    const post = (body: string) =>
      fetch(ntfy.url, { method: 'POST', body }).then(async (res) => ({
        status: res.status,
        body: (await res.json()) as { code: number; http: number; error: string },
      }));
    try {
      const unknown = await post(
        JSON.stringify({ topic: 't', message: 'x', icon: 'https://x.example/i.png' }),
      );
      expect(unknown).toEqual({
        status: 400,
        body: { code: 40001, http: 400, error: expect.stringContaining('"icon"') },
      });
      expect((await post(JSON.stringify({ topic: 't', priority: 9 }))).body.error).toContain('"priority"');
      expect((await post(JSON.stringify({ topic: 't', tags: 'a,b' }))).body.error).toContain('"tags"');
      expect((await post(JSON.stringify({ topic: 'no spaces' }))).body.error).toContain('"topic"');
      expect((await post(JSON.stringify({ message: 'x' }))).body.error).toContain('"topic"');
      expect((await post('title=x')).status).toBe(400);
      const badAction = await post(
        JSON.stringify({ topic: 't', actions: [{ action: 'view', label: 'x', url: 'nope' }] }),
      );
      expect(badAction.body.error).toContain('actions[0].url');
      const tooBig = await post(JSON.stringify({ topic: 't', message: 'x'.repeat(4097) }));
      expect(tooBig.status).toBe(413);
      const badPriority = await fetch(`${ntfy.url}/t`, { method: 'POST', headers: { 'X-Priority': 'asap' } });
      expect(badPriority.status).toBe(400);
      expect(ntfy.published).toHaveLength(0);
    } finally {
      await ntfy.close();
    }
  });

  it('requires the bearer token when one is set', async () => {
    const ntfy = await startNtfyServer({ token });
    try {
      for (const headers of [{}, { Authorization: 'Bearer wrong' }] as Record<string, string>[]) {
        const res = await fetch(`${ntfy.url}/t`, { method: 'POST', headers, body: 'x' });
        expect(res.status).toBe(401);
        expect(await res.json()).toEqual({ code: 40101, http: 401, error: 'unauthorized' });
      }
      await expect(subscribe(ntfy.url, 't')).rejects.toThrow(/HTTP 401/);
      expect(ntfy.published).toHaveLength(0);
      expect(ntfy.requests.map((r) => r.status)).toEqual([401, 401, 401]);
    } finally {
      await ntfy.close();
    }
  });

  it('updates, clears and deletes by sequence id, and serves the cache to polls', async () => {
    const ntfy = await startNtfyServer();
    const subscriber = await subscribe(ntfy.url, 'jobs');
    const publish = (message: string) =>
      fetch(`${ntfy.url}/jobs`, {
        method: 'POST',
        headers: { 'X-Sequence-ID': 'job-1' },
        body: message,
      }).then(async (res) => (await res.json()) as { id: string; time: number });
    const poll = async (since: string) => {
      const res = await fetch(`${ntfy.url}/jobs/json?poll=1&since=${since}`);
      return (await res.text())
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { event: string; id: string; message?: string });
    };
    try {
      const first = await publish('running');
      await publish('done');
      const cleared = await fetch(`${ntfy.url}/jobs/job-1/clear`, { method: 'PUT' });
      expect(await cleared.json()).toMatchObject({
        event: 'message_clear',
        topic: 'jobs',
        sequence_id: 'job-1',
      });
      const deleted = await fetch(`${ntfy.url}/jobs/job-1`, { method: 'DELETE' });
      expect(await deleted.json()).toMatchObject({ event: 'message_delete', sequence_id: 'job-1' });

      await subscriber.next((e) => e.event === 'message_delete');
      expect(subscriber.events.map((e) => [e.event, e.sequence_id ?? null])).toEqual([
        ['open', null],
        ['message', 'job-1'],
        ['message', 'job-1'],
        ['message_clear', 'job-1'],
        ['message_delete', 'job-1'],
      ]);
      expect((await poll('all')).map((e) => e.event)).toEqual([
        'message',
        'message',
        'message_clear',
        'message_delete',
      ]);
      expect((await poll(first.id)).map((e) => e.message ?? e.event)).toEqual([
        'done',
        'message_clear',
        'message_delete',
      ]);
      expect(await poll(String(first.time))).toHaveLength(4);
      expect(await poll(String(first.time + 3600))).toHaveLength(0);
      expect((await fetch(`${ntfy.url}/jobs/json?poll=1&since=yesterday`)).status).toBe(400);
    } finally {
      subscriber.close();
      await ntfy.close();
    }
  });

  it('goes down (connections refused), answers scripted statuses, and comes back on the same port', async () => {
    const ntfy = await startNtfyServer();
    const subscriber = await subscribe(ntfy.url, 't');
    try {
      await ntfy.setFault('down');
      const refused = await fetch(`${ntfy.url}/t`, { method: 'POST', body: 'x' }).catch((err: Error) => err);
      expect(refused).toBeInstanceOf(Error);
      expect(String((refused as Error & { cause?: unknown }).cause)).toMatch(/ECONNREFUSED|ECONNRESET/);
      await expect(subscriber.next((e) => e.event === 'message', 500)).rejects.toThrow(/ended/);

      await ntfy.setFault({ status: 429, retryAfterSeconds: 7 });
      const limited = await fetch(`${ntfy.url}/t`, { method: 'POST', body: 'x' });
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('7');
      expect(await limited.json()).toMatchObject({ http: 429, code: 42901 });

      await ntfy.setFault('none');
      expect((await fetch(`${ntfy.url}/t`, { method: 'POST', body: 'x' })).status).toBe(200);
      await expect(ntfy.waitFor((e) => e.message === 'never', 100)).rejects.toThrow(
        /published so far: message t/,
      );
    } finally {
      subscriber.close();
      await ntfy.close();
    }
  });
});

describe('local Web Push endpoint that decrypts', () => {
  const vapid = webpush.generateVAPIDKeys();
  const vapidDetails = { subject: 'mailto:ops@countersign.example', ...vapid };

  it('decrypts what web-push sends and records its headers', async () => {
    const push = await startWebPushEndpoint();
    try {
      const subscription = push.createSubscription();
      const payload = { title: 'Step 3 needs you', plan: 'p1', step: 3, text: 'é'.repeat(200) };
      const sent = await webpush.sendNotification(subscription, JSON.stringify(payload), {
        vapidDetails,
        TTL: 120,
        urgency: 'high',
        topic: 'plan-p1-step-3',
        agent: push.agent,
      });
      expect(sent.statusCode).toBe(201);
      expect(sent.headers.location).toMatch(`${push.url}/message/`);

      const delivery = await push.waitFor((d) => d.subscriptionEndpoint === subscription.endpoint);
      expect(delivery).toMatchObject({
        ttl: 120,
        urgency: 'high',
        topic: 'plan-p1-step-3',
        vapidSubject: vapidDetails.subject,
        vapidPublicKey: vapid.publicKey,
        payload,
        status: 201,
      });
      expect(delivery.headers['content-encoding']).toBe('aes128gcm');
    } finally {
      await push.close();
    }
  });

  it('refuses a tampered body, a JWT signed by another key, and missing headers', async () => {
    const push = await startWebPushEndpoint();
    try {
      const subscription = push.createSubscription();
      const details = webpush.generateRequestDetails(subscription, 'hello', { vapidDetails, TTL: 60 });
      const body = Buffer.from(details.body ?? Buffer.alloc(0));
      const send = (headers: Record<string, string | number>, data: Buffer = body) =>
        httpsRequest(subscription.endpoint, { headers, body: data, agent: push.agent });

      expect((await send(details.headers as Record<string, string>)).status).toBe(201);

      const tampered = Buffer.from(body);
      tampered[tampered.length - 20] = (tampered[tampered.length - 20] ?? 0) ^ 0x01;
      const altered = await send(details.headers as Record<string, string>, tampered);
      expect(altered.status).toBe(400);
      expect(altered.text).toContain('decryption failed');

      const other = webpush.generateVAPIDKeys();
      const forged = webpush.getVapidHeaders(
        push.url,
        vapidDetails.subject,
        other.publicKey,
        other.privateKey,
        'aes128gcm',
      );
      const mixed = forged.Authorization.replace(/k=.*$/, `k=${vapid.publicKey}`);
      const wrongKey = await send({ ...(details.headers as Record<string, string>), Authorization: mixed });
      expect(wrongKey).toMatchObject({ status: 400, text: expect.stringContaining('does not verify') });

      const otherOrigin = webpush.getVapidHeaders(
        'https://push.example',
        vapidDetails.subject,
        vapid.publicKey,
        vapid.privateKey,
        'aes128gcm',
      );
      const wrongAudience = await send({ ...(details.headers as Record<string, string>), ...otherOrigin });
      expect(wrongAudience.text).toContain('aud');

      const withoutTtl = { ...(details.headers as Record<string, string>) };
      delete withoutTtl.TTL;
      expect(await send(withoutTtl)).toMatchObject({
        status: 400,
        text: expect.stringContaining('missing TTL'),
      });
      const noAuth = { ...(details.headers as Record<string, string>), Authorization: '' };
      expect((await send(noAuth)).status).toBe(400);

      const legacy = webpush.generateRequestDetails(subscription, 'hello', {
        vapidDetails,
        contentEncoding: 'aesgcm',
      });
      const legacyAnswer = await send(
        legacy.headers as Record<string, string>,
        Buffer.from(legacy.body ?? ''),
      );
      expect(legacyAnswer).toMatchObject({ status: 400, text: expect.stringContaining('aesgcm') });

      expect(push.deliveries).toHaveLength(1);
      expect(push.requests.filter((r) => r.refusal)).toHaveLength(6);
    } finally {
      await push.close();
    }
  });

  it('answers 410 or 404 as scripted, as for an expired subscription', async () => {
    const push = await startWebPushEndpoint();
    try {
      const subscription = push.createSubscription();
      push.respondWith(subscription.endpoint, 'gone');
      const options = { vapidDetails, agent: push.agent };
      await expect(webpush.sendNotification(subscription, 'x', options)).rejects.toHaveProperty(
        'statusCode',
        410,
      );

      const unknown = { ...subscription, endpoint: `${push.url}/push/never-created` };
      await expect(webpush.sendNotification(unknown, 'x', options)).rejects.toHaveProperty('statusCode', 404);

      push.respondWith(subscription.endpoint, { status: 429, retryAfterSeconds: 3 });
      const limited = await webpush.sendNotification(subscription, 'x', options).catch((err: unknown) => err);
      expect(limited).toMatchObject({
        statusCode: 429,
        headers: expect.objectContaining({ 'retry-after': '3' }),
      });
    } finally {
      await push.close();
    }
  });
});

describe('local FCM + OAuth endpoints (Firebase is unreachable from here)', () => {
  let apps = 0;
  async function withMessaging<T>(
    fcm: FcmServer,
    use: (messaging: ReturnType<typeof getMessaging>) => Promise<T>,
  ) {
    const app = initializeApp(
      { credential: cert(fcm.serviceAccountPath, fcm.agent), httpAgent: fcm.agent, projectId: fcm.projectId },
      `notify-servers-${++apps}`,
    );
    try {
      return await use(getMessaging(app));
    } finally {
      await deleteApp(app);
    }
  }

  it('receives what firebase-admin sends, after a verified OAuth token grant', async () => {
    const fcm = await startFcmServer();
    try {
      const name = await withMessaging(fcm, (messaging) =>
        messaging.send({
          token: 'device-token-1',
          notification: { title: 'Step 3 needs you', body: 'rm -rf build/' },
          data: { plan: 'p1', step: '3' },
          android: { priority: 'high', ttl: 60_000, collapseKey: 'plan-p1' },
        }),
      );
      expect(name).toMatch(new RegExp(`^projects/${fcm.projectId}/messages/`));

      expect(fcm.tokenGrants).toHaveLength(1);
      const grant = fcm.tokenGrants[0]!;
      expect(grant.claims).toMatchObject({
        iss: fcm.serviceAccount.client_email,
        aud: 'https://oauth2.googleapis.com/token',
      });
      expect(grant.claims.scope).toContain('https://www.googleapis.com/auth/firebase.messaging');

      const send = await fcm.waitFor((s) => s.target === 'device-token-1');
      expect(send.headers.authorization).toBe(`Bearer ${grant.accessToken}`);
      expect(send.headers['x-firebase-client']).toMatch(/^fire-admin-node\//);
      expect(send.body).toEqual({
        message: {
          token: 'device-token-1',
          notification: { title: 'Step 3 needs you', body: 'rm -rf build/' },
          data: { plan: 'p1', step: '3' },
          android: { priority: 'high', ttl: '60s', collapse_key: 'plan-p1' },
        },
      });
      expect(fcm.requests.map((r) => `${r.method} ${r.host}${r.path} ${r.status}`)).toEqual([
        'POST oauth2.googleapis.com/token 200',
        `POST fcm.googleapis.com/v1/projects/${fcm.projectId}/messages:send 200`,
      ]);
    } finally {
      await fcm.close();
    }
  });

  it('maps scripted errors to the firebase-admin error codes', async () => {
    const fcm = await startFcmServer();
    try {
      fcm.respondWith('gone-token', 'unregistered');
      fcm.respondWith('busy-token', 'quota', { retryAfterSeconds: 30 });
      fcm.respondWith('broken-token', 'internal');
      fcm.respondOnce('flaky-token', 'unavailable');
      await withMessaging(fcm, async (messaging) => {
        const send = (token: string) => messaging.send({ token, data: { x: '1' } });
        await expect(send('gone-token')).rejects.toHaveProperty(
          'code',
          'messaging/registration-token-not-registered',
        );
        await expect(send('busy-token')).rejects.toHaveProperty('code', 'messaging/message-rate-exceeded');
        await expect(send('broken-token')).rejects.toHaveProperty('code', 'messaging/internal-error');
        // firebase-admin retries a 503 by itself, at once the first time, so one scripted 503 is invisible
        await expect(send('flaky-token')).resolves.toMatch(/messages\//);
      });
      const answered = (target: string) => fcm.sends.filter((s) => s.target === target).map((s) => s.status);
      expect(answered('gone-token')).toEqual([404]);
      expect(answered('busy-token')).toEqual([429]);
      expect(answered('broken-token')).toEqual([500]);
      expect(answered('flaky-token')).toEqual([503, 200]);
    } finally {
      await fcm.close();
    }
  });

  it('refuses requests without a valid token, for another project, or with unknown fields', async () => {
    const fcm = await startFcmServer();
    try {
      const sendUrl = `https://fcm.googleapis.com/v1/projects/${fcm.projectId}/messages:send`;
      const json = (body: unknown, headers: Record<string, string> = {}) => ({
        headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify(body),
        agent: fcm.agent,
      });
      const message = { message: { token: 'd', data: { a: 'b' } } };
      const unauthenticated = await httpsRequest(sendUrl, json(message, { Authorization: 'Bearer made-up' }));
      expect(unauthenticated.status).toBe(401);
      expect(JSON.parse(unauthenticated.text)).toMatchObject({ error: { status: 'UNAUTHENTICATED' } });

      await withMessaging(fcm, (messaging) => messaging.send({ token: 'd' }));
      const bearer = { Authorization: `Bearer ${fcm.tokenGrants[0]!.accessToken}` };
      const otherProject = sendUrl.replace(fcm.projectId, 'someone-else');
      expect((await httpsRequest(otherProject, json(message, bearer))).status).toBe(403);
      const unknownField = await httpsRequest(
        sendUrl,
        json({ message: { token: 'd', priority: 'high' } }, bearer),
      );
      expect(unknownField.status).toBe(400);
      expect(unknownField.text).toContain('Unknown name \\"priority\\"');
      const twoTargets = await httpsRequest(
        sendUrl,
        json({ message: { token: 'd', topic: 'news' } }, bearer),
      );
      expect(twoTargets.text).toContain('exactly one of token, topic or condition');
      const numberData = await httpsRequest(
        sendUrl,
        json({ message: { token: 'd', data: { n: 1 } } }, bearer),
      );
      expect(numberData.text).toContain('message.data must map strings to strings');

      const forged = await httpsRequest('https://oauth2.googleapis.com/token', {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
          assertion: `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.e30.c2ln`,
        }).toString(),
        agent: fcm.agent,
      });
      expect(forged.status).toBe(400);
      expect(JSON.parse(forged.text)).toEqual({
        error: 'invalid_grant',
        error_description: 'Invalid JWT Signature.',
      });
    } finally {
      await fcm.close();
    }
  });
});
