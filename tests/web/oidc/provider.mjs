// Test-only OpenID Provider for syncd's login tests: the certified `oidc-provider` package on
// 127.0.0.1, on a free port. Started by tests/web/oidc_support.py, which reads the first stdout
// line ({"issuer": "http://127.0.0.1:PORT"}) and registers syncd through Dynamic Client
// Registration (POST /reg), like an operator registering it with ProConnect or Keycloak.
//
// Interactions are a minimal login form (an e-mail address is the account; no password) and an
// automatic consent. Options (environment):
//   OIDC_EMAIL_IN_ID_TOKEN=1  put the e-mail in the ID token too (default: userinfo only, as
//                             ProConnect does)
// Stops on SIGTERM / SIGINT or when stdin closes (the test process went away).
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const emailInIdToken = process.env.OIDC_EMAIL_IN_ID_TOKEN === '1';

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  cookies: { keys: ['test-only-cookie-key'] },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: sub, email_verified: true }),
  }),
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  conformIdTokenClaims: !emailInIdToken,
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    jwtUserinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><html><head><title>Logout</title></head><body>
          ${form}<button id="confirm-logout" type="submit" form="op.logoutForm" name="logout"
          value="yes">Sign out</button></body></html>`;
      },
    },
  },
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600 },
});

// The interactions: a login form, then an automatic consent to every requested scope.
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (ctx.method === 'POST' && match[2]) {
      const form = await readForm(ctx.req);
      const email = (form.get('email') || '').trim();
      const result = { login: { accountId: email } };
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result));
      return undefined;
    }
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><head><title>Test provider login</title></head><body>
      <form method="post" action="/interaction/${escapeHtml(details.uid)}/login">
      <label>E-mail <input id="email" name="email" type="email" autofocus></label>
      <button id="submit" type="submit">Sign in</button></form></body></html>`;
    return undefined;
  }
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    grant.addOIDCScope(String(params.scope));
    const grantId = await grant.save();
    const result = { consent: { grantId } };
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result));
    return undefined;
  }
  ctx.status = 400;
  ctx.body = `unexpected prompt ${prompt.name}`;
  return undefined;
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
