/** What the dev server prints to the terminal once it listens. */
import type { Config } from '../config.js';
import { DEV_PUBLIC_CLIENT_ID, DEV_SERVICE_CLIENT_ID, DEV_USER_EMAIL } from './seed.js';

export function printDevHints(config: Pick<Config, 'issuer'>, seeded: { clientSecret: string | undefined; userPassword: string | undefined }, write: (text: string) => void): void {
  // Printed to the terminal once, never to the log: these are secrets.
  const secret = seeded.clientSecret ?? '<the secret printed when it was created>';
  const password = seeded.userPassword ?? '<the password printed when it was created>';
  write(
    [
      '',
      'Dev mode is ready. Seeded:',
      `  client ${DEV_SERVICE_CLIENT_ID} (client_credentials)  secret: ${secret}`,
      `  client ${DEV_PUBLIC_CLIENT_ID} (public, password + refresh_token)`,
      `  user   ${DEV_USER_EMAIL} (role admin)  password: ${password}`,
      '',
      'Get a token:',
      `  curl -s -u ${DEV_SERVICE_CLIENT_ID}:${secret} -d grant_type=client_credentials ${config.issuer}/oauth/token`,
      `  curl -s -d grant_type=password -d client_id=${DEV_PUBLIC_CLIENT_ID} --data-urlencode username=${DEV_USER_EMAIL} --data-urlencode 'password=${password}' ${config.issuer}/oauth/token`,
      '',
    ].join('\n') + '\n',
  );
}
