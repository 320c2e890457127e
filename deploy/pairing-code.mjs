// Opens pairing in the compose deployment and prints the one-time code, as `countersign up` does
// in the embedded stack. Runs in the control container, because the code is tied to the control
// worker's policy key:  docker compose exec control /app/deploy/entrypoint.sh pairing-code
import process from 'node:process';
import { Client, Connection } from '@temporalio/client';
import { openPairing, registryView } from '../services/devices.ts';
import { loadConfig, statePaths } from '../workers/config.ts';
import { loadOrCreateKeyFile } from '../workers/key-file.ts';

const config = loadConfig();
const connection = await Connection.connect({ address: config.temporalAddress });
try {
  const client = new Client({ connection, namespace: config.namespace });
  const policyKey = await loadOrCreateKeyFile(statePaths(config.home).policyKey, 'policy');
  const code = await openPairing(client, policyKey.publicKey);
  const say = (line) => process.stdout.write(`${line}\n`);
  if (code) {
    say(`Pair your first device (it becomes the root of trust) with the one-time code ${code}:`);
    say(`  docker compose run --rm cli pair ${code} --name me`);
    say('Then pin the root key id it prints (key …): COUNTERSIGN_ROOT_KEY_ID=<id> in .env, and');
    say('  docker compose up -d executor');
  } else {
    say(`already paired; root device ${(await registryView(client)).rootKeyId}`);
  }
} finally {
  await connection.close();
}
