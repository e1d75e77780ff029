// Checks hookline's output with Logto's own code and the reference Standard Webhooks library.
// Input: a JSON file {hooks: [...], hooksWithStats: [...], testErrorData: {...},
//                     signed: [{secret, id, timestamp, signature, body}]}.
// Exits non-zero with the first mismatch.
import { readFileSync } from 'node:fs';
import { Hooks, hookResponseGuard, hookTestErrorResponseDataGuard, hookEvents } from '@logto/schemas';
import { Webhook } from 'standardwebhooks';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let checked = 0;
for (const hook of input.hooks) {
  Hooks.guard.parse(hook);
  checked++;
}
for (const hook of input.hooksWithStats) {
  hookResponseGuard.parse(hook);
  checked++;
}
hookTestErrorResponseDataGuard.parse(input.testErrorData);
checked++;
for (const name of input.catalog) {
  if (!hookEvents.includes(name)) throw new Error(`${name} is not a Logto hook event`);
  checked++;
}
for (const s of input.signed) {
  new Webhook(s.secret).verify(s.body, {
    'webhook-id': s.id,
    'webhook-timestamp': s.timestamp,
    'webhook-signature': s.signature,
  });
  checked++;
  let tampered = false;
  try {
    new Webhook(s.secret).verify(s.body + ' ', {
      'webhook-id': s.id,
      'webhook-timestamp': s.timestamp,
      'webhook-signature': s.signature,
    });
  } catch {
    tampered = true;
  }
  if (!tampered) throw new Error('a tampered body verified');
}
console.log(`compat ok: ${checked} checks`);
