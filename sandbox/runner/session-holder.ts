/**
 * The end of a step's output must not be lost. When the process that leads a PTY session exits,
 * the kernel hangs the terminal up and discards what the runner has not read yet: under CPU load
 * that was the last few KiB of an 8 MB flood in 6 runs of 20 (where a step's errors usually are).
 *
 * So a step never leads its own session. A small shell holds it: it runs the step, forwards stop
 * signals to it, and when the step is done prints an end marker and waits. The marker travels in
 * the same ordered stream as the output, so once the runner has read it, it has read everything;
 * it then tells the holder (SIGUSR1) to exit with the step's status.
 */
import { randomBytes } from 'node:crypto';

const ACK_WAIT_SECONDS = 30;

// $1 is the end marker, the rest is the step's command line. A non-interactive shell gives a
// background command /dev/null as input, so the terminal is handed over on fd 3 explicitly.
const HOLDER_SCRIPT = `
marker=$1; shift
trap '' USR1
exec 3<&0
"$@" 0<&3 3<&- &
child=$!
exec 3<&-
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
trap 'kill -HUP "$child" 2>/dev/null' HUP
status=0
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
sleeper=
trap 'kill "$sleeper" 2>/dev/null; exit "$status"' USR1
printf '%s' "$marker"
sleep ${ACK_WAIT_SECONDS} </dev/null >/dev/null 2>&1 &
sleeper=$!
wait "$sleeper"
exit "$status"
`;

export const END_ACK_SIGNAL = 'SIGUSR1';

export function newEndMarker(): string {
  // An OSC sequence: invisible in a terminal if it ever leaked, and unguessable by the step.
  return `\u001b]countersign-end;${randomBytes(12).toString('hex')}\u0007`;
}

export function holdSession(
  file: string,
  args: readonly string[],
  marker: string,
): { file: string; args: string[] } {
  return { file: '/bin/sh', args: ['-c', HOLDER_SCRIPT, 'countersign-step', marker, file, ...args] };
}

/**
 * Finds the end marker in the output stream and removes it. A chunk that ends with the start of
 * the marker is held back until the next chunk says whether it was the marker.
 */
export class EndMarkerScanner {
  private heldBack = '';

  constructor(private readonly marker: string) {}

  push(chunk: string): { text: string; ended: boolean } {
    let text = this.heldBack + chunk;
    this.heldBack = '';
    let ended = false;
    for (let at = text.indexOf(this.marker); at !== -1; at = text.indexOf(this.marker)) {
      text = text.slice(0, at) + text.slice(at + this.marker.length);
      ended = true;
    }
    const partial = this.partialMarkerAtEnd(text);
    if (partial > 0) {
      this.heldBack = text.slice(-partial);
      text = text.slice(0, -partial);
    }
    return { text, ended };
  }

  /** Whatever was held back, when the stream has ended without completing the marker. */
  flush(): string {
    const rest = this.heldBack;
    this.heldBack = '';
    return rest;
  }

  private partialMarkerAtEnd(text: string): number {
    for (let length = Math.min(this.marker.length - 1, text.length); length > 0; length--) {
      if (text.endsWith(this.marker.slice(0, length))) return length;
    }
    return 0;
  }
}
