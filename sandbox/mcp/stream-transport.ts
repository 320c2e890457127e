/**
 * An MCP transport over a server's stdio streams, wherever the server runs (a container's
 * attached streams, a jailed child's pipes). Unlike a trusting client it treats the server as
 * hostile: a message over the size limit, or anything on stdout that is not JSON-RPC, ends the
 * session at once with the reason kept for the step's failure message.
 */
import type { Readable, Writable } from 'node:stream';
import { deserializeMessage, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Printable, one line, short: server output quoted in a message shown to people. */
export function quoteServerOutput(text: string, max = 120): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim();
  return JSON.stringify(clean.length > max ? `${clean.slice(0, max)}…` : clean);
}

const sizeInWords = (bytes: number) =>
  bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0
    ? `${bytes / 1024 ** 2} MiB`
    : bytes >= 1024 && bytes % 1024 === 0
      ? `${bytes / 1024} KiB`
      : `${bytes} bytes`;

export class StreamTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  /** Why the session ended early, in words (undefined while it is fine or after a normal close). */
  failure: string | undefined;
  /** Bytes of the line being received, not yet ended by a newline. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private closed = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly options: { maxMessageBytes: number; onClose?: () => void },
  ) {}

  async start(): Promise<void> {
    this.input.on('data', (chunk: Buffer) => this.receive(chunk));
    this.input.on('end', () => void this.close());
    this.input.on('error', (error) => this.fail(`reading the server's output failed: ${error.message}`));
    this.output.on('error', () => undefined); // a dead server's stdin: reported through `end` above
  }

  /** Splits the stream into lines; the size limit applies to each message, not to a chunk. */
  private receive(chunk: Buffer): void {
    let rest = chunk;
    while (!this.closed) {
      const end = rest.indexOf(0x0a);
      const piece = end === -1 ? rest : rest.subarray(0, end);
      this.partialBytes += piece.length;
      if (this.partialBytes > this.options.maxMessageBytes)
        return this.fail(
          `the server sent a message larger than ${sizeInWords(this.options.maxMessageBytes)}; the session was ended`,
        );
      this.partial.push(piece);
      if (end === -1) return;
      const line = Buffer.concat(this.partial).toString('utf8').replace(/\r$/, '');
      this.partial = [];
      this.partialBytes = 0;
      rest = rest.subarray(end + 1);
      let message: JSONRPCMessage;
      try {
        message = deserializeMessage(line);
      } catch {
        return this.fail(
          `the server wrote something that is not MCP to its stdout: ${quoteServerOutput(line)}`,
        );
      }
      this.onmessage?.(message);
    }
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.failure = reason;
    this.onerror?.(new Error(reason));
    void this.close();
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) throw new Error(this.failure ?? 'the MCP session is closed');
    const line = serializeMessage(message);
    await new Promise<void>((resolve, reject) => {
      this.output.write(line, (error) => (error ? reject(error) : resolve()));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.partial = [];
    this.output.end();
    this.options.onClose?.();
    this.onclose?.();
  }
}
