/**
 * Pairing without a session: the first device becomes the root with the one-time code that
 * `countersign up` printed; further devices ask to join with an invitation code.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Envelope as SignedEnvelope } from '../../core/approval/dsse.js';
import { fromBase64 } from '../../core/bytes.js';
import { fingerprintOf, keyIdOf } from '../../core/keys.js';
import { REGISTRY_WORKFLOW_ID } from '../../core/names.js';
import { explain } from '../../services/errors.js';
import { statePaths } from '../../workers/config.js';
import { enrollRootUpdate } from '../../workflows/messages.js';
import { addDeviceRecord, pinRootDevice } from '../../services/devices.js';
import { ApiError } from '../errors.js';
import { DeviceInfo, Envelope, ErrorBody, KeyId } from '../schemas/common.js';
import { deviceInfo } from './devices.js';

const PAIRING_LIMIT = { max: 10, timeWindow: '1 minute' };
const ERRORS = {
  400: ErrorBody,
  403: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
  500: ErrorBody,
};

const pairingRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { client, config } = app.controlPlane;

  app.get(
    '/api/pairing',
    {
      schema: {
        response: {
          200: Type.Object({
            rootPaired: Type.Boolean(),
            pairingOpen: Type.Boolean(),
            policyPublicKey: Type.Union([Type.String(), Type.Null()]),
            executorPublicKey: Type.Union([Type.String(), Type.Null()]),
          }),
          ...ERRORS,
        },
      },
    },
    async () => {
      const { view } = await app.controlPlane.registry();
      return {
        rootPaired: !!view.rootKeyId,
        pairingOpen: view.pairingOpen,
        policyPublicKey: view.pairingOpen ? (view.policyPublicKey ?? null) : null,
        executorPublicKey: view.pairingOpen ? (view.executorPublicKey ?? null) : null,
      };
    },
  );

  app.post(
    '/api/pairing/root',
    {
      config: { rateLimit: PAIRING_LIMIT },
      schema: {
        body: Type.Object(
          {
            code: Type.String({ minLength: 1, maxLength: 20 }),
            enrollment: Envelope,
            policyIntroduction: Type.Optional(Envelope),
            executorIntroduction: Type.Optional(Envelope),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ device: DeviceInfo }), ...ERRORS },
      },
    },
    async (request, reply) => {
      const { code, enrollment, policyIntroduction, executorIntroduction } = request.body;
      if ((await app.controlPlane.registry()).view.rootKeyId)
        throw new ApiError(
          409,
          'already_paired',
          'a root device is already paired: ask a paired device for an invitation (Devices → Introduce a device)',
        );
      const handle = client.workflow.getHandle(REGISTRY_WORKFLOW_ID);
      let view = await handle
        .executeUpdate(enrollRootUpdate, { args: [{ record: enrollment, pairingCode: code }] })
        .catch((e: unknown) => explain(e, 'pair'));
      // Pinned at once: the executor on this host trusts approvals chaining to this root, even
      // if introducing the policy key below fails (it can be introduced later).
      if (view.rootKeyId) await pinRootDevice(statePaths(config.home).pinnedRoot, view.rootKeyId);
      if (policyIntroduction)
        view = await addDeviceRecord(
          client,
          policyIntroduction as SignedEnvelope,
          'introduce the policy key',
        );
      if (executorIntroduction)
        view = await addDeviceRecord(
          client,
          executorIntroduction as SignedEnvelope,
          'introduce the executor key',
        );
      const root = view.devices.find((d) => d.keyId === view.rootKeyId);
      if (!root) throw new ApiError(500, 'internal', 'the root device is missing after pairing');
      return reply.status(201).send({ device: deviceInfo(root) });
    },
  );

  app.post(
    '/api/pairing/requests',
    {
      config: { rateLimit: PAIRING_LIMIT },
      schema: {
        body: Type.Object(
          {
            code: Type.String({ minLength: 1, maxLength: 20 }),
            name: Type.String({ minLength: 1, maxLength: 100 }),
            publicKey: Type.String({ maxLength: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          202: Type.Object({ keyId: Type.String(), fingerprint: Type.String(), expiresAt: Type.String() }),
          ...ERRORS,
        },
      },
    },
    async (request, reply) => {
      const { code, name, publicKey } = request.body;
      let raw: Uint8Array;
      try {
        raw = fromBase64(publicKey);
      } catch {
        raw = new Uint8Array();
      }
      if (raw.length !== 32)
        throw new ApiError(
          400,
          'invalid_request',
          'publicKey must be the base64 of a raw 32-byte Ed25519 key',
        );
      const keyId = keyIdOf(raw);
      const invitation = app.invitations.request(code, { keyId, name, publicKey });
      if (typeof invitation === 'string') throw new ApiError(403, 'bad_invitation', invitation);
      return reply.status(202).send({
        keyId,
        fingerprint: fingerprintOf(keyId),
        expiresAt: new Date(invitation.expiresAt).toISOString(),
      });
    },
  );

  app.get(
    '/api/pairing/requests/:keyId',
    {
      schema: {
        params: Type.Object({ keyId: KeyId }),
        response: {
          200: Type.Object({
            status: Type.Union([
              Type.Literal('waiting'),
              Type.Literal('introduced'),
              Type.Literal('expired'),
            ]),
          }),
          ...ERRORS,
        },
      },
    },
    async (request) => {
      const { registry } = await app.controlPlane.registry();
      const device = registry.get(request.params.keyId);
      if (device && !device.revoked) return { status: 'introduced' as const };
      return {
        status: app.invitations.requestOf(request.params.keyId) ? ('waiting' as const) : ('expired' as const),
      };
    },
  );
};

export default pairingRoutes;
