// Checks hookline's output with Logto's own code and the reference Standard Webhooks library.
// Input: a JSON file {hooks: [...], hooksWithStats: [...], testErrorData: {...}, catalog,
//                     users, logs, organizations, invitations, members,
//                     signed: [{secret, id, timestamp, signature, body}]}.
// Exits non-zero with the first mismatch.
import { readFileSync } from 'node:fs';
import {
  Hooks,
  Logs,
  hookResponseGuard,
  hookTestErrorResponseDataGuard,
  hookEvents,
  userInfoGuard,
  userProfileResponseGuard,
  Organizations,
  organizationInvitationEntityGuard,
  userWithOrganizationRolesGuard,
} from '@logto/schemas';
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
// Users: the Management API's answer (user-info fields and hasPassword), strictly, and the
// user-info fields alone.
for (const user of input.users) {
  userProfileResponseGuard.strict().parse(user);
  const { hasPassword, ...info } = user;
  userInfoGuard.strict().parse(info);
  checked++;
}
// Hook logs, as recent-logs answers them (Logto's log rows without the tenant).
Logs.guard.omit({ tenantId: true }).array().nonempty().parse(input.logs);
checked++;
for (const org of input.organizations) {
  Organizations.guard.omit({ tenantId: true }).strict().parse(
    Object.fromEntries(Object.entries(org).filter(([k]) => k !== 'tenantId'))
  );
  checked++;
}
for (const invitation of input.invitations) {
  organizationInvitationEntityGuard.strict().parse(invitation);
  checked++;
}
// Organization members as `GET /organizations/:id/users` lists them.
userWithOrganizationRolesGuard.strict().array().nonempty().parse(input.members);
checked++;
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
