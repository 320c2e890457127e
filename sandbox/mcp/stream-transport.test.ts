import { PassThrough } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { quoteServerOutput, StreamTransport } from './stream-transport.js';

const MiB = 1024 ** 2;
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A started transport on real streams, recording everything it reports. */
async function connect(maxMessageBytes = MiB) {
  const serverStdout = new PassThrough();
  const serverStdin = new PassThrough();
  const written: Buffer[] = [];
  serverStdin.on('data', (chunk: Buffer) => written.push(chunk));
  const received: JSONRPCMessage[] = [];
  const errors: string[] = [];
  const events: string[] = [];
  const transport = new StreamTransport(serverStdout, serverStdin, {
    maxMessageBytes,
    onClose: () => events.push('onClose option'),
  });
  transport.onmessage = (message) => received.push(message);
  transport.onerror = (error) => errors.push(error.message);
  transport.onclose = () => events.push('onclose');
  await transport.start();
  const serverWrites = async (...chunks: (string | Buffer)[]) => {
    for (const chunk of chunks) {
      serverStdout.write(chunk);
      await settle();
    }
  };
  return {
    transport,
    serverStdout,
    serverStdin,
    received,
    errors,
    events,
    serverWrites,
    written: () => Buffer.concat(written).toString('utf8'),
  };
}

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' } as const;
const result = { jsonrpc: '2.0', id: 2, result: { tools: [] } } as const;
const line = (message: unknown) => `${JSON.stringify(message)}\n`;

describe('StreamTransport', () => {
  it('delivers a message split across chunks once, whole', async () => {
    const t = await connect();
    const text = line(result);
    await t.serverWrites(text.slice(0, 5), text.slice(5, 20), text.slice(20));
    expect(t.received).toEqual([result]);
    expect(t.transport.failure).toBeUndefined();
  });

  it('delivers a message split inside a multi-byte character', async () => {
    const t = await connect();
    const message = { jsonrpc: '2.0', id: 3, result: { text: 'héllo 😀' } };
    const bytes = Buffer.from(line(message), 'utf8');
    const cut = bytes.indexOf(0xf0) + 2; // in the middle of the emoji
    await t.serverWrites(bytes.subarray(0, cut), bytes.subarray(cut));
    expect(t.received).toEqual([message]);
  });

  it('delivers two messages that arrive in one chunk, in order', async () => {
    const t = await connect();
    await t.serverWrites(line(ping) + line(result));
    expect(t.received).toEqual([ping, result]);
  });

  it('takes CRLF line ends', async () => {
    const t = await connect();
    await t.serverWrites(`${JSON.stringify(ping)}\r\n`);
    expect(t.received).toEqual([ping]);
  });

  it('keeps an unfinished line until its end arrives', async () => {
    const t = await connect();
    await t.serverWrites(line(ping) + JSON.stringify(result).slice(0, 10));
    expect(t.received).toEqual([ping]);
    await t.serverWrites(`${JSON.stringify(result).slice(10)}\n`);
    expect(t.received).toEqual([ping, result]);
  });

  it('ends the session when the server writes a line that is not JSON', async () => {
    const t = await connect();
    await t.serverWrites('Server listening on stdio\n');
    expect(t.transport.failure).toBe(
      'the server wrote something that is not MCP to its stdout: "Server listening on stdio"',
    );
    expect(t.errors).toEqual([t.transport.failure]);
    expect(t.events).toEqual(['onClose option', 'onclose']);
    expect(t.serverStdin.writableEnded).toBe(true);
  });

  it('ends the session on JSON that is not JSON-RPC, after delivering what came before it', async () => {
    const t = await connect();
    await t.serverWrites(`${line(ping)}{"hello":"world"}\n${line(result)}`);
    expect(t.received).toEqual([ping]);
    expect(t.transport.failure).toMatch(/^the server wrote something that is not MCP to its stdout: "/);
    expect(t.events).toEqual(['onClose option', 'onclose']);
  });

  it('ignores whatever the server writes after the session ended, and refuses to send', async () => {
    const t = await connect();
    await t.serverWrites('garbage\n');
    const failure = t.transport.failure;
    await t.serverWrites(line(result), 'more garbage\n');
    expect(t.received).toEqual([]);
    expect(t.transport.failure).toBe(failure);
    expect(t.errors).toHaveLength(1);
    expect(t.events).toEqual(['onClose option', 'onclose']);
    await expect(t.transport.send(ping)).rejects.toThrow(failure!);
  });

  it('quotes the offending output on one line, without control characters', async () => {
    const t = await connect();
    await t.serverWrites('\u001b[2J\tnot json\n');
    expect(t.transport.failure).toBe(
      'the server wrote something that is not MCP to its stdout: "[2J not json"',
    );
  });

  it('ends the session when one message grows past maxMessageBytes, giving the limit', async () => {
    const t = await connect(MiB);
    const half = `{"jsonrpc":"2.0","id":1,"result":{"pad":"${'x'.repeat(MiB / 2)}`;
    await t.serverWrites(half);
    expect(t.transport.failure).toBeUndefined();
    await t.serverWrites('x'.repeat(MiB / 2));
    expect(t.transport.failure).toBe('the server sent a message larger than 1 MiB; the session was ended');
    expect(t.errors).toEqual([t.transport.failure]);
    expect(t.events).toEqual(['onClose option', 'onclose']);
    expect(t.received).toEqual([]);
  });

  it('applies the limit to each message, not to a chunk holding several whole ones', async () => {
    const t = await connect(MiB);
    const padded = (id: number) => line({ jsonrpc: '2.0', id, result: { pad: 'x'.repeat(300 * 1024) } });
    await t.serverWrites(padded(1) + padded(2) + padded(3) + padded(4));
    expect(t.transport.failure).toBeUndefined();
    expect(t.received.map((m) => (m as { id: number }).id)).toEqual([1, 2, 3, 4]);
  });

  it('quotes the offending line itself, however the chunks fell', async () => {
    const split = await connect();
    await split.serverWrites('Server list', 'ening on stdio\n');
    expect(split.transport.failure).toBe(
      'the server wrote something that is not MCP to its stdout: "Server listening on stdio"',
    );
    const after = await connect();
    await after.serverWrites(line(ping) + 'oops\n');
    expect(after.received).toEqual([ping]);
    expect(after.transport.failure).toBe('the server wrote something that is not MCP to its stdout: "oops"');
  });

  it('takes a message just under maxMessageBytes', async () => {
    const t = await connect(MiB);
    const head = '{"jsonrpc":"2.0","id":1,"result":{"pad":"';
    const tail = '"}}\n';
    const message = head + 'x'.repeat(MiB - head.length - tail.length) + tail;
    expect(Buffer.byteLength(message)).toBe(MiB);
    await t.serverWrites(message);
    expect(t.transport.failure).toBeUndefined();
    expect(t.received).toHaveLength(1);
  });

  it('writes each sent message as one JSON line on the server stdin', async () => {
    const t = await connect();
    await t.transport.send(ping);
    await t.transport.send(result);
    await settle();
    expect(t.written()).toBe(line(ping) + line(result));
  });

  it('closes once, without a failure, when the server output ends', async () => {
    const t = await connect();
    t.serverStdout.end();
    await settle();
    expect(t.events).toEqual(['onClose option', 'onclose']);
    expect(t.transport.failure).toBeUndefined();
    await t.transport.close();
    expect(t.events).toEqual(['onClose option', 'onclose']);
    await expect(t.transport.send(ping)).rejects.toThrow('the MCP session is closed');
  });

  it('reports a read error of the server output as the failure', async () => {
    const t = await connect();
    t.serverStdout.destroy(new Error('EPIPE'));
    await settle();
    expect(t.transport.failure).toBe("reading the server's output failed: EPIPE");
    expect(t.events).toEqual(['onClose option', 'onclose']);
  });
});

describe('quoteServerOutput', () => {
  it('quotes text as a JSON string', () => {
    expect(quoteServerOutput('say "hi"')).toBe('"say \\"hi\\""');
  });

  it('turns control characters (C0, DEL and C1) into spaces and trims the ends', () => {
    expect(quoteServerOutput('\n\ta\u0000b\u001bc\u007fd\u0085e\u009f\r\n')).toBe('"a b c d e"');
  });

  it('keeps printable non-ASCII text', () => {
    expect(quoteServerOutput('héllo 😀 ü')).toBe('"héllo 😀 ü"');
  });

  it('cuts long text at 120 characters by default, with an ellipsis', () => {
    expect(quoteServerOutput('a'.repeat(120))).toBe(JSON.stringify('a'.repeat(120)));
    expect(quoteServerOutput('a'.repeat(121))).toBe(JSON.stringify(`${'a'.repeat(120)}…`));
  });

  it('cuts at the given length', () => {
    expect(quoteServerOutput('abcdefgh', 3)).toBe('"abc…"');
    expect(quoteServerOutput(`  ${'b'.repeat(10)}  `, 10)).toBe(JSON.stringify('b'.repeat(10)));
  });
});
