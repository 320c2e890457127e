import { describe, expect, it } from 'vitest';
import { buildNotice, gateTag, NOTICE_LIMITS, NoticeRefused, oneLine } from './notice.js';
import { inQuietHours, checkQuietHours } from './quiet-hours.js';
import { offersOneTap, stepRisk } from './risk.js';
import { applyNotifyChange, checkPushEndpoint, defaultSettings, NotifySettingsError } from './settings.js';
import { validatePlan } from '../plan/validate.js';
import type { NoticeGate } from './types.js';

const gate: NoticeGate = {
  workflowId: 'plan-abc123',
  runId: '0195f0c2-7f1e-7c4a-9b1a-2f3e4d5c6b7a',
  stepPath: 'docs/write',
  stepDigest: 'a'.repeat(64),
  deadline: '2026-11-26T10:30:00.000Z',
  risk: 'medium',
  oneTap: true,
};
const base = { publicUrl: 'https://cs.example.test/', nowMs: Date.parse('2026-11-26T09:00:00Z') };

describe('buildNotice: what a notification may carry', () => {
  it('carries ids, a short title, the plan name and a deep link to the approval page', () => {
    const notice = buildNotice({ ...base, kind: 'gate', planName: 'release 2.0', gate });
    expect(notice).toEqual({
      v: 1,
      kind: 'gate',
      tag: gateTag('plan-abc123', 'docs/write'),
      title: 'Approval needed: docs/write',
      body: 'release 2.0 · decide by 10:30 UTC',
      url: 'https://cs.example.test/#/approve/plan-abc123/docs/write',
      gate,
      sentAt: '2026-11-26T09:00:00.000Z',
    });
  });

  it('makes a hostile plan name one short harmless line', () => {
    const name = `deploy\u202e\u0007\n${'x'.repeat(500)}`;
    const notice = buildNotice({ ...base, kind: 'gate', planName: name, gate });
    // eslint-disable-next-line no-control-regex -- checking they are gone
    expect(notice.body).not.toMatch(/[\u202e\u0007\n]/);
    expect([...notice.body].length).toBeLessThanOrEqual(NOTICE_LIMITS.body);
    expect(new TextEncoder().encode(JSON.stringify(notice)).length).toBeLessThanOrEqual(NOTICE_LIMITS.bytes);
  });

  it('refuses anything in an id field that is not an id (a command smuggled as a step path)', () => {
    expect(() =>
      buildNotice({
        ...base,
        kind: 'gate',
        planName: 'p',
        gate: { ...gate, stepPath: 'rm -rf / --no-preserve-root' },
      }),
    ).toThrow(NoticeRefused);
    expect(() =>
      buildNotice({ ...base, kind: 'gate', planName: 'p', gate: { ...gate, stepDigest: 'zz' } }),
    ).toThrow(/stepDigest/);
    expect(() => buildNotice({ ...base, kind: 'reminder', planName: 'p' })).toThrow(/needs its gate/);
    expect(() => buildNotice({ ...base, publicUrl: 'not a url', kind: 'test', planName: '' })).toThrow(
      NoticeRefused,
    );
  });

  it('says when only Review is offered, and words the decided update', () => {
    const review = buildNotice({
      ...base,
      kind: 'escalation',
      planName: 'p',
      gate: { ...gate, oneTap: false },
    });
    expect(review.title).toBe('Escalated: approval needed: docs/write');
    expect(review.body).toContain('review in the app');
    const decided = buildNotice({
      ...base,
      kind: 'decided',
      planName: 'p',
      gate,
      outcome: 'docs/write approved by phone',
    });
    expect(decided).toMatchObject({ title: 'Decided: docs/write', body: 'p: docs/write approved by phone' });
    expect(decided.tag).toBe(review.tag);
  });

  it('keeps tags within ntfy sequence ids and the Web Push Topic header', () => {
    const tag = gateTag('plan-'.padEnd(200, 'x'), 'a/b/c');
    expect(tag).toMatch(/^[-_A-Za-z0-9]{1,32}$/);
    expect(oneLine('  a \t b  ', 10)).toBe('a b');
  });
});

describe('risk and one-tap', () => {
  const plan = validatePlan({
    name: 'p',
    egress: true,
    policy: { oneTapUpTo: 'medium' },
    steps: [
      { id: 'check', gate: 'ok?' },
      { id: 'fetch', run: 'curl example.com' },
      { id: 'calm', run: 'true', approval: { risk: 'low' } },
      { id: 'careful', gate: 'sure?', approval: { risk: 'high' } },
    ],
  });
  const [check, fetch, calm, careful] = plan.root.children as Parameters<typeof stepRisk>[0][];
  it('derives risk from the step; a plan may raise it, never lower it; one tap up to the policy', () => {
    expect(stepRisk(check!, plan.egress)).toBe('low');
    expect(stepRisk(fetch!, plan.egress)).toBe('high');
    expect(stepRisk(calm!, plan.egress)).toBe('high'); // asked for 'low' in an egress plan: not granted
    expect(stepRisk(careful!, plan.egress)).toBe('high');
    expect(offersOneTap('high', plan.policy)).toBe(false);
    expect(offersOneTap('medium', plan.policy)).toBe(true);
    expect(offersOneTap('low', { oneTapUpTo: 'none' })).toBe(false);
  });

  it('refuses an escalation that would come after the deadline', () => {
    expect(() =>
      validatePlan({
        name: 'p',
        steps: [
          { id: 'g', gate: 'x', approval: { timeout: '10m', escalate: { after: '1h', to: ['phone'] } } },
        ],
      }),
    ).toThrow(/escalation after 1h comes at or after the deadline/);
  });
});

describe('quiet hours', () => {
  const night = { start: '22:00', end: '07:00', timeZone: 'Europe/Paris' };
  it('holds across midnight in the device’s own time zone', () => {
    expect(inQuietHours(night, Date.parse('2026-11-26T22:30:00Z'))).toBe(true); // 23:30 in Paris
    expect(inQuietHours(night, Date.parse('2026-11-26T05:59:00Z'))).toBe(true); // 06:59
    expect(inQuietHours(night, Date.parse('2026-11-26T06:00:00Z'))).toBe(false); // 07:00
    expect(inQuietHours(night, Date.parse('2026-11-26T12:00:00Z'))).toBe(false);
    expect(inQuietHours(undefined, 0)).toBe(false);
  });
  it('names the wrong value', () => {
    expect(checkQuietHours({ ...night, start: '25:00' })).toMatch(/start "25:00"/);
    expect(checkQuietHours({ ...night, timeZone: 'Mars/Olympus' })).toMatch(/not a time zone/);
    expect(checkQuietHours({ ...night, end: '22:00' })).toMatch(/same time/);
  });
});

describe('notification settings changes', () => {
  const options = { allowLocalPushEndpoints: false };
  const now = '2026-11-26T09:00:00.000Z';
  const keys = { p256dh: 'B'.repeat(87), auth: 'A'.repeat(22) };

  it('keeps a device from aiming the control plane at its own network', () => {
    expect(checkPushEndpoint('http://push.example.com/x', false)).toMatch(/must be https/);
    expect(checkPushEndpoint('https://127.0.0.1:7233/x', false)).toMatch(/local or private/);
    expect(checkPushEndpoint('https://10.1.2.3/x', false)).toMatch(/local or private/);
    expect(checkPushEndpoint('https://temporal.internal/x', false)).toMatch(/local or private/);
    expect(checkPushEndpoint('https://user:pw@fcm.googleapis.com/x', false)).toMatch(/credentials/);
    expect(checkPushEndpoint('https://fcm.googleapis.com/fcm/send/abc', false)).toBeUndefined();
    expect(checkPushEndpoint('https://127.0.0.1:9/x', true)).toBeUndefined();
  });

  it('adds, replaces and drops push subscriptions and tokens; refuses malformed ones', () => {
    let settings = defaultSettings('countersign-topic');
    settings = applyNotifyChange(
      settings,
      { type: 'addWebPush', subscription: { endpoint: 'https://push.example.com/1', keys } },
      now,
      options,
    );
    expect(settings.webPush).toMatchObject({
      enabled: true,
      subscriptions: [{ endpoint: 'https://push.example.com/1' }],
    });
    settings = applyNotifyChange(settings, { type: 'addFcmToken', token: 'f'.repeat(40) }, now, options);
    settings = applyNotifyChange(
      settings,
      { type: 'dropTargets', channel: 'fcm', targets: ['f'.repeat(40)] },
      now,
      options,
    );
    expect(settings.fcm.tokens).toEqual([]);
    expect(() =>
      applyNotifyChange(
        settings,
        {
          type: 'addWebPush',
          subscription: { endpoint: 'https://push.example.com/2', keys: { ...keys, auth: 'x' } },
        },
        now,
        options,
      ),
    ).toThrow(NotifySettingsError);
    expect(() =>
      applyNotifyChange(
        settings,
        {
          type: 'preferences',
          ntfy: { enabled: true },
          webPush: { enabled: true },
          fcm: { enabled: false },
          quietHours: { start: '7', end: '8', timeZone: 'UTC' },
        },
        now,
        options,
      ),
    ).toThrow(/HH:MM/);
  });
});
