import { createServer } from 'node:http';
import { generateKeyPairSync, sign, randomBytes } from 'node:crypto';
import Koa from 'koa';
import bodyParser from 'koa-bodyparser';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'at+jwt', kid: 'k' })).toString('base64url');
const app = new Koa();
app.use(bodyParser({ enableTypes: ['json', 'text'], extendTypes: { text: ['application/x-www-form-urlencoded'] } }));
app.use(async (ctx) => {
  const form = new URLSearchParams(ctx.request.rawBody);
  const auth = Buffer.from(ctx.get('authorization').slice(6), 'base64').toString();
  const iat = Math.floor(Date.now() / 1000);
  const claims = { iss: 'x', sub: auth.split(':')[0], aud: 'x', exp: iat + 900, iat, nbf: iat, jti: randomBytes(16).toString('base64url'), client_id: 'x', scope: form.get('scope') ?? 'read' };
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const sig = await new Promise((res, rej) => sign('sha256', Buffer.from(input), privateKey, (e, s) => (e ? rej(e) : res(s))));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { access_token: `${input}.${sig.toString('base64url')}`, token_type: 'Bearer', expires_in: 900, scope: 'read write' };
});
createServer(app.callback()).listen(Number(process.env.PORT), '127.0.0.1');
