/** Devices: the registry as it stands, records signed by this device, and invitations for new ones. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { decodeDeviceRecord, type DeviceRecord } from '../../core/devices/records.js';
import { addDeviceRecord } from '../../services/devices.js';
import { openEnvelope, PAYLOAD_TYPES, type Envelope as SignedEnvelope } from '../../core/approval/dsse.js';
import type { RegistryView } from '../../workflows/messages.js';
import { ApiError } from '../errors.js';
import type { DeviceInfo } from '../schemas/common.js';
import { AUTH_ERRORS, DeviceList, Envelope, ErrorBody } from '../schemas/common.js';

type RegistryDevice = RegistryView['devices'][number];

export function deviceInfo(
  device: Pick<RegistryDevice, 'keyId' | 'name' | 'role' | 'introducedBy' | 'revoked'>,
): DeviceInfo {
  return {
    keyId: device.keyId,
    name: device.name,
    role: device.role,
    ...(device.introducedBy ? { introducedBy: device.introducedBy } : {}),
    ...(device.revoked ? { revoked: device.revoked } : {}),
  };
}

export function deviceList(view: RegistryView): DeviceList {
  return {
    rootKeyId: view.rootKeyId ?? null,
    devices: view.devices.map(deviceInfo),
    agents: (view.agents ?? []).map((a) => ({
      agentId: a.agentId,
      name: a.name,
      issuedBy: a.issuedBy,
      issuedAt: a.issuedAt,
      ...(a.revoked ? { revoked: a.revoked } : {}),
    })),
    grants: (view.grants ?? []).map((g) => ({
      grantId: g.grantId,
      record: g.record,
      issuedBy: g.issuedBy,
      uses: g.uses,
      ...(g.revoked ? { revoked: g.revoked } : {}),
    })),
  };
}

/** What each record does, as refusals name it. */
const RECORD_ACTIONS: Record<DeviceRecord['type'], string> = {
  'enroll-root': 'pair',
  introduce: 'introduce device',
  revoke: 'revoke device',
  'issue-agent': 'issue agent token',
  'revoke-agent': 'revoke agent token',
  grant: 'issue standing approval',
  'revoke-grant': 'revoke standing approval',
};

const PairingRequest = Type.Object({
  keyId: Type.String(),
  name: Type.String(),
  publicKey: Type.String(),
  fingerprint: Type.String(),
  requestedAt: Type.String(),
});

const devicesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { client, config } = app.controlPlane;

  app.get('/api/devices', { schema: { response: { 200: DeviceList, ...AUTH_ERRORS } } }, async () =>
    deviceList((await app.controlPlane.registry()).view),
  );

  app.post(
    '/api/devices/records',
    {
      config: { rateLimit: { max: 20, timeWindow: '1 minute' } },
      schema: {
        body: Type.Object({ record: Envelope }, { additionalProperties: false }),
        response: { 200: DeviceList, 400: ErrorBody, 409: ErrorBody, 422: ErrorBody, ...AUTH_ERRORS },
      },
    },
    async (request) => {
      const opened = openEnvelope(request.body.record, PAYLOAD_TYPES.device);
      if (typeof opened === 'string') throw new ApiError(400, 'malformed_record', opened);
      if (opened.keyId !== request.device!.keyId)
        throw new ApiError(
          403,
          'not_your_signature',
          'a device may only submit records it signed itself: sign it on this device',
        );
      const record = decodeDeviceRecord(opened.payloadBytes);
      if (typeof record === 'string') throw new ApiError(400, 'malformed_record', record);
      const view = await addDeviceRecord(
        client,
        request.body.record as SignedEnvelope,
        RECORD_ACTIONS[record.type],
      );
      if (record.type === 'introduce') app.invitations.closeFor(record.publicKey);
      return deviceList(view);
    },
  );

  app.post(
    '/api/devices/invitations',
    {
      config: { rateLimit: { max: 10, timeWindow: '1 minute' } },
      schema: {
        response: {
          201: Type.Object({ code: Type.String(), url: Type.String(), expiresAt: Type.String() }),
          ...AUTH_ERRORS,
        },
      },
    },
    async (request, reply) => {
      const invitation = app.invitations.open(request.device!.keyId);
      return reply.status(201).send({
        code: invitation.code,
        url: `${config.publicUrl}/#/join?invite=${invitation.code}`,
        expiresAt: new Date(invitation.expiresAt).toISOString(),
      });
    },
  );

  app.get(
    '/api/devices/invitations/:code',
    {
      schema: {
        params: Type.Object({ code: Type.String({ maxLength: 20 }) }),
        response: {
          200: Type.Object({
            code: Type.String(),
            expiresAt: Type.String(),
            requests: Type.Array(PairingRequest),
          }),
          404: ErrorBody,
          ...AUTH_ERRORS,
        },
      },
    },
    async (request) => {
      const invitation = app.invitations.find(request.params.code);
      if (!invitation || invitation.invitedBy !== request.device!.keyId)
        throw new ApiError(
          404,
          'not_found',
          'no open invitation of this device has that code (they last 10 minutes)',
        );
      return {
        code: invitation.code,
        expiresAt: new Date(invitation.expiresAt).toISOString(),
        requests: invitation.requests,
      };
    },
  );
};

export default devicesRoutes;
