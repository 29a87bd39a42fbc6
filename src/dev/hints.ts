/** What the dev server prints to the terminal once it listens. */
import { createHash } from 'node:crypto';
import type { Config } from '../config.js';
import { DEV_PUBLIC_CLIENT_ID, DEV_SERVICE_CLIENT_ID, DEV_SPA_CLIENT_ID, DEV_SPA_REDIRECT_URIS, DEV_USER_EMAIL } from './seed.js';

/** A PKCE verifier for the printed example only; a real client makes a new one per sign-in. */
const EXAMPLE_VERIFIER = 'dev-example-code-verifier-0123456789-abcdefghijklmnop';

export function printDevHints(
  config: Pick<Config, 'issuer'> & { readonly mail?: Pick<Config['mail'], 'smtpUrl'> },
  seeded: { clientSecret: string | undefined; userPassword: string | undefined },
  write: (text: string) => void,
): void {
  // Printed to the terminal once, never to the log: these are secrets.
  const secret = seeded.clientSecret ?? '<the secret printed when it was created>';
  const password = seeded.userPassword ?? '<the password printed when it was created>';
  write(
    [
      '',
      'Dev mode is ready. Seeded:',
      `  client ${DEV_SERVICE_CLIENT_ID} (client_credentials)  secret: ${secret}`,
      `  client ${DEV_PUBLIC_CLIENT_ID} (public, password + refresh_token)`,
      `  client ${DEV_SPA_CLIENT_ID} (public, third-party, authorization_code + refresh_token; redirect ${DEV_SPA_REDIRECT_URIS.join(', ')})`,
      `  user   ${DEV_USER_EMAIL} (role admin)  password: ${password}`,
      '',
      'Get a token:',
      `  curl -s -u ${DEV_SERVICE_CLIENT_ID}:${secret} -d grant_type=client_credentials ${config.issuer}/oauth/token`,
      `  curl -s -d grant_type=password -d client_id=${DEV_PUBLIC_CLIENT_ID} --data-urlencode username=${DEV_USER_EMAIL} --data-urlencode 'password=${password}' ${config.issuer}/oauth/token`,
      '',
      'Sign in through the browser (authorization code + PKCE): open',
      `  ${authorizeUrl(config.issuer)}`,
      'then exchange the code from the address bar it lands on (nothing listens there):',
      `  curl -s -d grant_type=authorization_code -d client_id=${DEV_SPA_CLIENT_ID} -d redirect_uri=http://127.0.0.1:8080/callback -d code_verifier=${EXAMPLE_VERIFIER} -d code=CODE ${config.issuer}/oauth/token`,
      '',
      ...(config.mail?.smtpUrl
        ? []
        : [
            'Mail (verification, password reset) is not sent (SMTP_URL is unset): each message is printed here, its link first,',
            `  and the last 50 are at ${config.issuer}/dev/mail`,
            '',
          ]),
    ].join('\n') + '\n',
  );
}

function authorizeUrl(issuer: string): string {
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: DEV_SPA_CLIENT_ID,
    redirect_uri: 'http://127.0.0.1:8080/callback',
    scope: 'profile email',
    state: 'example',
    code_challenge: createHash('sha256').update(EXAMPLE_VERIFIER).digest('base64url'),
    code_challenge_method: 'S256',
  });
  return `${issuer}/oauth/authorize?${query}`;
}
