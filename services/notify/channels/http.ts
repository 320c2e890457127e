/**
 * One POST with node:http(s), for channels whose callers may need their own TLS agent (a push
 * service behind a private CA). Answers with status, headers and up to 64 KiB of body.
 */
import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function post(
  url: string,
  options: {
    headers: Record<string, string | number>;
    body: Buffer | string;
    timeoutMs: number;
    agent?: https.Agent | undefined;
  },
): Promise<HttpAnswer> {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      target,
      {
        method: 'POST',
        headers: options.headers,
        timeout: options.timeoutMs,
        ...(options.agent && target.protocol === 'https:' ? { agent: options.agent } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= 64 * 1024) chunks.push(chunk);
        });
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        response.on('error', reject);
      },
    );
    request.on('timeout', () =>
      request.destroy(Object.assign(new Error('no answer in time'), { name: 'TimeoutError' })),
    );
    request.on('error', reject);
    request.end(options.body);
  });
}
