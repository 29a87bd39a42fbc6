/**
 * A browser without a browser, for HTTP tests of the hosted pages: it keeps cookies per
 * host, reads the forms the pages render (action and CSRF token), and posts them as a
 * browser would (application/x-www-form-urlencoded), never following redirects itself.
 */
export interface PageResponse {
  readonly status: number;
  readonly location: string | null;
  readonly html: string;
  readonly headers: Headers;
}

export class FormBrowser {
  private readonly cookies = new Map<string, string>();

  constructor(private readonly origin: string) {}

  async get(url: string): Promise<PageResponse> {
    return this.send(url, { method: 'GET' });
  }

  async post(path: string, fields: Record<string, string>): Promise<PageResponse> {
    return this.send(new URL(path, this.origin).href, {
      method: 'POST',
      body: new URLSearchParams(fields),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  }

  /** Submits the page's form with `fields` added to its hidden CSRF token. */
  async submit(page: PageResponse, fields: Record<string, string>): Promise<PageResponse> {
    const form = readForm(page.html);
    return this.post(form.action, { csrf: form.csrf, ...fields });
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }

  private async send(url: string, init: RequestInit): Promise<PageResponse> {
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const headers = new Headers(init.headers);
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const [name = '', ...value] = pair.split('=');
      if (/Max-Age=0/i.test(line)) this.cookies.delete(name.trim());
      else this.cookies.set(name.trim(), value.join('='));
    }
    return { status: res.status, location: res.headers.get('location'), html: await res.text(), headers: res.headers };
  }
}

export function readForm(html: string): { action: string; csrf: string } {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  if (!action || !csrf) throw new Error(`no form with a CSRF token on the page:\n${html.slice(0, 2000)}`);
  return { action: action.replace(/&amp;/g, '&'), csrf };
}
