/**
 * The mails' texts: one eta template pair per kind in `templates/` (`<kind>.text.eta`, whose
 * first line is `Subject: …`, and `<kind>.html.eta`, put inside `layout.html.eta`). An
 * operator overrides any of them by putting a file of the same name in MAIL_TEMPLATES_DIR;
 * every template is read and compiled at start-up, so a broken one stops start-up, not a mail.
 * HTML output is escaped (`<%= %>`); the text parts are not (they are not HTML).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

const TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

export const MAIL_KINDS = ['verify-email', 'password-reset', 'password-changed', 'email-change-confirm', 'email-change-notice'] as const;
export type MailKind = (typeof MAIL_KINDS)[number];

/** What every template may use: `it.productName`, `it.email` (the address written to or about), and per kind `it.link`, `it.expiresIn`. */
export interface MailData {
  readonly email: string;
  readonly link?: string;
  /** "24 hours", "30 minutes". */
  readonly expiresIn?: string;
}

export interface RenderedMail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface MailTemplates {
  render(kind: MailKind, data: MailData): RenderedMail;
}

export function createMailTemplates({ productName, overrideDir }: { productName: string; overrideDir?: string | undefined }): MailTemplates {
  const html = new Eta({ autoEscape: true, autoTrim: false });
  const text = new Eta({ autoEscape: false, autoTrim: false });
  const source = (file: string): string => {
    const override = overrideDir === undefined ? undefined : join(overrideDir, file);
    const path = override !== undefined && existsSync(override) ? override : join(TEMPLATES_DIR, file);
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`mail template ${file}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
  };
  const compile = (eta: Eta, file: string, template: string) => {
    try {
      return eta.compile(template);
    } catch (err) {
      throw new Error(`mail template ${file}: ${(err as Error).message}`, { cause: err });
    }
  };
  const layout = html.compile(source('layout.html.eta'));
  const compiled = new Map(MAIL_KINDS.map((kind) => [kind, compileKind(kind)] as const));

  /** The text template's first line is the subject's own template; the rest is the body's. */
  function compileKind(kind: MailKind) {
    const file = `${kind}.text.eta`;
    const [first = '', ...rest] = source(file).split('\n');
    if (!/^Subject: \S/.test(first)) throw new Error(`mail template ${file}: its first line must be "Subject: …"`);
    return {
      subject: compile(text, file, first.slice('Subject: '.length)),
      text: compile(text, file, rest.join('\n').replace(/^\n+/, '')),
      html: compile(html, `${kind}.html.eta`, source(`${kind}.html.eta`)),
    };
  }

  return {
    render(kind, data) {
      const templates = compiled.get(kind)!;
      const it = { ...data, productName };
      // One line, whatever a variable held: no header injection through the subject.
      const subject = text
        .render(templates.subject, it)
        .replace(/[\r\n]+/g, ' ')
        .trim();
      return { subject, text: text.render(templates.text, it), html: html.render(layout, { ...it, subject, body: html.render(templates.html, it) }) };
    },
  };
}

/** "24 hours", "30 minutes", "1 hour". */
export function lifetimeText(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes % 60 === 0) return minutes === 60 ? '1 hour' : `${minutes / 60} hours`;
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}
