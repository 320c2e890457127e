/**
 * A browser phone joins through an invitation of a paired device, and that device confirms it
 * with a signed introduction, as the Devices screen does. Returns the new device's key id.
 */
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { signDeviceRecord } from '../../core/devices/records.js';
import type { KeyPair } from '../../core/keys.js';
import { get, post, type ApiUnderTest, type DeviceSession } from './api.js';

export interface Inviter {
  api: ApiUnderTest;
  /** The inviting device's API session, and its key (it signs the introduction). */
  session: DeviceSession;
  key: KeyPair;
  /** The web app's address. */
  url: string;
}

export async function joinByInvitation(page: Page, inviter: Inviter, name: string): Promise<string> {
  const { api, session, key, url } = inviter;
  const invitation = await post(api, session, '/api/devices/invitations');
  expect(invitation.statusCode, invitation.body).toBe(201);
  const { code } = invitation.json<{ code: string }>();
  await page.goto(`${url}/#/join?invite=${code}`);
  await page.getByTestId('device-name-input').fill(name);
  await page.getByTestId('join-submit').click();
  await page.getByTestId('join-waiting').waitFor();
  const listed = await get(api, session, `/api/devices/invitations/${code}`);
  const [request] = listed.json<{ requests: { publicKey: string; keyId: string; name: string }[] }>()
    .requests;
  expect(request?.name).toBe(name);
  const record = signDeviceRecord(
    {
      type: 'introduce',
      publicKey: request!.publicKey,
      name,
      role: 'approver',
      at: new Date().toISOString(),
    },
    key,
  );
  const introduced = await post(api, session, '/api/devices/records', { record });
  expect(introduced.statusCode, introduced.body).toBe(200);
  await page.getByTestId('tab-inbox').waitFor({ timeout: 20_000 });
  return request!.keyId;
}
