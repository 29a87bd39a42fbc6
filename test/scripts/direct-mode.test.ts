/**
 * Which way the admin scripts go: the admin API of a running authority, or MongoDB itself.
 * CONTRACT.md's `client:create` and `user:create` create in the store; with MONGODB_URI set
 * and no API named they still do, while a fresh dev clone (no MONGODB_URI) uses the dev
 * server's API.
 */
import { describe, expect, it } from 'vitest';
import { directMode } from '../../scripts/admin-api.js';

describe('admin scripts: API or MongoDB', () => {
  it('writes to MongoDB with --direct, whatever else is set', () => {
    expect(directMode(['--name', 'x', '--direct'], {})).toBe(true);
    expect(directMode(['--direct'], { ADMIN_CLIENT_ID: 'a', MONGODB_URI: 'mongodb://db/x' })).toBe(true);
  });

  it('writes to MongoDB when MONGODB_URI is set and nothing names an API', () => {
    expect(directMode(['--name', 'x'], { MONGODB_URI: 'mongodb://db/x' })).toBe(true);
  });

  it('calls the API when --url or ADMIN_CLIENT_ID names one, or when there is no MONGODB_URI (a fresh dev clone)', () => {
    expect(directMode(['--name', 'x', '--url', 'http://127.0.0.1:3000'], { MONGODB_URI: 'mongodb://db/x' })).toBe(false);
    expect(directMode(['--name', 'x', '--url=http://127.0.0.1:3000'], { MONGODB_URI: 'mongodb://db/x' })).toBe(false);
    expect(directMode(['--name', 'x'], { MONGODB_URI: 'mongodb://db/x', ADMIN_CLIENT_ID: 'ops' })).toBe(false);
    expect(directMode(['--name', 'x'], {})).toBe(false);
  });
});
