/**
 * Agent tokens: `csa_<agentId>_<secret>`. A device makes the secret, signs an `issue-agent`
 * record holding only its SHA-256, and shows the token once. The token lets an agent propose
 * plans and read its own; it can never approve (it signs nothing) nor change devices.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { sha256Hex, utf8ToBytes } from './bytes.js';
import { keyPairFromSecret, type KeyPair } from './keys.js';

const TOKEN = /^csa_([0-9a-f]{16})_([A-Za-z0-9_-]{32,64})$/;

export interface AgentToken {
  agentId: string;
  secret: string;
}

export function formatAgentToken(token: AgentToken): string {
  return `csa_${token.agentId}_${token.secret}`;
}

export function parseAgentToken(text: string): AgentToken | undefined {
  const match = TOKEN.exec(text.trim());
  return match ? { agentId: match[1]!, secret: match[2]! } : undefined;
}

export function agentSecretSha256(secret: string): string {
  return sha256Hex(`countersign/agent-token/v1\n${secret}`);
}

/**
 * The key an agent signs its proposals with, derived from its token's secret: whoever holds the
 * token (the agent, and the API while it serves the agent's request) can sign as the agent; the
 * registry holds only the public half, so reading it does not let anyone sign.
 */
export function agentProposalKey(secret: string): KeyPair {
  return keyPairFromSecret(sha256(utf8ToBytes(agentProposalSeedText(secret))));
}

/** What is hashed (SHA-256) into the agent's Ed25519 seed; the web app derives the same key with WebCrypto. */
export function agentProposalSeedText(secret: string): string {
  return `countersign/agent-proposal/v1\n${secret}`;
}
