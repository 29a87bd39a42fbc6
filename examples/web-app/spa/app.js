// The single-page public client (demo-spa): authorization code + PKCE in the browser with
// oauth4webapi. The verifier and state wait in sessionStorage (this tab only) during the
// round trip; the tokens live in memory only and are gone on reload.
import * as oauth from '/vendor/oauth4webapi.js';

const config = await (await fetch('/spa/config.json')).json();
const issuer = new URL(config.issuer);
const client = { client_id: config.clientId };
const redirectUri = `${location.origin}/callback`;
// Plain http only to a loopback authority (local development).
const insecure = ['localhost', '127.0.0.1', '[::1]'].includes(issuer.hostname) ? { [oauth.allowInsecureRequests]: true } : {};
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));

const button = document.getElementById('sign-in');
button.addEventListener('click', signIn);
if (location.pathname === '/callback') await finishSignIn();
else button.hidden = false;

async function signIn() {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  sessionStorage.setItem('spa-sign-in', JSON.stringify({ verifier, state }));
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: config.scope,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url);
}

async function finishSignIn() {
  const started = JSON.parse(sessionStorage.getItem('spa-sign-in') ?? 'null');
  sessionStorage.removeItem('spa-sign-in');
  const current = new URL(location.href);
  // The code leaves the address bar and the history at once.
  history.replaceState(null, '', '/spa');
  button.hidden = false;
  if (!started) return show('No sign-in was started in this tab.');
  try {
    const params = oauth.validateAuthResponse(as, client, current, started.state);
    const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, started.verifier, insecure);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
    const api = await fetch(new URL('/me', config.api), { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const body = await api.text();
    if (!api.ok) return show(`The API answered ${api.status}.`, body);
    show(`Signed in as ${JSON.parse(body).email}`, `GET ${new URL('/me', config.api)} answered ${api.status}:\n${body}`);
  } catch (err) {
    show(`Sign-in failed: ${err.error ? `${err.error}: ${err.error_description ?? ''}` : err.message}`);
  }
}

/** Text only: nothing from a URL or a response is ever parsed as HTML. */
function show(status, details = '') {
  document.getElementById('user').textContent = status;
  document.getElementById('api').textContent = details;
}
