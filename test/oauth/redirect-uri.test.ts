/** RFC 6749 §3.1.2, RFC 8252 §7.3, RFC 9700 §4.1.3: registration and exact matching, from the attacker's side. */
import { describe, expect, it } from 'vitest';
import { matchRedirectUri, redirectUriProblem, withQuery } from '../../src/oauth/redirect-uri.js';

const registered = ['https://app.example.com/callback', 'http://127.0.0.1/callback', 'http://[::1]/cb?x=1', 'http://localhost:5173/callback'];

describe('redirect URI registration', () => {
  it.each([
    'https://app.example.com/callback',
    'http://127.0.0.1/callback',
    'http://[::1]:8080/cb',
    'http://localhost:5173/callback',
    'https://app.example.com/cb?tenant=1',
  ])('accepts %s', (uri) => {
    expect(redirectUriProblem(uri)).toBeUndefined();
  });
  it.each([
    ['http://app.example.com/callback', /https/],
    ['https://app.example.com/callback#x', /fragment/],
    ['https://*.example.com/callback', /wildcard/],
    ['https://user:pw@app.example.com/cb', /userinfo/],
    ['/callback', /absolute/],
    ['javascript:alert(1)', /https/],
    ['com.example.app:/callback', /https/],
  ])('refuses %s', (uri, problem) => {
    expect(redirectUriProblem(uri)).toMatch(problem);
  });
});

describe('redirect URI matching', () => {
  it('matches a registered URI exactly', () => {
    for (const uri of registered) expect(matchRedirectUri(registered, uri)).toBe(uri);
  });

  it('lets a loopback IP redirect take any port, and nothing else vary', () => {
    expect(matchRedirectUri(registered, 'http://127.0.0.1:51234/callback')).toBe('http://127.0.0.1/callback');
    expect(matchRedirectUri(registered, 'http://[::1]:9/cb?x=1')).toBe('http://[::1]/cb?x=1');
    for (const attempt of [
      'http://127.0.0.1:51234/callback/',
      'http://127.0.0.1:51234/callback/../evil',
      'http://127.0.0.1:51234/Callback',
      'http://127.0.0.1:0/callback',
      'http://127.0.0.1:70000/callback',
      'http://127.0.0.1:5000@evil.example/callback',
      'http://127.0.0.1.evil.example/callback',
      'https://127.0.0.1:51234/callback',
      'http://[::1]:9/cb?x=2',
      'http://localhost:5174/callback',
    ]) {
      expect(matchRedirectUri(registered, attempt), attempt).toBeUndefined();
    }
  });

  it('refuses prefix, suffix, case, userinfo, fragment, dot-segment and other-port variants of a non-loopback URI', () => {
    for (const attempt of [
      'https://app.example.com/callback/extra',
      'https://app.example.com/callbac',
      'https://app.example.com/callback?next=https://evil.example',
      'https://APP.example.com/callback',
      'https://app.example.com/CALLBACK',
      'https://evil@app.example.com/callback',
      'https://app.example.com/callback#frag',
      'https://app.example.com/x/../callback',
      'https://app.example.com:8443/callback',
      'https://app.example.com.evil.example/callback',
      'http://app.example.com/callback',
    ]) {
      expect(matchRedirectUri(registered, attempt), attempt).toBeUndefined();
    }
  });

  it("adds parameters to the registered URI's own query", () => {
    expect(withQuery('http://[::1]/cb?x=1', { code: 'a b', state: undefined, iss: 'https://as.example' })).toBe(
      'http://[::1]/cb?x=1&code=a+b&iss=https%3A%2F%2Fas.example',
    );
    expect(withQuery('https://app.example.com/callback', { error: 'access_denied' })).toBe('https://app.example.com/callback?error=access_denied');
  });
});
