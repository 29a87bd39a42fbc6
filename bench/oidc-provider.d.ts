// oidc-provider ships no type declarations; the peer uses a small part of it, typed loosely.
declare module 'oidc-provider' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const Provider: any;
  export default Provider;
}
