import { describe, expect, it } from 'vitest';
import { agentSecretSha256, formatAgentToken, parseAgentToken } from './agents.js';

describe('agent tokens', () => {
  it('round-trip, and anything else is not a token', () => {
    const token = { agentId: '0123456789abcdef', secret: 'A'.repeat(43) };
    expect(parseAgentToken(formatAgentToken(token))).toEqual(token);
    for (const bad of [
      '',
      'csa_',
      'csa_0123456789abcdef_short',
      'csb_0123456789abcdef_' + 'A'.repeat(43),
      'csa_XYZ_' + 'A'.repeat(43),
    ])
      expect(parseAgentToken(bad), bad).toBeUndefined();
  });

  it('hash their secret with a domain prefix', () => {
    expect(agentSecretSha256('s')).toMatch(/^[0-9a-f]{64}$/);
    expect(agentSecretSha256('s')).not.toBe(agentSecretSha256('t'));
  });
});
