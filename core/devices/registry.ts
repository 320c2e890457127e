/**
 * The device registry as a pure fold over signed records. The registry workflow, each plan
 * workflow, the executor and the offline audit verifier all rebuild it with this same code.
 */
import { fromBase64 } from '../bytes.js';
import { openEnvelope, PAYLOAD_TYPES, verifyEnvelopeSignature, type Envelope } from '../approval/dsse.js';
import { keyIdOf } from '../keys.js';
import type { GrantRecord } from '../grants/grant.js';
import { decodeDeviceRecord, type DeviceRole } from './records.js';

export interface Device {
  keyId: string;
  publicKey: Uint8Array;
  name: string;
  role: DeviceRole;
  introducedBy?: string;
  revoked?: { by: string; at: string; reason: string };
}

/** An agent allowed to propose plans and read its own: never to approve or to change devices. */
export interface Agent {
  agentId: string;
  name: string;
  /** SHA-256 (hex) of the token's secret part. */
  secretSha256: string;
  issuedBy: string;
  issuedAt: string;
  /** Verifies the agent's signed proposals; absent for tokens issued before them. */
  proposalKey?: Uint8Array | undefined;
  revoked?: { by: string; at: string; reason: string };
}

/** A standing approval as the registry holds it: the record a person's device signed, and its fate. */
export interface Grant {
  grantId: string;
  record: GrantRecord;
  /** The signature over the record: an auto-approval names the grant by id and this. */
  sig: string;
  issuedBy: string;
  revoked?: { by: string; at: string; reason: string };
}

/** A person's device (the root or an approver): not the policy key, not an executor's key. */
export function isPerson(device: Pick<Device, 'role'>): boolean {
  return device.role === 'root' || device.role === 'approver';
}

export class DeviceRecordError extends Error {
  constructor(
    readonly code: 'malformed_record' | 'bad_signature' | 'not_allowed' | 'untrusted_root',
    message: string,
  ) {
    super(message);
    this.name = 'DeviceRecordError';
  }
}

export class DeviceRegistry {
  private readonly devices = new Map<string, Device>();
  private readonly agents = new Map<string, Agent>();
  private readonly grants = new Map<string, Grant>();
  private readonly accepted: Envelope[] = [];

  /** Rebuilds a registry from its records. With `pinnedRootKeyId`, the first record must enrol that key. */
  static fromRecords(records: readonly Envelope[], pinnedRootKeyId?: string): DeviceRegistry {
    const registry = new DeviceRegistry();
    for (const record of records) registry.apply(record, pinnedRootKeyId);
    return registry;
  }

  /**
   * This registry with `records` applied, when they extend its own (same records first, then more):
   * only the new records are verified (this same registry when there are none). Throws DeviceRecordError for a record that does not apply,
   * and returns undefined when `records` do not extend this chain at all.
   */
  extendedWith(records: readonly Envelope[], pinnedRootKeyId?: string): DeviceRegistry | undefined {
    const known = this.accepted;
    if (records.length < known.length) return undefined;
    for (let i = 0; i < known.length; i++)
      if (
        records[i]?.signatures?.[0]?.sig !== known[i]!.signatures[0].sig ||
        records[i]?.payload !== known[i]!.payload
      )
        return undefined;
    if (records.length === known.length) return this;
    const next = new DeviceRegistry();
    for (const [id, device] of this.devices) next.devices.set(id, { ...device });
    for (const [id, agent] of this.agents) next.agents.set(id, { ...agent });
    for (const [id, grant] of this.grants) next.grants.set(id, { ...grant });
    next.accepted.push(...known);
    for (const record of records.slice(known.length)) next.apply(record, pinnedRootKeyId);
    return next;
  }

  get rootKeyId(): string | undefined {
    for (const device of this.devices.values()) if (device.role === 'root') return device.keyId;
    return undefined;
  }

  get records(): readonly Envelope[] {
    return this.accepted;
  }

  get(keyId: string): Device | undefined {
    return this.devices.get(keyId);
  }

  list(): Device[] {
    return [...this.devices.values()];
  }

  agent(agentId: string): Agent | undefined {
    return this.agents.get(agentId);
  }

  listAgents(): Agent[] {
    return [...this.agents.values()];
  }

  grant(grantId: string): Grant | undefined {
    return this.grants.get(grantId);
  }

  listGrants(): Grant[] {
    return [...this.grants.values()];
  }

  /** Checks and applies one signed record; throws DeviceRecordError with the reason it is refused. */
  apply(envelope: Envelope, pinnedRootKeyId?: string): void {
    const opened = openEnvelope(envelope, PAYLOAD_TYPES.device);
    if (typeof opened === 'string') throw new DeviceRecordError('malformed_record', opened);
    const record = decodeDeviceRecord(opened.payloadBytes);
    if (typeof record === 'string') throw new DeviceRecordError('malformed_record', record);

    let device: Device;
    if (record.type === 'enroll-root') {
      const publicKey = fromBase64(record.publicKey);
      const keyId = keyIdOf(publicKey);
      if (this.devices.size > 0)
        throw new DeviceRecordError('not_allowed', 'a root device is already enrolled');
      if (opened.keyId !== keyId)
        throw new DeviceRecordError(
          'bad_signature',
          'root enrolment must be signed by the enrolled key itself',
        );
      if (pinnedRootKeyId !== undefined && keyId !== pinnedRootKeyId) {
        throw new DeviceRecordError(
          'untrusted_root',
          `root device ${keyId} is not the pinned root ${pinnedRootKeyId}`,
        );
      }
      if (!verifyEnvelopeSignature(opened, PAYLOAD_TYPES.device, publicKey)) {
        throw new DeviceRecordError('bad_signature', 'root enrolment signature does not verify');
      }
      device = { keyId, publicKey, name: record.name, role: 'root' };
    } else {
      const signer = this.activeSigner(opened.keyId);
      if (!verifyEnvelopeSignature(opened, PAYLOAD_TYPES.device, signer.publicKey)) {
        throw new DeviceRecordError(
          'bad_signature',
          `${record.type} record signature by ${signer.name} does not verify`,
        );
      }
      if (record.type === 'issue-agent') {
        if (this.agents.has(record.agentId))
          throw new DeviceRecordError('not_allowed', `agent ${record.agentId} is already issued`);
        this.agents.set(record.agentId, {
          agentId: record.agentId,
          name: record.name,
          secretSha256: record.secretSha256,
          issuedBy: signer.keyId,
          issuedAt: record.at,
          ...(record.proposalKey ? { proposalKey: fromBase64(record.proposalKey) } : {}),
        });
        this.accepted.push(envelope);
        return;
      }
      if (record.type === 'grant') {
        if (this.grants.has(record.grantId))
          throw new DeviceRecordError('not_allowed', `grant ${record.grantId} is already issued`);
        const scope = record.scope;
        if ('agent' in scope && !this.agents.has(scope.agent))
          throw new DeviceRecordError('not_allowed', `the grant names unknown agent ${scope.agent}`);
        if ('device' in scope) {
          const device = this.devices.get(scope.device);
          if (!device || !isPerson(device))
            throw new DeviceRecordError('not_allowed', `the grant names unknown device ${scope.device}`);
        }
        this.grants.set(record.grantId, {
          grantId: record.grantId,
          record,
          sig: envelope.signatures[0].sig,
          issuedBy: signer.keyId,
        });
        this.accepted.push(envelope);
        return;
      }
      if (record.type === 'revoke-grant') {
        const grant = this.grants.get(record.grantId);
        if (!grant)
          throw new DeviceRecordError('not_allowed', `cannot revoke unknown grant ${record.grantId}`);
        if (grant.revoked)
          throw new DeviceRecordError('not_allowed', `grant "${grant.record.name}" is already revoked`);
        grant.revoked = { by: signer.keyId, at: record.at, reason: record.reason };
        this.accepted.push(envelope);
        return;
      }
      if (record.type === 'revoke-agent') {
        const agent = this.agents.get(record.agentId);
        if (!agent)
          throw new DeviceRecordError('not_allowed', `cannot revoke unknown agent ${record.agentId}`);
        if (agent.revoked)
          throw new DeviceRecordError('not_allowed', `agent ${agent.name} is already revoked`);
        agent.revoked = { by: signer.keyId, at: record.at, reason: record.reason };
        this.accepted.push(envelope);
        return;
      }
      if (record.type === 'introduce') {
        const publicKey = fromBase64(record.publicKey);
        const keyId = keyIdOf(publicKey);
        if (this.devices.has(keyId))
          throw new DeviceRecordError('not_allowed', `device ${keyId} is already known`);
        device = { keyId, publicKey, name: record.name, role: record.role, introducedBy: signer.keyId };
      } else {
        const target = this.devices.get(record.keyId);
        if (!target)
          throw new DeviceRecordError('not_allowed', `cannot revoke unknown device ${record.keyId}`);
        if (target.role === 'root')
          throw new DeviceRecordError(
            'not_allowed',
            'the root device cannot be revoked; pair a new root instead',
          );
        if (target.revoked)
          throw new DeviceRecordError('not_allowed', `device ${target.name} is already revoked`);
        target.revoked = { by: signer.keyId, at: record.at, reason: record.reason };
        this.accepted.push(envelope);
        return;
      }
    }
    this.devices.set(device.keyId, device);
    this.accepted.push(envelope);
  }

  /** A device that may sign device records: known, not revoked, and a person's (not the policy key). */
  private activeSigner(keyId: string): Device {
    const signer = this.devices.get(keyId);
    if (!signer) throw new DeviceRecordError('not_allowed', `record is signed by unknown device ${keyId}`);
    if (signer.revoked)
      throw new DeviceRecordError('not_allowed', `record is signed by revoked device ${signer.name}`);
    if (!isPerson(signer))
      throw new DeviceRecordError(
        'not_allowed',
        `the ${signer.role === 'policy' ? 'policy key' : `${signer.role} key`} cannot introduce or revoke devices, agents or grants`,
      );
    return signer;
  }
}
